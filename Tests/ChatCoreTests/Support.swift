// Test support for ChatCore: a framer driver and a socket-free hub harness
// that plays the engine's part (open, feed lines, flush with optional short writes).

@testable import ChatCore
@testable import ChatFronts
import ChatTestSupport
import XCTest

// MARK: LineFramer

/// A framer event as a value, so sequences can be compared.
enum Framed: Equatable, CustomStringConvertible {
    case line([UInt8])
    case overlong

    static func text(_ s: String) -> Framed { .line(Array(s.utf8)) }

    var description: String {
        switch self {
        case .line(let bytes): return "line(\(String(decoding: bytes, as: UTF8.self).debugDescription))"
        case .overlong: return "overlong"
        }
    }
}

/// Feeds one chunk and returns what the framer reported.
func feed(_ framer: inout LineFramer, _ chunk: [UInt8]) -> [Framed] {
    var events: [Framed] = []
    chunk.withUnsafeBytes { buffer in
        framer.feed(buffer) { event in
            switch event {
            case .line(let line): events.append(.line(Array(line)))
            case .overlong: events.append(.overlong)
            }
        }
    }
    return events
}

/// Feeds `chunks` in order into a fresh framer; returns all events and the framer's final pending count.
func frame(_ chunks: [[UInt8]], maxLineBytes: Int) -> (events: [Framed], pending: Int) {
    var framer = LineFramer(maxLineBytes: maxLineBytes)
    var events: [Framed] = []
    for chunk in chunks { events += feed(&framer, chunk) }
    return (events, framer.pendingCount)
}

// MARK: ChatHub harness

/// Drives a `ChatHub` the way the engine does, without sockets. Time is explicit (`now`).
/// Sessions speak the native front, as a client on chatd's `listen` port does; with `irc: true` the hub has
/// the engine's four formats (native, IRC plain, IRC with server-time, IRC with message-tags) and `connectIRC`/`loginIRC` make IRC sessions.
final class HubHarness {
    let hub: ChatHub
    let front: NativeFront
    /// The IRC front (formats 1, 2 and 3), when made with `irc: true`.
    let ircFront: IRCFront?
    var now: UInt64 = 5_000_000_000
    private var nextID: UInt64 = 1

    init(limits: ChatLimits = ChatLimits(), irc: Bool = false) {
        hub = ChatHub(limits: limits, formats: irc ? [NativeFormat(), IRCFormat(.plain), IRCFormat(.time), IRCFormat(.tags)] : [NativeFormat()])
        front = NativeFront(hub: hub, format: 0)
        ircFront = irc ? IRCFront(hub: hub, plainFormat: 1, timeFormat: 2, tagsFormat: 3) : nil
    }

    /// A new IRC connection (the harness must have been made with `irc: true`).
    func connectIRC() -> Session {
        let session = Session(id: nextID, peer: "192.0.2.1:\(40000 + nextID)", now: now, limits: hub.limits, front: ircFront!)
        nextID += 1
        ircFront!.open(session)
        return session
    }

    /// Registers `nick` over IRC with `caps`, joins `channels`, and (unless `flushed` is false) reads
    /// everything so that later flushes return only what came after.
    func loginIRC(_ nick: String, caps: [String] = [], join channels: [String] = ["#lobby"], flushed: Bool = true,
                  file: StaticString = #filePath, line: UInt = #line) -> Session {
        let session = connectIRC()
        if !caps.isEmpty { send("CAP REQ :\(caps.joined(separator: " "))", from: session) }
        send("NICK \(nick)", from: session)
        send("USER \(nick) 0 * :\(nick)", from: session)
        if !caps.isEmpty { send("CAP END", from: session) }
        XCTAssertEqual(session.phase, .named, "IRC registration of \(nick) failed", file: file, line: line)
        for channel in channels { send("JOIN \(channel)", from: session) }
        if flushed { _ = flushBytes(session) }
        return session
    }

    /// A new connection: the front greets it.
    func connect() -> Session {
        let session = Session(id: nextID, peer: "192.0.2.1:\(40000 + nextID)", now: now, limits: hub.limits, front: front)
        nextID += 1
        front.open(session)
        return session
    }

