// chatd and systemd without systemd: sd_notify captured on our own NOTIFY_SOCKET (a path and an abstract
// name), the watchdog interval, socket activation through systemd-socket-activate, and journald-style logs.

import ChatServer
import ChatTestSupport
import Foundation
import Glibc
import Logging
import XCTest

/// An `AF_UNIX` `SOCK_DGRAM` socket standing in for systemd's notify socket; records every datagram.
final class NotifySocket {
    let fd: Int32
    /// The value for the daemon's `NOTIFY_SOCKET`: a path, or `@name` for the abstract namespace.
    let address: String
    private let path: String?
    /// Every datagram so far, with its arrival time (`monotonic()`), in order.
    private(set) var messages: [(time: Double, text: String)] = []
    private var consumed = 0
    nonisolated(unsafe) private static var counter = 0

    init(abstract: Bool) throws {
        Self.counter += 1
        let name = abstract
            ? "chatd-test-notify-\(getpid())-\(Self.counter)"
            : FileManager.default.temporaryDirectory.appendingPathComponent("chatd-notify-\(getpid())-\(Self.counter).sock").path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        precondition(fd >= 0)
        var raw = sockaddr_un()
        raw.sun_family = sa_family_t(AF_UNIX)
        // An abstract name starts with a NUL byte and is exactly as long as the address length says.
        let bytes = (abstract ? [0] : []) + Array(name.utf8)
        precondition(bytes.count < MemoryLayout.size(ofValue: raw.sun_path))
        withUnsafeMutableBytes(of: &raw.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + (abstract ? 0 : 1))
        if !abstract { unlink(name) }
        let socketFD = fd
        let rc = withUnsafePointer(to: &raw) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, length) } }
        guard rc == 0 else {
            let error = errno
            Glibc.close(socketFD)
            throw ClientError.connect(error)
        }
        address = abstract ? "@" + name : name
        path = abstract ? nil : name
    }

    deinit {
        Glibc.close(fd)
        if let path { unlink(path) }
    }

    /// Receives whatever arrives within `timeout` seconds.
    func pump(timeout: Double) {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(max(0, timeout * 1000))) > 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard n >= 0 else { return }
            messages.append((monotonic(), String(decoding: buffer[0..<n], as: UTF8.self)))
        }
    }

    /// Waits for the next datagram (after those already returned) that has a line satisfying `match`.
    @discardableResult
    func expect(_ what: String, timeout: Double = 10, _ match: (String) -> Bool) throws -> (time: Double, text: String) {
        let deadline = monotonic() + timeout
        while true {
            while consumed < messages.count {
                let message = messages[consumed]
                consumed += 1
                if message.text.split(separator: "\n").contains(where: { match(String($0)) }) { return message }
            }
            let left = deadline - monotonic()
            if left <= 0 { throw ClientError.timeout("\(what); got \(messages.map(\.text))") }
            pump(timeout: min(left, 0.2))
        }
    }

    @discardableResult
    func expect(line: String, timeout: Double = 10) throws -> (time: Double, text: String) {
        try expect(line, timeout: timeout) { $0 == line }
    }

    /// Keeps receiving for `seconds`.
    func collect(for seconds: Double) {
        let end = monotonic() + seconds
        while monotonic() < end { pump(timeout: end - monotonic()) }
    }

    /// The value of `KEY=` in a datagram, if present.
    static func field(_ key: String, in text: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }
}

/// A port nobody listens on right now (bound then released; good enough for a test).
private func freePort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { Glibc.close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            _ = bind(fd, pointer, length)
            return getsockname(fd, pointer, &length)
        }
    }
    return UInt16(bigEndian: address.sin_port)
}

