// A native and an IRC session in one room, through the hub harness (no sockets): one message is one record
// with one sequence number in every ring of the room, rendered once per format in use and never for a format
// nobody reads; a long native message is several IRC lines but one message for missed counts; echo-message
// is per session; and short writes leave every session with exactly its output.

@testable import ChatCore
@testable import ChatFronts
import ChatTestSupport
import XCTest

/// IRC wire bytes as lines without CR LF; fails unless every line ends in CR LF.
private func ircLines(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> [String] {
    splitLines(bytes, file: file, line: line).map { text in
        XCTAssertTrue(text.hasSuffix("\r"), "an IRC line without CR LF: \(text.debugDescription)", file: file, line: line)
        return text.hasSuffix("\r") ? String(text.dropLast()) : text
    }
}

/// The bytes of `ring` from `offset` to its head.
private func bytes(of ring: MessageRing, from offset: UInt64) -> String {
    var out: [UInt8] = []
    ring.forEachSpan(from: offset, to: ring.head) { out.append(contentsOf: $0) }
    return String(decoding: out, as: UTF8.self)
}

/// The number in an IRC `*** You missed N messages in #room` notice, or nil for any other line.
private func ircMissedCount(_ line: String, room: String = "lobby") -> Int? {
    let prefix = ":chatd NOTICE #\(room) :*** You missed "
    guard line.hasPrefix(prefix) else { return nil }
    let rest = line.dropFirst(prefix.count)
    guard let space = rest.firstIndex(of: " "), let n = Int(rest[..<space]),
          rest[space...] == " messages in #\(room): you were reading too slowly" else { return nil }
    return n
}

final class MixedFrontsTests: XCTestCase {
    private func noRateLimits() -> ChatLimits {
        var limits = ChatLimits()
        limits.messageRate = 0
        return limits
    }

    // MARK: One record, one sequence number, one render per format

    func testOnePostIsOneRecordWithTheSameSequenceInEveryRing() {
        let h = HubHarness(limits: noRateLimits(), irc: true)
        let alice = h.login("alice")
        let bob = h.loginIRC("bob")
        _ = h.flushBytes(alice)  // bob's JOIN
        let lobby = h.hub.lobby
        guard let native = lobby.ring(0), let irc = lobby.ring(1) else { return XCTFail("both formats read the lobby: two rings") }
        XCTAssertNil(lobby.ring(2), "nobody reads the server-time IRC format: no ring for it")
        XCTAssertNil(lobby.ring(3), "nor the message-tags one")
        XCTAssertEqual(native.headSeq, irc.headSeq, "a ring made late starts at the room's count")
        XCTAssertEqual(native.headSeq, lobby.messageCount)

        for (text, sender) in [("hello from native", alice), ("hello from irc", bob)] {
            let seq = lobby.messageCount
            let nativeHead = native.head, ircHead = irc.head
            if sender === alice { h.send(text, from: alice) } else { h.send("PRIVMSG #lobby :" + text, from: bob) }
            XCTAssertEqual(lobby.messageCount, seq + 1, "one message")
            XCTAssertEqual(native.headSeq, seq + 1, "one record in the native ring")
            XCTAssertEqual(irc.headSeq, seq + 1, "one record, with the same number, in the IRC ring")
            XCTAssertEqual(native.end(ofRecord: seq), native.head)
            XCTAssertEqual(irc.end(ofRecord: seq), irc.head)
            let name = sender === alice ? "alice" : "bob"
            let source = sender === alice ? "alice!alice@native" : "bob!~bob@192.0.2.1"
            XCTAssertEqual(bytes(of: native, from: nativeHead), "MSG #lobby \(name): \(text)\n")
            XCTAssertEqual(bytes(of: irc, from: ircHead), ":\(source) PRIVMSG #lobby :\(text)\r\n")
        }
        // Each reads its own format's ring; neither gets its own message back.
        XCTAssertEqual(h.lines(alice), ["MSG #lobby bob: hello from irc"])
        XCTAssertEqual(ircLines(h.flushBytes(bob)), [":alice!alice@native PRIVMSG #lobby :hello from native"])

        // A tagged reader adds the third ring, numbered like the others; a post is still one record in each.
        let carol = h.loginIRC("carol", caps: ["server-time"])
        guard let tagged = lobby.ring(2) else { return XCTFail("a server-time reader reads the tagged ring") }
        _ = h.flushBytes(alice)  // carol's JOIN
        _ = h.flushBytes(bob)
        XCTAssertEqual(tagged.headSeq, native.headSeq)
        let before = [native.headSeq, irc.headSeq, tagged.headSeq]
        h.send("three formats", from: alice)
        XCTAssertEqual([native.headSeq, irc.headSeq, tagged.headSeq], before.map { $0 + 1 })
        XCTAssertEqual(ircLines(h.flushBytes(bob)), [":alice!alice@native PRIVMSG #lobby :three formats"])
        let stamped = ircLines(h.flushBytes(carol))
        XCTAssertEqual(stamped.count, 1)
        XCTAssertTrue(stamped.first?.hasPrefix("@time=") == true && stamped.first?.hasSuffix(" :alice!alice@native PRIVMSG #lobby :three formats") == true,
                      "\(stamped)")
    }

    func testARoomWithOnlyNativeMembersHasNoIRCRing() {
        let h = HubHarness(limits: noRateLimits(), irc: true)
        let alice = h.login("alice")
        let bob = h.login("bob")
        h.send("/join dev", from: alice)
        h.send("/join dev", from: bob)
        for i in 0..<50 { h.send("native only \(i)", from: i % 2 == 0 ? alice : bob) }
        guard let dev = h.hub.room(named: "dev") else { return XCTFail("no #dev") }
        for room in [h.hub.lobby, dev] {
            XCTAssertNotNil(room.ring(0))
            XCTAssertNil(room.ring(1), "#\(room.name): no IRC member, no plain IRC ring")
            XCTAssertNil(room.ring(2), "#\(room.name): no IRC member, no server-time IRC ring")
            XCTAssertNil(room.ring(3), "#\(room.name): no IRC member, no message-tags IRC ring")
        }
        XCTAssertEqual(h.hub.ringMemory.usedBytes, h.hub.lobby.ring(0)!.capacity + dev.ring(0)!.capacity,
                       "ring memory is the native rings' only")
        XCTAssertEqual(h.lines(bob).filter { $0.hasPrefix("MSG #dev alice") }.count, 25)

        // An IRC member joining #dev brings a ring to #dev only, numbered from #dev's count.
        let ivy = h.loginIRC("ivy", join: ["#dev"])
        XCTAssertNotNil(dev.ring(1))
        XCTAssertEqual(dev.ring(1)?.headSeq, dev.messageCount)
        XCTAssertNil(h.hub.lobby.ring(1), "the lobby still has no IRC reader")
        h.send("hi ivy", from: alice)
        XCTAssertEqual(ircLines(h.flushBytes(ivy)), [":alice!alice@native PRIVMSG #dev :hi ivy"])
    }

    // MARK: A long native message

    /// 4,000 bytes from a native user: several IRC lines of at most 512 bytes, one record, one sequence number.
    func testALongNativeMessageIsSeveralIRCLinesOfOneRecord() {
        let h = HubHarness(limits: noRateLimits(), irc: true)
        let alice = h.login("alice")
        let bob = h.loginIRC("bob")
        _ = h.flushBytes(alice)  // bob's JOIN
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        var text = ""
        for i in 0..<4000 { text.append(i % 9 == 8 ? " " : letters[i % 26]) }
        XCTAssertEqual(text.utf8.count, 4000)
        let irc = h.hub.lobby.ring(1)!
        let seq = irc.headSeq
        h.send(text, from: alice)
        XCTAssertEqual(irc.headSeq, seq + 1, "one record in the IRC ring")
        XCTAssertEqual(h.hub.lobby.ring(0)!.headSeq, seq + 1)
        let wire = h.flushBytes(bob)
        let lines = ircLines(wire)
        XCTAssertGreaterThanOrEqual(lines.count, 8)
        let prefix = ":alice!alice@native PRIVMSG #lobby :"
        for line in lines {
            XCTAssertLessThanOrEqual(line.utf8.count + 2, 512, "an IRC line over 512 bytes")
            XCTAssertTrue(line.hasPrefix(prefix), line)
        }
        XCTAssertEqual(lines.map { String($0.dropFirst(prefix.count)) }.joined(), text, "nothing lost, added or reordered")
        XCTAssertEqual(h.lines(alice), [], "the native sender is not sent its own message")
    }

    /// An IRC reader that falls behind a ring of such messages is told how many MESSAGES it missed: each
    /// several-line record counts once, so received + missed == posted, whatever the write sizes.
    func testMissedCountsCountAMultiLineMessageOnce() {
        for writeSize in [Int.max, 100, 7, 1] {
            var limits = noRateLimits()
            limits.ringBytes = limits.minimumRingBytes
            limits.ringInitialBytes = limits.minimumRingBytes
            let h = HubHarness(limits: limits, irc: true)
            let alice = h.login("alice")
            let reader = h.loginIRC("reader")
            let posted = 40
            let body = String(repeating: "0123456789 ", count: 360)  // 3,960 bytes: 9 IRC lines
            for i in 0..<posted { h.send("m\(pad(i, 2)) " + body, from: alice) }
            let irc = h.hub.lobby.ring(1)!
            XCTAssertLessThan(irc.recordCount, posted, "the ring is small: the reader must fall behind")

            func check(_ wire: [UInt8], posted range: Range<Int>, firstWasCut: Bool, _ phase: String) -> Int {
                let lines = ircLines(wire)
                let notices = lines.compactMap { ircMissedCount($0) }
                XCTAssertEqual(notices.count, 1, "\(phase), writeSize \(writeSize): \(lines.filter { $0.contains("NOTICE") })")
                let missed = notices.first ?? 0
                XCTAssertGreaterThan(missed, 0)
                // Rebuild the messages from their pieces: each starts with `mNN `.
                let prefix = ":alice!alice@native PRIVMSG #lobby :"
                var messages: [String] = []
                for line in lines where line.hasPrefix(prefix) {
                    let piece = String(line.dropFirst(prefix.count))
                    if piece.hasPrefix("m"), piece.dropFirst().prefix(2).allSatisfy(\.isNumber) {
                        messages.append(piece)
                    } else if !messages.isEmpty {
                        messages[messages.count - 1] += piece
                    } else {
                        XCTFail("\(phase), writeSize \(writeSize): a piece of a message without its start: the record was torn")
                    }
                }
                let expected = range.map { "m\(pad($0, 2)) " + body }
                XCTAssertEqual(messages.count + missed, range.count, "received + missed == posted (\(phase), writeSize \(writeSize))")
                // Whole messages in order: the first if it was being written when the reader fell behind (it is
                // received, whole), then the newest ones.
                if firstWasCut { XCTAssertEqual(messages.first, expected.first, "\(phase), writeSize \(writeSize): the cut message") }
                let newest = Array(messages.dropFirst(firstWasCut ? 1 : 0))
                XCTAssertEqual(newest, Array(expected[(range.count - newest.count)...]), "\(phase), writeSize \(writeSize)")
                return missed
            }
            let missed = check(h.flushBytes(reader, writeSize: writeSize), posted: 0..<posted, firstWasCut: false, "behind from the start")
            XCTAssertEqual(reader.missedLines, missed)

            // Behind again, this time stopped in the middle of a message's lines: the rest of that message still
            // comes whole (before the notice), and it counts as received, not missed.
            h.send("m\(posted) " + body, from: alice)
            var wire = h.flushBytes(reader, writeSize: min(writeSize, 100), maxWrites: 1)
            XCTAssertFalse(wire.isEmpty)
            for i in posted + 1..<2 * posted { h.send("m\(pad(i, 2)) " + body, from: alice) }
            wire += h.flushBytes(reader, writeSize: writeSize)
            let again = check(wire, posted: posted..<2 * posted, firstWasCut: true, "stopped mid-message")
            XCTAssertEqual(reader.missedLines, missed + again)
        }
    }

    // MARK: echo-message

    func testEchoMessageIsPerSession() {
        let h = HubHarness(limits: noRateLimits(), irc: true)
        let alice = h.login("alice")
        let echo = h.loginIRC("echo", caps: ["echo-message"])
        let plain = h.loginIRC("plain")
        for session in [alice, echo] { _ = h.flushBytes(session) }  // the JOINs after theirs
        XCTAssertTrue(echo.echoesOwnMessages)
        XCTAssertFalse(plain.echoesOwnMessages)

        h.send("PRIVMSG #lobby :from echo", from: echo)
        h.send("PRIVMSG #lobby :from plain", from: plain)
        h.send("from alice", from: alice)
        XCTAssertEqual(ircLines(h.flushBytes(echo)), [":echo!~echo@192.0.2.1 PRIVMSG #lobby :from echo",
                                                       ":plain!~plain@192.0.2.1 PRIVMSG #lobby :from plain",
                                                       ":alice!alice@native PRIVMSG #lobby :from alice"],
                       "echo-message: its own line comes back, in its place")
        XCTAssertEqual(ircLines(h.flushBytes(plain)), [":echo!~echo@192.0.2.1 PRIVMSG #lobby :from echo",
                                                        ":alice!alice@native PRIVMSG #lobby :from alice"])
        XCTAssertEqual(h.lines(alice), ["MSG #lobby echo: from echo", "MSG #lobby plain: from plain"], "native never echoes")

        // Private messages: echoed to the sender that asked for it, delivered once either way.
        h.send("PRIVMSG alice :psst", from: echo)
        h.send("PRIVMSG alice :hush", from: plain)
        XCTAssertEqual(ircLines(h.flushBytes(echo)), [":echo!~echo@192.0.2.1 PRIVMSG alice :psst"])
        XCTAssertEqual(ircLines(h.flushBytes(plain)), [])
        XCTAssertEqual(h.lines(alice), ["PRIV echo: psst", "PRIV plain: hush"])

        // Turned off (and on) per session at run time.
        h.send("CAP REQ :-echo-message", from: echo)
        h.send("CAP REQ :echo-message", from: plain)
        _ = h.flushBytes(echo)
        _ = h.flushBytes(plain)
        XCTAssertFalse(echo.echoesOwnMessages)
        XCTAssertTrue(plain.echoesOwnMessages)
        h.send("PRIVMSG #lobby :echo again", from: echo)
        h.send("PRIVMSG #lobby :plain again", from: plain)
        XCTAssertEqual(ircLines(h.flushBytes(echo)), [":plain!~plain@192.0.2.1 PRIVMSG #lobby :plain again"])
        XCTAssertEqual(ircLines(h.flushBytes(plain)), [":echo!~echo@192.0.2.1 PRIVMSG #lobby :echo again",
                                                        ":plain!~plain@192.0.2.1 PRIVMSG #lobby :plain again"])
        XCTAssertEqual(h.lines(alice), ["MSG #lobby echo: echo again", "MSG #lobby plain: plain again"])
    }

    // MARK: Short writes

    /// A native and two IRC readers (one echoing) in a room where both fronts post, long messages among them
    /// (several IRC lines each): flushed with short writes that stop mid-record at random points, each
    /// session's transcript is exactly the one it gets with whole writes.
    func testShortWritesLeaveEverySessionWithExactOutput() {
        func run(writeSize: Int, seed: UInt64) -> [[UInt8]] {
            let h = HubHarness(limits: noRateLimits(), irc: true)
            let native = h.login("nat")
            let irc = h.loginIRC("irc")
            let echo = h.loginIRC("echo", caps: ["echo-message", "server-time"])
            let readers = [native, irc, echo]
            var transcripts: [[UInt8]] = [[], [], []]
            var random = SeededRandom(seed: seed)
            for i in 0..<120 {
                // Native lines may be long (~1.4 KB: 3 IRC lines); an IRC client's may not (417).
                let long = i % 7 == 3 ? " " + String(repeating: "ü·x ", count: 200) : ""
                switch i % 4 {
                case 0: h.send("native \(i)" + long, from: native)
                case 1: h.send("/me acts \(i)" + long, from: native)
                case 2: h.send("PRIVMSG #lobby :irc \(i)", from: irc)
                default: h.send("PRIVMSG #lobby :\u{1}ACTION echoes \(i)\u{1}", from: echo)
                }
                if i % 29 == 0 { h.send("PRIVMSG nat :private \(i)", from: irc) }
                // Now and then a reader takes a few short writes, leaving it mid-record.
                for (index, reader) in readers.enumerated() where writeSize != Int.max && Int.random(in: 0..<3, using: &random) == 0 {
                    transcripts[index] += h.flushBytes(reader, writeSize: writeSize, maxWrites: Int.random(in: 1...3, using: &random))
                }
            }
            for (index, reader) in readers.enumerated() { transcripts[index] += h.flushBytes(reader, writeSize: writeSize) }
            for reader in readers { XCTAssertEqual(reader.missedLines, 0) }
            return transcripts
        }
        // Private lines go before ring bytes not yet written, so where they fall among room lines depends on
        // when the reader was flushed: the native transcript is compared as its room lines and its private lines,
        // each exactly and in order; the IRC transcripts (no private lines) byte for byte.
        func parts(_ native: [UInt8]) -> (room: [String], private: [String]) {
            let lines = splitLines(native)
            return (lines.filter { !$0.hasPrefix("PRIV ") }, lines.filter { $0.hasPrefix("PRIV ") })
        }
        let reference = run(writeSize: Int.max, seed: 0)
        let nativeLines = splitLines(reference[0])
        XCTAssertEqual(nativeLines.filter { $0.hasPrefix("MSG #lobby irc: ") || $0.hasPrefix("ACT #lobby echo ") }.count, 60)
        XCTAssertEqual(nativeLines.filter { $0.hasPrefix("PRIV irc: private ") }.count, 5)
        let ircOwn = ircLines(reference[1])
        XCTAssertFalse(ircOwn.contains { $0.hasPrefix(":irc!") }, "no echo for the plain IRC reader")
        XCTAssertGreaterThan(ircOwn.count, 90, "the long messages are several lines")
        XCTAssertTrue(ircOwn.allSatisfy { $0.utf8.count + 2 <= 512 })
        let echoed = ircLines(reference[2])
        XCTAssertEqual(echoed.filter { $0.contains(":echo!~echo@192.0.2.1 PRIVMSG #lobby :\u{1}ACTION echoes ") }.count, 30)
        XCTAssertTrue(echoed.allSatisfy { $0.hasPrefix("@time=") })
        for writeSize in [1, 2, 7, 13, 100, 511] {
            for seed: UInt64 in [1, 2] {
                let got = run(writeSize: writeSize, seed: seed)
                let (room, privateLines) = parts(got[0])
                XCTAssertEqual(room, parts(reference[0]).room, "native room lines: writeSize \(writeSize), seed \(seed)")
                XCTAssertEqual(privateLines, parts(reference[0]).private, "native private lines: writeSize \(writeSize), seed \(seed)")
                XCTAssertTrue(got[1] == reference[1], "IRC reader: writeSize \(writeSize), seed \(seed)")
                XCTAssertTrue(got[2] == reference[2], "echoing IRC reader: writeSize \(writeSize), seed \(seed)")
            }
        }
    }
}

// Identity hazards: state keyed by an object's address outlives the object, and a new one at the same
// address would inherit it. These churn rooms and sessions so that addresses are reused.
final class ReusedAddressTests: XCTestCase {
    private func noRateLimits() -> ChatLimits {
        var limits = ChatLimits()
        limits.messageRate = 0
        return limits
    }

    /// Native `/who` caches its listing in the room (it was once keyed by `ObjectIdentifier`, so a new room
    /// at a freed room's address could be handed the old listing).
    func testWhoNeverShowsTheMembersOfAFreedRoom() {
        let h = HubHarness(limits: noRateLimits())
        let watcher = h.login("watcher")
        for round in 0..<40 {
            let name = "m\(round)"
            let member = h.login(name)
            h.send("/join r\(round)", from: member)
            h.send("/who", from: member)
            XCTAssertTrue(h.lines(member).contains { $0.contains(name) }, "round \(round): /who shows its member")
            h.hub.remove(member, reason: "test")  // the room empties and is retired
            _ = h.lines(watcher)
        }
        let last = h.login("last")
        h.send("/join fresh", from: last)
        h.send("/who", from: last)
        let listing = h.lines(last).filter { $0.contains("Members") || $0.contains("online") || $0.contains("#fresh") }
        for round in 0..<40 { XCTAssertFalse(listing.contains { $0.contains("m\(round)") }, "a freed room's member in \(listing)") }
    }

    /// Invitations are by name key (they were once by session identity, so a new session at a freed one's
    /// address could walk into a `+i` room it was never invited to).
    func testAnInvitationIsNotInheritedByTheNextSessionAtTheSameAddress() {
        let h = HubHarness(limits: noRateLimits(), irc: true)
        let op = h.loginIRC("op", join: ["#den"])
        h.send("MODE #den +i", from: op)
        for round in 0..<40 {
            let guest = h.loginIRC("guest\(round)", join: [])
            h.send("INVITE guest\(round) #den", from: op)
            h.hub.remove(guest, reason: "test")
            let stranger = h.loginIRC("stranger\(round)", join: [])
            h.send("JOIN #den", from: stranger)
            let lines = String(decoding: h.flushBytes(stranger), as: UTF8.self)
            XCTAssertTrue(lines.contains(" 473 stranger\(round) #den "), "round \(round): \(lines)")
            h.hub.remove(stranger, reason: "test")
        }
    }
}
