// The IRC front's limits over loopback (issue 10, "Limits as for native clients"): pings and the ping timeout,
// the registration deadline, the connection limits, the message rate, the 512-byte line, and slow readers.
// Each limit answers an IRC client in IRC (`ERROR :…`, `NOTICE`, numerics), never with a native line.
// Every wait is a condition with a deadline; every assertion is on what arrived, never on timings.

@testable import ChatServer
import ChatSys
import ChatTestSupport
import Foundation
import Glibc
import XCTest

/// Lines as received, without IRC's `\r`.
private func stripped(_ lines: [String]) -> [String] {
    lines.map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
}

final class IRCLimitsTests: XCTestCase {
    // MARK: PING and the ping timeout

    /// A registered client that stays quiet for `irc-ping-interval` is sent `PING`; one that does not answer
    /// within `irc-ping-timeout` is closed with `ERROR :Ping timeout …`, and the room sees why it left. A client
    /// that answers stays.
    func testAQuietClientIsPingedAndClosedWhenItDoesNotAnswer() throws {
        let (server, ircPort) = try ircServer {
            $0.ircPingInterval = 1
            $0.ircPingTimeout = 2  // the margin `lively` has to answer on a loaded machine
        }
        defer { server.stop() }
        XCTAssertEqual(server.server.ircFront.pingInterval, 1_000_000_000, "irc-ping-interval reaches the front")
        XCTAssertEqual(server.server.ircFront.pingTimeout, 2_000_000_000, "irc-ping-timeout reaches the front")
        let watcher = try LineClient.named("watcher", port: server.port)
        let quiet = try registerIRC("quiet", port: ircPort)
        let lively = try registerIRC("lively", port: ircPort)
        quiet.send("JOIN #lobby\r\n")
        _ = try quiet.expectIRC(prefix: ":chatd 366")
        XCTAssertEqual(try watcher.expect(prefix: "SYS #lobby Joined: quiet"), "SYS #lobby Joined: quiet")

        XCTAssertEqual(try quiet.expectIRC(prefix: "PING", timeout: 10), "PING :chatd")
        // `lively` answers every PING it gets while `quiet` is timed out.
        var livelyPings = 0
        let deadline = monotonic() + 15
        while !quiet.isClosed {
            if monotonic() > deadline { throw ClientError.timeout("the quiet client to be closed") }
            _ = pumpAll([quiet, lively], timeout: 0.2) { false }
            let pings = lively.received.filter { $0 == "PING :chatd\r" }.count
            for _ in livelyPings..<pings { lively.send("PONG :chatd\r\n") }
            livelyPings = pings
            quiet.pump(timeout: 0)
        }
        let lines = stripped(quiet.received)
        XCTAssertEqual(lines.last, "ERROR :Ping timeout: no answer for 2 s", "\(lines.suffix(3))")
        XCTAssertEqual(lines.filter { $0.hasPrefix("PING") }, ["PING :chatd"], "one PING, then the close")
        XCTAssertFalse(lines.contains { $0.hasPrefix("ERR ") || $0.hasPrefix("SYS ") }, "no native line reaches an IRC client")
        XCTAssertEqual(try watcher.expect(prefix: "SYS #lobby Offline: quiet"), "SYS #lobby Offline: quiet (ping timeout)")

        XCTAssertGreaterThan(livelyPings, 0, "lively was pinged too")
        lively.send("PING :still-here\r\n")
        XCTAssertEqual(try lively.expectIRC(prefix: ":chatd PONG"), ":chatd PONG chatd :still-here", "a client that answers stays")
        XCTAssertFalse(lively.received.contains { $0.hasPrefix("ERROR") })
    }