/// Runs chatd through `/bin/sh` so that the child's own pid can go in its environment (`WATCHDOG_PID`,
/// `JOURNAL_STREAM`) before `exec` replaces the shell with chatd under the same pid.
private func daemonThroughShell(_ script: String, _ arguments: [String], environment: [String: String] = [:],
                                waitForListening: Bool) throws -> DaemonProcess {
    try DaemonProcess(["-c", script + "; exec \"$0\" \"$@\"", DaemonProcess.binary.path] + arguments,
                      environment: environment, waitForListening: waitForListening,
                      executable: URL(fileURLWithPath: "/bin/sh"))
}

final class SystemdTests: XCTestCase {
    // MARK: sd_notify over a real socket

    /// READY=1 comes only when the port accepts (the first datagram, carrying the address in STATUS=), the
    /// status then follows the live figures, and SIGTERM starts with STOPPING=1.
    func testReadyAfterListeningThenStatusThenStoppingOnAPathSocket() throws {
        let notify = try NotifySocket(abstract: false)
        XCTAssertTrue(notify.address.hasPrefix("/"))
        let daemon = try DaemonProcess(["--listen", "127.0.0.1:0"], environment: ["NOTIFY_SOCKET": notify.address],
                                       waitForListening: false)
        defer { daemon.terminate() }
        let ready = try notify.expect(line: "READY=1", timeout: 20)
        XCTAssertEqual(notify.messages.count, 1, "READY=1 must be the first notification: \(notify.messages)")
        let status = try XCTUnwrap(NotifySocket.field("STATUS", in: ready.text))
        let port = try XCTUnwrap(status.split(separator: ":").last.flatMap { UInt16($0) }, status)
        // No retry: by the time READY=1 was sent, the listener must already accept.
        let alice = try LineClient(port: port)
        try alice.expect(prefix: "SYS Hello")
        alice.send("alice\n")
        let bob = try LineClient.named("bob", port: port)
        alice.send("hi bob\n")
        try bob.expect(prefix: "MSG #lobby alice: hi bob")

        let live = try notify.expect("STATUS= with 2 clients", timeout: 10) { $0.hasPrefix("STATUS=2 clients, 1 room, ") }
        XCTAssertTrue(NotifySocket.field("STATUS", in: live.text)?.hasSuffix("messages/s") ?? false, live.text)
        XCTAssertGreaterThan(live.time - ready.time, 1, "STATUS= is refreshed every few seconds, not every tick")

        daemon.signal(SIGTERM)
        let stopping = try notify.expect(line: "STOPPING=1")
        XCTAssertTrue(NotifySocket.field("STATUS", in: stopping.text)?.hasPrefix("shutting down") ?? false, stopping.text)
        XCTAssertEqual(daemon.waitForExit(), 0, daemon.readStderr())
        XCTAssertNil(notify.messages.first { $0.text.contains("WATCHDOG=1") }, "no watchdog was asked for")
    }

    /// SIGHUP is bracketed by RELOADING=1 and READY=1, also when the new file is bad (the old config is kept).
    func testReloadingThenReadyAroundSIGHUPOnAnAbstractSocket() throws {
        let notify = try NotifySocket(abstract: true)
        XCTAssertTrue(notify.address.hasPrefix("@"))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("chatd-sd-reload-\(getpid()).conf")
        try "listen = 127.0.0.1:0\nmax-clients = 5\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let daemon = try DaemonProcess(["--config", file.path], environment: ["NOTIFY_SOCKET": notify.address])
        defer { daemon.terminate() }
        try notify.expect(line: "READY=1", timeout: 20)

        for (contents, logged) in [("max-clients = 6\n", "configuration reloaded"), ("max-clients = lots\n", "reload failed")] {
            try contents.write(to: file, atomically: true, encoding: .utf8)
            daemon.signal(SIGHUP)
            let reloading = try notify.expect(line: "RELOADING=1")
            let ready = try notify.expect(line: "READY=1")
            XCTAssertLessThanOrEqual(reloading.time, ready.time)
            try waitUntil(logged, timeout: 10) { daemon.readStderr().contains(logged) }
        }
        // Still serving after the failed reload.
        _ = try LineClient.named("carol", port: daemon.port)
        daemon.signal(SIGTERM)
        try notify.expect(line: "STOPPING=1")
        XCTAssertEqual(daemon.waitForExit(), 0, daemon.readStderr())
    }