    /// The lobby's native ring (made when the first member arrived).
    var lobbyRing: MessageRing { hub.lobby.ring(0)! }

    /// Starts an orderly close as the engine does, with a native final line.
    func beginClose(_ session: Session, reason: String, finalLine: String?, announce: Bool = true) {
        hub.beginClose(session, reason: .closed(reason), finalLine: finalLine.map { Array(($0 + "\n").utf8) }, announce: announce)
    }

    func send(_ text: String, from session: Session) {
        sendBytes(Array(text.utf8), from: session)
    }

    func sendBytes(_ bytes: [UInt8], from session: Session) {
        bytes.withUnsafeBytes { session.front.receive($0, from: session, now: now) }
    }

    /// Connects, discards the greeting, claims `name`, and (unless `flushed` is false) reads the welcome
    /// so that later flushes return only what came after.
    func login(_ name: String, flushed: Bool = true, file: StaticString = #filePath, line: UInt = #line) -> Session {
        let session = connect()
        _ = flushBytes(session)
        send(name, from: session)
        XCTAssertEqual(session.phase, .named, "login of \(name) failed", file: file, line: line)
        if flushed { _ = flushBytes(session) }
        return session
    }

    /// Simulates the engine flushing `session`: each write offers the pending spans in wire order and the
    /// "socket" accepts at most `writeSize` bytes of them. Like the engine after a short write, every write
    /// begins with `prepareFlush`. Stops when nothing is pending or after `maxWrites` writes.
    func flushBytes(_ session: Session, writeSize: Int = Int.max, maxWrites: Int = Int.max,
                    file: StaticString = #filePath, line: UInt = #line) -> [UInt8] {
        precondition(writeSize > 0)
        var out: [UInt8] = []
        var writes = 0
        while writes < maxWrites {
            hub.prepareFlush(session)
            var offered: [UInt8] = []
            hub.forEachPendingSpan(of: session) { span in
                // Take only what this write will accept, and stop early as the engine does when its iovec
                // array is full: the hub must cope with a partial offer.
                let take = min(span.count, writeSize - offered.count)
                offered.append(contentsOf: UnsafeRawBufferPointer(rebasing: span[0..<take]))
                return offered.count < writeSize
            }
            if offered.isEmpty { break }
            out += offered
            hub.didWrite(offered.count, to: session)
            writes += 1
            if writes > 1_000_000 {
                XCTFail("flush did not converge", file: file, line: line)
                break
            }
        }
        return out
    }

    func flush(_ session: Session, writeSize: Int = Int.max, maxWrites: Int = Int.max) -> String {
        String(decoding: flushBytes(session, writeSize: writeSize, maxWrites: maxWrites), as: UTF8.self)
    }

    /// Flushes everything pending and returns it as lines; fails if the bytes do not end on a line boundary.
    func lines(_ session: Session, writeSize: Int = Int.max, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        let bytes = flushBytes(session, writeSize: writeSize, file: file, line: line)
        return splitLines(bytes, file: file, line: line)
    }
}

/// Splits wire bytes into lines (without `\n`); fails if the last line is incomplete.
func splitLines(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> [String] {
    if bytes.isEmpty { return [] }
    XCTAssertEqual(bytes.last, 10, "output does not end on a line boundary", file: file, line: line)
    var lines = bytes.split(separator: 10, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    if lines.last == "" { lines.removeLast() }
    return lines
}

/// The number in `SYS Missed: N lines in #room; ...`, or nil for any other line.
func missedCount(_ line: String, room: String = "lobby") -> Int? {
    let prefix = "SYS Missed: "
    guard line.hasPrefix(prefix) else { return nil }
    let rest = line.dropFirst(prefix.count)
    guard let space = rest.firstIndex(of: " "), let n = Int(rest[..<space]) else { return nil }
    guard rest[space...].hasPrefix(" lines in #\(room);") else { return nil }
    return n
}

/// `i` in decimal, zero-padded to `width` digits (no Foundation needed).
func pad(_ i: Int, _ width: Int) -> String {
    let digits = String(i)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}