    /// The settings reach a running daemon through its flags and file, and SIGHUP applies new values to
    /// connected IRC clients at once.
    func testPingSettingsComeFromTheFileAndSIGHUPAppliesThem() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("chatd-irc-ping-\(getpid()).conf")
        let base = "listen = 127.0.0.1:0\nirc-listen = 127.0.0.1:0\nconnect-rate = 0\n"
        try (base + "irc-ping-interval = 86400\nirc-ping-timeout = 86400\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let daemon = try DaemonProcess(["--config", file.path], waitForListening: false)
        defer { daemon.terminate() }
        var ircPort: UInt16 = 0
        try waitUntil("chatd to listen", timeout: 20) {
            let log = daemon.readStderr()
            guard let range = log.range(of: #"addresses="127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+""#, options: .regularExpression) else { return false }
            ircPort = UInt16(log[range].dropLast().split(separator: ":").last!)!
            return true
        }
        let client = try registerIRC("sleepy", port: ircPort)
        try (base + "irc-ping-interval = 1\nirc-ping-timeout = 1.5\n").write(to: file, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        try waitUntil("the reload", timeout: 10) { daemon.readStderr().contains("configuration reloaded") }
        XCTAssertEqual(try client.expectIRC(prefix: "PING", timeout: 10), "PING :chatd", "the new interval applies to a connected client")
        let lines = stripped(try client.expectClose(timeout: 10))
        XCTAssertEqual(lines.last, "ERROR :Ping timeout: no answer for 1.5 s")

        // Out of range in the file: the reload is refused, naming the key; on the command line: exit 2.
        try (base + "irc-ping-timeout = 0.5\n").write(to: file, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        try waitUntil("the failed reload", timeout: 10) { daemon.readStderr().contains("reload failed") }
        XCTAssertTrue(daemon.readStderr().contains("irc-ping-timeout: must be 1 to 86400 s, got 0.5"), daemon.readStderr())
        daemon.signal(SIGTERM)
        XCTAssertEqual(daemon.waitForExit(), 0)
        let bad = try DaemonProcess(["--listen", "127.0.0.1:0", "--irc-ping-interval", "86401"], waitForListening: false)
        XCTAssertEqual(bad.waitForExit(), 2)
        XCTAssertTrue(bad.readStderr().contains("chatd: irc-ping-interval: must be 1 to 86400 s, got 86401"), bad.readStderr())
    }

    // MARK: Registration deadline

    /// A connection that does not complete NICK and USER within `name-timeout` gets `ERROR :Registration
    /// timeout …` and is closed, whether it sent nothing or only half; one that registered in time stays.
    func testRegistrationDeadlineClosesWithAnIRCError() throws {
        let (server, ircPort) = try ircServer { $0.nameTimeout = 1 }
        defer { server.stop() }
        let silent = try LineClient(port: ircPort)
        let half = try LineClient(port: ircPort)
        half.send("NICK half\r\n")
        let slowloris = try LineClient(port: ircPort)
        slowloris.send("NICK slo")  // never finished
        let registered = try registerIRC("intime", port: ircPort)
        for client in [silent, half, slowloris] {
            let lines = stripped(try client.expectClose(timeout: 10))
            XCTAssertEqual(lines.last, "ERROR :Registration timeout: not registered within 1 s", "\(lines)")
            XCTAssertFalse(lines.contains { $0.hasPrefix("ERR ") }, "\(lines)")
        }
        registered.send("PING :ok\r\n")
        XCTAssertEqual(try registered.expectIRC(prefix: ":chatd PONG"), ":chatd PONG chatd :ok")
        XCTAssertFalse(registered.received.contains { $0.hasPrefix("ERROR") })
    }

    // MARK: Connection limits

    /// `max-clients`, shared by both fronts: a refused IRC connection gets one `ERROR :…` line, a refused
    /// native one its native line.
    func testMaxClientsRefusesAnIRCClientWithAnIRCError() throws {
        let (server, ircPort) = try ircServer { $0.maxClients = 2 }
        defer { server.stop() }
        let native = try LineClient.named("native", port: server.port)
        let irc = try registerIRC("irc", port: ircPort)
        let refused = stripped(try LineClient(port: ircPort).expectClose())
        XCTAssertEqual(refused, ["ERROR :Server full: it has its maximum of 2 clients; try again later"])
        let refusedNative = try LineClient(port: server.port).expectClose()
        XCTAssertEqual(refusedNative.count, 1)
        XCTAssertTrue(refusedNative.first?.hasPrefix("ERR server-full") ?? false, "\(refusedNative)")
        irc.send("PING :x\r\n")
        XCTAssertEqual(try irc.expectIRC(prefix: ":chatd PONG"), ":chatd PONG chatd :x", "the connected are unaffected")
        _ = native
    }

    /// `max-clients-per-address` and the connect-rate throttle answer an IRC client in IRC.
    func testPerAddressLimitAndThrottleRefuseAnIRCClientWithAnIRCError() throws {
        let (server, ircPort) = try ircServer { $0.maxClientsPerAddress = 2 }
        defer { server.stop() }
        let first = try registerIRC("first", port: ircPort)
        let second = try LineClient.named("second", port: server.port)
        let refused = stripped(try LineClient(port: ircPort).expectClose())
        XCTAssertEqual(refused, ["ERROR :Too many connections: at most 2 per address"])
        first.send("PING :x\r\n")
        XCTAssertEqual(try first.expectIRC(prefix: ":chatd PONG"), ":chatd PONG chatd :x")
        _ = second

        let (throttled, throttledPort) = try ircServer {
            $0.connectRate = 0.001
            $0.connectBurst = 1
        }
        defer { throttled.stop() }
        let admitted = try registerIRC("admitted", port: throttledPort)
        let lines = stripped(try LineClient(port: throttledPort).expectClose())
        XCTAssertEqual(lines.count, 1, "\(lines)")
        XCTAssertTrue(lines.first?.hasPrefix("ERROR :Too many new connections from your address; try again in ") ?? false, "\(lines)")
        _ = admitted
    }

    // MARK: Message rate

    /// Lines over `message-rate` get an IRC `NOTICE` and are not relayed; every line is either relayed or
    /// refused with a notice; PING is answered whatever the rate.
    func testMessageFloodGetsAnIRCNoticeAndEveryLineIsRelayedOrRefused() throws {
        let (server, ircPort) = try ircServer {
            $0.chat.messageRate = 0.001
            $0.chat.messageBurst = 5
        }
        defer { server.stop() }
        let watcher = try LineClient.named("watcher", port: server.port)
        let flooder = try registerIRC("flooder", port: ircPort)
        flooder.send("JOIN #lobby\r\n")  // one token
        _ = try flooder.expectIRC(prefix: ":chatd 366")
        let count = 20
        flooder.send((0..<count).map { "PRIVMSG #lobby :flood \($0)\r\n" }.joined() + "PING :done\r\n")
        _ = try flooder.expectIRC(prefix: ":chatd PONG chatd :done")  // replies come in order: every line was handled
        let notices = stripped(flooder.received).filter { $0.hasPrefix(":chatd NOTICE flooder :*** Slow down") }
        XCTAssertEqual(notices.first, ":chatd NOTICE flooder :*** Slow down: more than 0.001 lines per second; PRIVMSG was not processed")
        XCTAssertFalse(flooder.received.contains { $0.hasPrefix("ERR ") || $0.hasPrefix("ERROR") }, "a NOTICE, not a native line or a close")
        let relayed = count - notices.count
        XCTAssertEqual(relayed, 4, "the burst of 5 less the JOIN's token")
        // A line posted after every flood line was handled: the room's lines reach the watcher in order.
        let closer = try LineClient.named("closer", port: server.port)
        closer.send("sentinel\n")
        try watcher.expect(prefix: "MSG #lobby closer: sentinel")
        let got = watcher.received.filter { $0.hasPrefix("MSG #lobby flooder: ") }
        XCTAssertEqual(got, (0..<relayed).map { "MSG #lobby flooder: flood \($0)" }, "exactly the lines not refused were relayed")
    }

    // MARK: Line length

    /// 512 bytes with CR LF (tags aside) is the longest line; one byte more gets `417` and nothing is done, and
    /// so does a line far past the framer's limit, whose rest is discarded. The connection stays either way.
    func testLinesOver512BytesGet417AndTheConnectionStays() throws {
        let (server, ircPort) = try ircServer { $0.chat.messageRate = 0 }
        defer { server.stop() }
        let watcher = try LineClient.named("watcher", port: server.port)
        let talker = try registerIRC("talker", port: ircPort)
        talker.send("JOIN #lobby\r\n")
        _ = try talker.expectIRC(prefix: ":chatd 366")
        // A NOTICE: a PRIVMSG this long would get 417 for not fitting one relayed line with talker's
        // nick!user@host in front (IRCFrontTests.testAPrivmsgThatCannotBeRelayedInOneLineGets417AndIsNotSent).
        let head = "NOTICE #lobby :"
        let longest = String(repeating: "a", count: 512 - 2 - head.utf8.count)
        talker.send(head + longest + "\r\n")
        XCTAssertEqual(try watcher.expect(prefix: "MSG "), "MSG #lobby talker: " + longest, "512 bytes with CR LF is allowed")
        talker.send(head + longest + "b\r\n")
        XCTAssertEqual(try talker.expectIRC(prefix: ":chatd 417"), ":chatd 417 talker :Input line was too long")
        // Far past the framer's limit (tags and body together): reported once, the rest discarded.
        talker.send(head + String(repeating: "c", count: 100_000) + "\r\n")
        XCTAssertEqual(try talker.expectIRC(prefix: ":chatd 417"), ":chatd 417 talker :Input line was too long")
        // Client tags do not count against the 512 bytes, up to their own limit of 4094 bytes.
        let tag = "@+x=" + String(repeating: "t", count: 4094 - 3) + " "
        talker.send(tag + head + "tagged\r\n")
        XCTAssertEqual(try watcher.expect(prefix: "MSG "), "MSG #lobby talker: tagged")
        talker.send("@+x=" + String(repeating: "t", count: 4094 - 2) + " " + head + "overtagged\r\n")
        XCTAssertEqual(try talker.expectIRC(prefix: ":chatd 417"), ":chatd 417 talker :Input line was too long")
        talker.send(head + "after\r\n")
        XCTAssertEqual(try watcher.expect(prefix: "MSG "), "MSG #lobby talker: after", "the connection stays and works")
        XCTAssertEqual(watcher.received.filter { $0.hasPrefix("MSG ") }, ["MSG #lobby talker: " + longest, "MSG #lobby talker: tagged",
                                                                          "MSG #lobby talker: after"],
                       "nothing of a refused line was relayed, not even cut")
        XCTAssertEqual(stripped(talker.received).filter { $0.hasPrefix(":chatd 417") }.count, 3)
        XCTAssertFalse(talker.received.contains { $0.hasPrefix("ERR ") || $0.hasPrefix("ERROR") })
    }

    // MARK: Slow readers

    /// An IRC client that stops reading while a native user posts 6,000 messages of 900 bytes (two IRC lines
    /// each) falls behind the room's IRC ring: when it reads again it is told in an IRC `NOTICE` exactly how
    /// many messages it missed (counting each message once, however many lines it took), and what it did get
    /// is whole messages, in order, around exactly that gap. The readers who keep up (IRC and native) get
    /// every message. Only the sleeper's receive buffer is small; the write timeout is far away.
    func testASlowIRCReaderIsToldExactlyHowManyMessagesItMissed() throws {
        let (server, ircPort) = try ircServer {
            $0.chat.maxLineBytes = 1000
            // 1 MiB of ring: the sleeper (4 KiB receive buffer, not reading) falls 5 MB behind and must miss;
            // the readers who keep up have a megabyte of slack even on a loaded machine.
            $0.chat.ringBytes = 1024 * 1024
            $0.chat.messageRate = 0
            $0.inputBytesPerSecond = 0  // the sender is a firehose; the output side is what is tested
            $0.writeTimeout = 120
        }
        defer { server.stop() }
        let sleeper = try registerIRC("sleeper", port: ircPort, receiveBuffer: 4096)
        let ircReader = try registerIRC("ircreader", port: ircPort)
        for client in [sleeper, ircReader] {
            client.send("JOIN #lobby\r\n")
            _ = try client.expectIRC(prefix: ":chatd 366")
        }
        let nativeReader = try LineClient.named("nativereader", port: server.port)
        let sender = try LineClient.named("sender", port: server.port)
        // Every arrival announced to everyone: the room is quiet from here, so a missed count is messages only.
        XCTAssertTrue(pumpAll([sleeper, ircReader, nativeReader], timeout: 10) {
            [sleeper, ircReader].allSatisfy { client in
                ["nativereader", "sender"].allSatisfy { name in client.received.contains { $0.hasPrefix(":\(name)!\(name)@native JOIN") } }
            } && nativeReader.received.contains("SYS #lobby Online: sender")
        })

        let count = 6000
        let payload = String(repeating: "p", count: 900)
        // The sender waits for the readers who keep up after each 100 messages (90 KB, far less than the
        // ring), so they can never be overrun however slow the machine (ASan); the sleeper, not reading,
        // falls 5 MB behind and must be.
        var batch = ""
        for i in 0..<count {
            batch += "\(i) \(payload)\n"
            if i % 100 == 99 || i == count - 1 {
                sender.send(batch)
                batch = ""
                XCTAssertTrue(pumpAll([ircReader, nativeReader], timeout: 120) {
                    nativeReader.received.last == "MSG #lobby sender: \(i) \(payload)" && endsWithMessage(ircReader, i)
                }, "the readers get message \(i)")
            }
        }
        let expected = (0..<count).map { "\($0) \(payload)" }
        XCTAssertEqual(nativeReader.received.filter { $0.hasPrefix("MSG ") }, expected.map { "MSG #lobby sender: " + $0 })
        XCTAssertEqual(ircMessages(ircReader.received), expected, "the IRC reader that keeps up gets every message whole")
        XCTAssertFalse(ircReader.received.contains { $0.contains("You missed") } || nativeReader.received.contains { $0.hasPrefix("SYS Missed") })

        // The sleeper wakes and reads until the last message.
        XCTAssertTrue(pumpAll([sleeper], timeout: 60) { endsWithMessage(sleeper, count - 1) })
        XCTAssertFalse(sleeper.isClosed)
        let lines = stripped(sleeper.received)
        XCTAssertFalse(lines.contains { $0.hasPrefix("ERR") || $0.hasPrefix("SYS ") || $0.hasPrefix("MSG ") }, "no native line")
        let notices = lines.filter { $0.hasPrefix(":chatd NOTICE #lobby :*** You missed ") }
        XCTAssertEqual(notices.count, 1, "\(notices)")
        let missed = notices.first.flatMap { Int($0.dropFirst(":chatd NOTICE #lobby :*** You missed ".count).prefix { $0 != " " }) } ?? 0
        XCTAssertEqual(notices.first, ":chatd NOTICE #lobby :*** You missed \(missed) messages in #lobby: you were reading too slowly")
        XCTAssertGreaterThan(missed, 0, "the sleeper never fell behind: the test proves nothing")
        // Messages before the notice, then the notice, then the rest: a gap of exactly `missed` between them.
        let noticeAt = lines.firstIndex(of: notices.first ?? "") ?? lines.count
        let before = ircMessages(Array(lines[..<noticeAt])), after = ircMessages(Array(lines[(noticeAt + 1)...]))
        XCTAssertEqual(before.count + missed + after.count, count, "received + missed == posted")
        XCTAssertEqual(before, Array(expected[..<before.count]), "whole messages in order before the gap")
        XCTAssertEqual(after, Array(expected[(count - after.count)...]), "whole messages in order after the gap")
    }

    /// An IRC client that pipelines commands and never reads its replies is dropped by the write timeout, the
    /// room is told why, and what it gets is whole IRC lines (then `ERROR :Write timeout …` if it fits).
    func testAnIRCClientThatNeverReadsIsDroppedWithAnIRCError() throws {
        let (server, ircPort) = try ircServer {
            $0.chat.messageRate = 0
            $0.chat.clientQueueBytes = 64 * 1024
            $0.sendBufferBytes = 4096
            $0.writeTimeout = 0.5
        }
        defer { server.stop() }
        let watcher = try LineClient.named("watcher", port: server.port)
        let hog = try registerIRC("hog", port: ircPort, receiveBuffer: 4096)
        hog.send("JOIN #lobby\r\n")
        _ = try watcher.expect(prefix: "SYS #lobby Joined: hog")
        let flood = Array(String(repeating: "PING :x\r\n", count: 100_000).utf8)
        var offset = 0
        while offset < flood.count {
            let n = flood[offset...].withUnsafeBytes { Glibc.send(hog.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            if n <= 0 { break }
            offset += n
        }
        XCTAssertGreaterThan(offset, 64 * 1024 / 22, "too little was sent to fill the queue")
        let offline = try watcher.expect(prefix: "SYS #lobby Offline: hog", timeout: 20)
        XCTAssertTrue(offline.hasPrefix("SYS #lobby Offline: hog (write timeout"), offline)
        // The hog now reads what reached it: whole PONGs, then the end. The ERROR line is written if the socket
        // has room for it, which a socket that accepted nothing for the write timeout seldom has; then it comes
        // last, after a CR LF that ends a PONG the wire had cut.
        var lines = stripped(try hog.expectClose(timeout: 10))
        if lines.last?.hasPrefix("ERROR") == true {
            XCTAssertEqual(lines.removeLast(), "ERROR :Write timeout: you accepted no data for 0.5 s")
            if let cut = lines.last, cut != ":chatd PONG chatd :x" {
                XCTAssertTrue(":chatd PONG chatd :x".hasPrefix(cut), "the cut line is not a prefix of a PONG: \(cut)")
                lines.removeLast()
            }
        }
        let pongs = lines.filter { $0.hasPrefix(":chatd PONG") || !$0.hasPrefix(":") }
        XCTAssertGreaterThan(pongs.count, 0)
        XCTAssertTrue(pongs.allSatisfy { $0 == ":chatd PONG chatd :x" }, "a torn or foreign line: \(Set(pongs))")
        XCTAssertFalse(lines.contains { $0.hasPrefix("ERR ") }, "no native line")
    }
}

/// The texts of the channel messages in IRC `lines`, a message split over several lines joined back: a piece
/// that starts with a digit starts a message (the test's messages start with their number, continuations
/// with `p`).
private func ircMessages(_ lines: [String]) -> [String] {
    var messages: [String] = []
    for line in lines {
        let line = line.hasSuffix("\r") ? line.dropLast() : Substring(line)
        guard line.hasPrefix(":sender!sender@native PRIVMSG #lobby :") else { continue }
        let text = line.dropFirst(":sender!sender@native PRIVMSG #lobby :".count)
        if let first = text.first, first.isNumber || messages.isEmpty {
            messages.append(String(text))
        } else {
            messages[messages.count - 1] += text
        }
    }
    return messages
}

/// Whether the last two lines `client` received are the two pieces of message `index` (checked without
/// parsing everything received, as the readers' wait calls it after every read).
private func endsWithMessage(_ client: LineClient, _ index: Int) -> Bool {
    let lines = client.received
    return lines.count >= 2 && lines[lines.count - 2].hasPrefix(":sender!sender@native PRIVMSG #lobby :\(index) ")
        && lines[lines.count - 1].hasPrefix(":sender!sender@native PRIVMSG #lobby :p")
}