    // MARK: Watchdog

    /// With WATCHDOG_USEC=2 s and WATCHDOG_PID = chatd's own pid, the loop pings about every second (half the
    /// timeout, as sd_watchdog_enabled(3) recommends), never leaving a gap that would get it killed.
    func testWatchdogPingsAtHalfTheRequestedInterval() throws {
        let notify = try NotifySocket(abstract: false)
        let daemon = try daemonThroughShell("export WATCHDOG_PID=$$", ["--listen", "127.0.0.1:0"],
                                            environment: ["NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "2000000"],
                                            waitForListening: false)
        defer { daemon.terminate() }
        let ready = try notify.expect(line: "READY=1", timeout: 20)
        notify.collect(for: 5.5)
        let pings = notify.messages.filter { $0.text.split(separator: "\n").contains("WATCHDOG=1") }.map(\.time)
        XCTAssertEqual(pings.first, ready.time, "the first ping comes with READY=1")
        XCTAssertGreaterThanOrEqual(pings.count, 5, "\(pings.count) pings in 5.5 s")
        XCTAssertLessThanOrEqual(pings.count, 8, "\(pings.count) pings in 5.5 s: more often than asked")
        let gaps = zip(pings.dropFirst(), pings).map { $0 - $1 }
        XCTAssertLessThan(gaps.max() ?? 0, 1.6, "gaps \(gaps): a gap near WATCHDOG_USEC risks a kill")
        XCTAssertGreaterThan(gaps.min() ?? 1, 0.5, "gaps \(gaps)")
        daemon.signal(SIGTERM)
        XCTAssertEqual(daemon.waitForExit(), 0, daemon.readStderr())
    }

    /// A WATCHDOG_PID naming another process means the watchdog is not ours (sd_watchdog_enabled returns 0):
    /// no pings. (Without WATCHDOG_PID at all, libsystemd treats the watchdog as ours.)
    func testWatchdogForAnotherPidIsIgnored() throws {
        let notify = try NotifySocket(abstract: true)
        let daemon = try DaemonProcess(["--listen", "127.0.0.1:0"],
                                       environment: ["NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "400000",
                                                     "WATCHDOG_PID": "\(getpid())"])
        defer { daemon.terminate() }
        try notify.expect(line: "READY=1", timeout: 20)
        notify.collect(for: 1.5)
        XCTAssertFalse(notify.messages.contains { $0.text.contains("WATCHDOG=1") }, "\(notify.messages)")
        daemon.signal(SIGTERM)
        XCTAssertEqual(daemon.waitForExit(), 0)
    }

    /// A short WatchdogSec= (0.4 s) shortens the tick so that pings still come every 0.2 s.
    func testShortWatchdogShortensTheTick() throws {
        let notify = try NotifySocket(abstract: false)
        let daemon = try DaemonProcess(["--listen", "127.0.0.1:0"],
                                       environment: ["NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "400000"])
        defer { daemon.terminate() }
        try notify.expect(line: "READY=1", timeout: 20)
        notify.collect(for: 2)
        let pings = notify.messages.filter { $0.text.split(separator: "\n").contains("WATCHDOG=1") }.map(\.time)
        let gaps = zip(pings.dropFirst(), pings).map { $0 - $1 }
        XCTAssertGreaterThanOrEqual(pings.count, 7, "gaps \(gaps)")
        XCTAssertLessThan(gaps.max() ?? 1, 0.4, "gaps \(gaps)")
        daemon.signal(SIGTERM)
        XCTAssertEqual(daemon.waitForExit(), 0)
    }

    // MARK: Socket activation

    /// The first connection to a port systemd-socket-activate listens on (it may not listen yet).
    private func firstConnection(port: UInt16) throws -> LineClient {
        var first: LineClient?
        try waitUntil("systemd-socket-activate to listen on \(port)", timeout: 10) {
            first = try? LineClient(port: port)
            return first != nil
        }
        return try XCTUnwrap(first)
    }

    /// `systemd-socket-activate` binds the port, starts chatd on the first connection with the socket on fd 3
    /// (`LISTEN_FDNAMES=chat`), and chatd serves on it instead of binding `--listen`.
    func testSocketActivationServesOnTheInheritedSocket() throws {
        let activate = "/usr/bin/systemd-socket-activate"
        guard FileManager.default.isExecutableFile(atPath: activate) else { throw XCTSkip("no \(activate)") }
        let notify = try NotifySocket(abstract: false)
        let port = freePort()
        let daemon = try DaemonProcess(["-l", "127.0.0.1:\(port)", "--fdname=chat", "-E", "NOTIFY_SOCKET=\(notify.address)",
                                        DaemonProcess.binary.path, "--listen", "127.0.0.1:0"],
                                       waitForListening: false, executable: URL(fileURLWithPath: activate))
        defer { daemon.terminate() }
        let alice = try firstConnection(port: port)
        try alice.expect(prefix: "SYS Hello", timeout: 20)  // chatd started for this connection and accepted it
        alice.send("alice\n")
        try alice.expect(prefix: "SYS Welcome: alice")
        let ready = try notify.expect(line: "READY=1")
        XCTAssertEqual(NotifySocket.field("STATUS", in: ready.text), "listening on 127.0.0.1:\(port)")
        let bob = try LineClient.named("bob", port: port)
        bob.send("hello through the inherited socket\n")
        try alice.expect(prefix: "MSG #lobby bob: hello through the inherited socket")
        let log = daemon.readStderr()
        XCTAssertTrue(log.contains("activated=true"), log)
        XCTAssertTrue(log.contains("addresses=127.0.0.1:\(port)"), log)
        // systemd-socket-activate exec'd chatd in its own process: the signal reaches chatd itself.
        daemon.signal(SIGTERM)
        try notify.expect(line: "STOPPING=1")
        XCTAssertEqual(daemon.waitForExit(), 0, daemon.readStderr())
    }

    /// Sockets named `chat` and `irc` (chatd.socket and chatd-irc.socket under systemd): the first speaks the
    /// native protocol, the second IRC, and neither --listen nor --irc-listen is bound; a third with another
    /// name is left alone with a warning. The IRC socket's first connection is what starts chatd here.
    func testSocketActivationAssignsSocketsByName() throws {
        let activate = "/usr/bin/systemd-socket-activate"
        guard FileManager.default.isExecutableFile(atPath: activate) else { throw XCTSkip("no \(activate)") }
        let nativePort = freePort(), ircPort = freePort()
        let unused = freePort(), junkPort = freePort()
        let daemon = try DaemonProcess(["-l", "127.0.0.1:\(nativePort)", "-l", "127.0.0.1:\(ircPort)", "-l", "127.0.0.1:\(junkPort)",
                                        "--fdname=chat:irc:junk",
                                        DaemonProcess.binary.path, "--listen", "127.0.0.1:0",
                                        "--irc-listen", "127.0.0.1:\(unused)", "--presence-delay-ms", "0"],
                                       waitForListening: false, executable: URL(fileURLWithPath: activate))
        defer { daemon.terminate() }
        let ivy = try firstConnection(port: ircPort)
        ivy.send("NICK ivy\r\nUSER ivy 0 * :Ivy\r\n")
        _ = try ivy.expect("the welcome (chatd started for this connection)", timeout: 20) { $0.contains(" 001 ivy ") }
        ivy.send("JOIN #lobby\r\n")
        _ = try ivy.expect("the end of NAMES") { $0.contains(" 366 ivy #lobby ") }
        let nadia = try LineClient.named("nadia", port: nativePort)
        nadia.send("hello over the chat socket\n")
        _ = try ivy.expect("the native message") { $0.hasSuffix("PRIVMSG #lobby :hello over the chat socket\r") }
        ivy.send("PRIVMSG #lobby :hello over the irc socket\r\n")
        try nadia.expect(prefix: "MSG #lobby ivy: hello over the irc socket")
        let log = daemon.readStderr()
        XCTAssertTrue(log.contains("activated=true"), log)
        XCTAssertTrue(log.contains("addresses=\"127.0.0.1:\(nativePort) 127.0.0.1:\(ircPort)\""), log)
        XCTAssertNil(try? LineClient(port: unused), "--irc-listen was bound although systemd passed an irc socket")
        XCTAssertTrue(log.contains("ignoring a descriptor passed by systemd fd=5 name=junk"), log)
        daemon.signal(SIGTERM)
        XCTAssertEqual(daemon.waitForExit(), 0, daemon.readStderr())
    }

    // MARK: Logging

    /// When JOURNAL_STREAM names chatd's own stderr, every line starts with its syslog priority and has no
    /// timestamp; otherwise (the other tests) lines are readable text.
    func testJournalStreamSwitchesToPriorityPrefixes() throws {
        let daemon = try daemonThroughShell("export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/$$/fd/2)",
                                            ["--listen", "127.0.0.1:0"], waitForListening: false)
        defer { daemon.terminate() }
        try waitUntil("the listening line", timeout: 20) { daemon.readStderr().contains("<6>listening ") }
        daemon.signal(SIGTERM)
        XCTAssertEqual(daemon.waitForExit(), 0)
        let lines = daemon.readStderr().split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("<6>listening activated=false addresses=127.0.0.1:") }, "\(lines)")
        XCTAssertTrue(lines.contains("<5>shutting down clients=0 reason=SIGTERM"), "\(lines)")
        XCTAssertTrue(lines.contains("<5>stopped"), "\(lines)")
        for line in lines {
            XCTAssertNotNil(line.wholeMatch(of: #/<[0-7]>[^\x1B]*/#), "not a journal line: \(line)")
        }

        let plain = try DaemonProcess(["--listen", "127.0.0.1:0"], environment: ["JOURNAL_STREAM": "1:2"])
        plain.signal(SIGTERM)
        XCTAssertEqual(plain.waitForExit(), 0)
        XCTAssertNotNil(plain.readStderr().firstMatch(of: #/(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4} info chatd: listening /#),
                        plain.readStderr())
    }

    func testLogHandlerFormats() {
        let journal = ChatLogHandler(label: "chatd", format: .journal) { _ in }
        XCTAssertEqual(journal.render(level: .warning, message: "dropping client",
                                      metadata: ["reason": "write timeout: 30 s", "conn": "7"]),
                       "<4>dropping client conn=7 reason=\"write timeout: 30 s\"\n")
        XCTAssertEqual(journal.render(level: .critical, message: "two\nlines", metadata: ["x": "a\"b c"]),
                       "<2>two\\nlines x=\"a\\\"b c\"\n")
        XCTAssertEqual([Logger.Level.trace, .debug, .info, .notice, .warning, .error, .critical].map(ChatLogHandler.syslogPriority),
                       [7, 7, 6, 5, 4, 3, 2])
        let text = ChatLogHandler(label: "chatd", format: .text(colour: false)) { _ in }
        let line = text.render(level: .notice, message: "stopped", metadata: [:])
        XCTAssertNotNil(line.wholeMatch(of: #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4} notice chatd: stopped\n/#), line)
        let coloured = ChatLogHandler(label: "chatd", format: .text(colour: true)) { _ in }
        XCTAssertTrue(coloured.render(level: .error, message: "x", metadata: [:]).contains("\u{1B}[1;31merror\u{1B}[0m"))
    }

    func testLogHandlerWritesOneLinePerEventThroughItsSink() {
        final class Lines: @unchecked Sendable {
            let lock = NSLock()
            var all: [String] = []
        }
        let lines = Lines()
        var logger = Logger(label: "chatd") { label in
            ChatLogHandler(label: label, format: .journal) { bytes in
                lines.lock.withLock { lines.all.append(String(decoding: bytes, as: UTF8.self)) }
            }
        }
        logger.logLevel = .debug
        logger[metadataKey: "unit"] = "test"
        logger.trace("hidden")
        logger.debug("shown", metadata: ["n": "1"])
        logger.error("failed", error: ClientError.timeout("x"))
        XCTAssertEqual(lines.all, ["<7>shown n=1 unit=test\n", "<3>failed error=\"timed out waiting for x\" unit=test\n"])
    }

    func testStderrIsJournalComparesDeviceAndInodeOfFD2() {
        var status = stat()
        XCTAssertEqual(fstat(2, &status), 0)
        XCTAssertTrue(ChatLogHandler.stderrIsJournal(environment: "\(status.st_dev):\(status.st_ino)"))
        XCTAssertFalse(ChatLogHandler.stderrIsJournal(environment: "\(status.st_dev):\(status.st_ino + 1)"))
        XCTAssertFalse(ChatLogHandler.stderrIsJournal(environment: nil))
        XCTAssertFalse(ChatLogHandler.stderrIsJournal(environment: "garbage"))
        XCTAssertFalse(ChatLogHandler.stderrIsJournal(environment: "1:2:3"))
    }

    // MARK: The notifier's schedule (fake clock)

    func testNotifierScheduleWithAFakeClock() {
        var sent: [String] = []
        let second: UInt64 = 1_000_000_000
        let notifier = ServiceNotifier(watchdogMicroseconds: 2_000_000, statusInterval: 2, tickInterval: 0.25) { sent.append($0) }
        XCTAssertEqual(notifier.watchdogPingInterval, second)
        notifier.ready(now: 0, status: "listening on x", linesPublished: 0)
        XCTAssertEqual(sent, ["READY=1\nSTATUS=listening on x\nWATCHDOG=1"])
        sent.removeAll()
        var now: UInt64 = 0
        var pings: [UInt64] = []
        for _ in 0..<16 {  // four seconds of 0.25 s ticks, 10 lines published per tick (40/s)
            now += second / 4
            let before = sent.count
            notifier.tick(now: now, clients: 3, rooms: 2, linesPublished: now / (second / 40))
            if sent.count > before && sent.last!.contains("WATCHDOG=1") { pings.append(now) }
        }
        XCTAssertEqual(pings, [1, 2, 3, 4].map { $0 * second })
        XCTAssertEqual(sent.filter { $0.contains("STATUS=") }, ["WATCHDOG=1\nSTATUS=3 clients, 2 rooms, 40.0 messages/s",
                                                               "WATCHDOG=1\nSTATUS=3 clients, 2 rooms, 40.0 messages/s"])
        notifier.shutdownBegan(clients: 1)
        notifier.shutdownBegan(clients: 1)
        XCTAssertEqual(sent.last, "STOPPING=1\nSTATUS=shutting down: 1 client left")
        XCTAssertEqual(sent.filter { $0.hasPrefix("STOPPING") }.count, 1)
        XCTAssertEqual(ServiceNotifier.tickInterval(forWatchdogMicroseconds: 400_000), 0.1)
        XCTAssertNil(ServiceNotifier.tickInterval(forWatchdogMicroseconds: nil))

        let quiet = ServiceNotifier(watchdogMicroseconds: nil, tickInterval: 0.25) { sent.append($0) }
        sent.removeAll()
        quiet.ready(now: 0, status: "s", linesPublished: 0)
        quiet.tick(now: second, clients: 0, rooms: 1, linesPublished: 0)
        XCTAssertEqual(sent, ["READY=1\nSTATUS=s"])
    }
}
