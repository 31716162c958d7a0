// The engine over real loopback sockets: an in-process server on an ephemeral port.

import ChatServer
import ChatTestSupport
import Foundation
import Glibc
import XCTest

final class ChatServerTests: XCTestCase {
    /// The seed's scenario, done right: two clients name themselves, see `Online:`, chat, and see `Offline:`.
    func testSeedScenario() throws {
        let server = try TestServer()
        defer { server.stop() }
        let alice = try LineClient(port: server.port)
        try alice.expect(prefix: "SYS Hello:")
        alice.send("alice\n")
        try alice.expect(prefix: "SYS Welcome: alice")
        try alice.expect(prefix: "SYS #lobby Online: alice")

        let bob = try LineClient.named("bob", port: server.port)
        try bob.expect(prefix: "SYS #lobby Online: bob")
        try alice.expect(prefix: "SYS #lobby Online: bob")

        alice.send("hello, bob\n")
        XCTAssertEqual(try bob.expect(prefix: "MSG "), "MSG #lobby alice: hello, bob")
        bob.send("hi alice\r\n")
        XCTAssertEqual(try alice.expect(prefix: "MSG "), "MSG #lobby bob: hi alice")

        bob.shutdownWrite()
        try alice.expect(prefix: "SYS #lobby Offline: bob")
        _ = try bob.expectClose()
        // The sender never gets its own line back.
        XCTAssertFalse(alice.received.contains("MSG #lobby alice: hello, bob"))
        XCTAssertFalse(bob.received.contains("MSG #lobby bob: hi alice"))
    }

    func testWelcomeListsWhoIsOnline() throws {
        let server = try TestServer()
        defer { server.stop() }
        let alice = try LineClient.named("alice", port: server.port)
        let bob = try LineClient(port: server.port)
        bob.send("bob\n")
        let welcome = try bob.expect(prefix: "SYS Welcome: bob")
        XCTAssertTrue(welcome.contains("online (2): alice bob"), welcome)
        try alice.expect(prefix: "SYS #lobby Online: bob")
    }

    func testRoomsSeparateTraffic() throws {
        let server = try TestServer()
        defer { server.stop() }
        let alice = try LineClient.named("alice", port: server.port)
        let bob = try LineClient.named("bob", port: server.port)
        let carol = try LineClient.named("carol", port: server.port)
        try alice.expect(prefix: "SYS #lobby Online: carol")

        bob.send("/join #dev\n")
        XCTAssertEqual(try bob.expect(prefix: "SYS Room:"), "SYS Room: #dev; members (1): bob")
        try alice.expect(prefix: "SYS #lobby Left: bob (to #dev)")
        carol.send("/join dev\n")
        try bob.expect(prefix: "SYS #dev Joined: carol")

        carol.send("in dev\n")
        XCTAssertEqual(try bob.expect(prefix: "MSG "), "MSG #dev carol: in dev")
        alice.send("in lobby\n")
        alice.send("/rooms\n")
        XCTAssertEqual(try alice.expect(prefix: "SYS Rooms"), "SYS Rooms (2): #dev(2) #lobby(1)")
        bob.send("/who\n")
        XCTAssertEqual(try bob.expect(prefix: "SYS Who"), "SYS Who #dev (2): bob carol")
        XCTAssertFalse(bob.received.contains { $0.contains("in lobby") })
        XCTAssertFalse(alice.received.contains { $0.contains("in dev") })
    }

    func testPrivateMessageReachesOnlyItsTarget() throws {
        let server = try TestServer()
        defer { server.stop() }
        let alice = try LineClient.named("alice", port: server.port)
        let bob = try LineClient.named("bob", port: server.port)
        let carol = try LineClient.named("carol", port: server.port)
        alice.send("/msg BOB  two spaces kept\n")
        XCTAssertEqual(try bob.expect(prefix: "PRIV "), "PRIV alice:  two spaces kept")
        alice.send("/msg nobody hi\n")
        XCTAssertTrue(try alice.expect(prefix: "ERR ").hasPrefix("ERR no-such-user"))
        carol.send("/who\n")
        try carol.expect(prefix: "SYS Who")
        XCTAssertFalse(carol.received.contains { $0.hasPrefix("PRIV") })
    }

    func testNameCollisionIsCaseInsensitiveAndRetryable() throws {
        let server = try TestServer()
        defer { server.stop() }
        let first = try LineClient.named("Олег", port: server.port)
        let second = try LineClient(port: server.port)
        second.send("ОЛЕГ\n")
        XCTAssertTrue(try second.expect(prefix: "ERR ").hasPrefix("ERR name-taken"))
        second.send("bad name\n")
        XCTAssertTrue(try second.expect(prefix: "ERR ").hasPrefix("ERR name-invalid"))
        second.send("Ольга\n")
        try second.expect(prefix: "SYS Welcome: Ольга")
        try first.expect(prefix: "SYS #lobby Online: Ольга")
    }

    /// A user called `Online` cannot forge the system announcement: its lines start with `MSG`.
    func testUserNamedLikeASystemWord() throws {
        let server = try TestServer()
        defer { server.stop() }
        let watcher = try LineClient.named("watcher", port: server.port)
        let impostor = try LineClient.named("Online", port: server.port)
        try watcher.expect(prefix: "SYS #lobby Online: Online")
        impostor.send("eve\n")
        XCTAssertEqual(try watcher.expect(prefix: "MSG "), "MSG #lobby Online: eve")
        impostor.send("SYS #lobby Online: mallory\n")
        XCTAssertEqual(try watcher.expect(prefix: "MSG "), "MSG #lobby Online: SYS #lobby Online: mallory")
        XCTAssertEqual(watcher.received.filter { $0.hasPrefix("SYS #lobby Online:") }.count, 2)
    }

    func testOverlongLineIsRefusedAndConnectionStays() throws {
        let server = try TestServer { $0.chat.maxLineBytes = 100 }
        defer { server.stop() }
        let alice = try LineClient.named("alice", port: server.port)
        let bob = try LineClient.named("bob", port: server.port)
        alice.send(String(repeating: "x", count: 5000) + "\nafter\n")
        XCTAssertTrue(try alice.expect(prefix: "ERR ").hasPrefix("ERR line-too-long"))
        XCTAssertEqual(try bob.expect(prefix: "MSG "), "MSG #lobby alice: after")
        // Exactly at the limit is fine.
        let exact = String(repeating: "y", count: 100)
        alice.send(exact + "\n")
        XCTAssertEqual(try bob.expect(prefix: "MSG "), "MSG #lobby alice: " + exact)
    }

    func testInvalidUTF8AndControlsAreRefused() throws {
        let server = try TestServer()
        defer { server.stop() }
        let alice = try LineClient.named("alice", port: server.port)
        let bob = try LineClient.named("bob", port: server.port)
        alice.sendBytes([0x68, 0xC3, 0x28, 10])
        XCTAssertTrue(try alice.expect(prefix: "ERR ").hasPrefix("ERR invalid-utf8"))
        alice.sendBytes(Array("clear \u{1B}[2J screen\n".utf8))
        XCTAssertTrue(try alice.expect(prefix: "ERR ").hasPrefix("ERR control-character"))
        alice.send("tab\tok\n")
        XCTAssertEqual(try bob.expect(prefix: "MSG "), "MSG #lobby alice: tab\tok")
        XCTAssertEqual(bob.received.filter { $0.hasPrefix("MSG") }.count, 1)
        // A name with invalid UTF-8 is refused too, and the connection may try again.
        let carol = try LineClient(port: server.port)
        carol.sendBytes([0xFF, 0xFE, 10])
        XCTAssertTrue(try carol.expect(prefix: "ERR ").hasPrefix("ERR invalid-utf8"))
    }

    func testUnknownCommandAndHelp() throws {
        let server = try TestServer()
        defer { server.stop() }
        let alice = try LineClient.named("alice", port: server.port)
        alice.send("/frobnicate\n")
        XCTAssertTrue(try alice.expect(prefix: "ERR ").hasPrefix("ERR unknown-command"))
        alice.send("/help\n")
        try alice.expect(prefix: "SYS Help:")
        alice.send("/quit see you\n")
        let rest = try alice.expectClose()
        XCTAssertEqual(rest.last, "SYS Bye: \"see you\"")
    }

    func testRateLimitRefusesExcessLines() throws {
        let server = try TestServer { $0.chat.messageRate = 1; $0.chat.messageBurst = 3 }
        defer { server.stop() }
        let alice = try LineClient.named("alice", port: server.port)
        let bob = try LineClient.named("bob", port: server.port)
        alice.send("1\n2\n3\n4\n5\n")
        try alice.expect(prefix: "ERR rate-limited")
        try alice.expect(prefix: "ERR rate-limited")
        XCTAssertEqual(try bob.expect(prefix: "MSG "), "MSG #lobby alice: 1")
        try bob.expect(prefix: "MSG #lobby alice: 3")
        XCTAssertFalse(bob.pump(timeout: 0.2) && bob.received.contains("MSG #lobby alice: 4"))
    }

    func testMaxClientsRefusesWithALine() throws {
        let server = try TestServer { $0.maxClients = 2 }
        defer { server.stop() }
        let first = try LineClient.named("one", port: server.port)
        let second = try LineClient.named("two", port: server.port)
        let third = try LineClient(port: server.port)
        let lines = try third.expectClose()
        try second.expect(prefix: "SYS #lobby Online: two")
        XCTAssertEqual(lines.count, 1)
        XCTAssertTrue(lines[0].hasPrefix("ERR server-full"), lines[0])
        first.send("still here\n")
        first.send("/who\n")
        try first.expect(prefix: "SYS Who #lobby (2)")
    }

    func testPerAddressLimit() throws {
        let server = try TestServer { $0.maxClientsPerAddress = 1 }
        defer { server.stop() }
        let first = try LineClient.named("one", port: server.port)
        let second = try LineClient(port: server.port)
        let lines = try second.expectClose()
        XCTAssertTrue(lines.first?.hasPrefix("ERR too-many-connections") ?? false, "\(lines)")
        first.send("/who\n")
        try first.expect(prefix: "SYS Who #lobby (1)")
    }

    func testNameDeadlineClosesSilentConnections() throws {
        let server = try TestServer { $0.nameTimeout = 0.3 }
        defer { server.stop() }
        let silent = try LineClient(port: server.port)
        silent.send("sl")  // half a name, never finished: slowloris
        let lines = try silent.expectClose(timeout: 5)
        XCTAssertTrue(lines.contains { $0.hasPrefix("ERR name-timeout") }, "\(lines)")
        // The server still serves others.
        _ = try LineClient.named("alice", port: server.port)
    }

    /// A client that never reads must cost the others nothing: they receive every line; it is told it missed
    /// lines or is disconnected for not reading.
    func testClientThatNeverReads() throws {
        let server = try TestServer {
            $0.chat.maxLineBytes = 1000
            $0.chat.ringBytes = 64 * 1024
            $0.chat.messageRate = 0
            $0.writeTimeout = 1
            // The sender is a firehose (5.6 MB at once) to make a slow reader fall behind; the input budget would
            // only spread that over 20 s. What is tested here is the output side.
            $0.inputBytesPerSecond = 0
        }
        defer { server.stop() }
        let sleeper = try LineClient(port: server.port, receiveBuffer: 4096)
        sleeper.send("sleeper\n")
        let sender = try LineClient.named("sender", port: server.port)
        let reader = try LineClient.named("reader", port: server.port)
        let payload = String(repeating: "p", count: 900)
        let count = 6000  // ~5.6 MB: far more than the ring and the sleeper's socket buffers hold
        var expected: [String] = []
        for i in 0..<count {
            sender.send("\(i) \(payload)\n")
            expected.append("MSG #lobby sender: \(i) \(payload)")
            if i % 50 == 0 { reader.pump(timeout: 0) }
        }
        XCTAssertTrue(pumpAll([reader], timeout: 20) { reader.received.filter { $0.hasPrefix("MSG") }.count >= count })
        let got = reader.received.filter { $0.hasPrefix("MSG") }
        XCTAssertEqual(got.count, expected.count)
        XCTAssertTrue(got == expected, "the reader lost or reordered lines")
        XCTAssertFalse(reader.received.contains { $0.hasPrefix("SYS Missed") })
        // The server gives up on the sleeper after the write timeout and tells the others.
        try reader.expect(prefix: "SYS #lobby Offline: sleeper (write timeout", timeout: 15)
        // Now the sleeper wakes up and reads what reached it: whole lines, in order, then the end.
        _ = try sleeper.expectClose(timeout: 10)
        // Lines already in the kernel's buffers when the server gave up may end in a cut line; the server then
        // ends it with a newline so that its reason arrives whole, as the last line.
        var sleeperGot = sleeper.received.filter { $0.hasPrefix("MSG") || $0.hasPrefix("ERR") }
        if sleeperGot.last?.hasPrefix("ERR") == true {
            XCTAssertTrue(sleeperGot.removeLast().hasPrefix("ERR write-timeout"))
            if let cut = sleeperGot.last, !expected.contains(cut) {
                XCTAssertTrue(expected.contains { $0.hasPrefix(cut) }, "the cut line is not a prefix of a line sent")
                sleeperGot.removeLast()
            }
        }
        XCTAssertLessThan(sleeperGot.count, count)
        XCTAssertTrue(sleeperGot.allSatisfy { Set(expected).contains($0) }, "the sleeper got a torn line")
    }

    /// 500 clients, 10 of them sending: nobody loses a line, and each sender's lines arrive in order.
    func testFiveHundredClientsTenSenders() throws {
        let server = try TestServer { $0.chat.messageRate = 0 }
        defer { server.stop() }
        let clientCount = 500
        let senders = 10
        let perSender = 30
        var clients: [LineClient] = []
        for i in 0..<clientCount {
            let client = try LineClient(port: server.port)
            client.send("user\(i)\n")
            clients.append(client)
        }
        XCTAssertTrue(pumpAll(clients, timeout: 30) { clients.allSatisfy { $0.received.contains { $0.hasPrefix("SYS Welcome") } } },
                      "not every client was welcomed")
        // Wait until the last client's Online line reached the first senders, so all are in the room.
        XCTAssertTrue(pumpAll(clients, timeout: 30) {
            clients.allSatisfy { $0.received.contains("SYS #lobby Online: user\(clientCount - 1)") }
        })
        for round in 0..<perSender {
            for s in 0..<senders { clients[s].send("seq \(round) from \(s)\n") }
        }
        let expectedPerClient: (Int) -> Int = { index in index < senders ? (senders - 1) * perSender : senders * perSender }
        let ok = pumpAll(clients, timeout: 60) {
            clients.enumerated().allSatisfy { index, client in
                client.received.lazy.filter { $0.hasPrefix("MSG ") }.count >= expectedPerClient(index)
            }
        }
        XCTAssertTrue(ok, "not every message was delivered in time")
        for (index, client) in clients.enumerated() {
            let messages = client.received.filter { $0.hasPrefix("MSG ") }
            XCTAssertEqual(messages.count, expectedPerClient(index), "client \(index) count")
            for s in 0..<senders where s != index {
                let fromSender = messages.filter { $0.hasPrefix("MSG #lobby user\(s): ") }
                XCTAssertEqual(fromSender, (0..<perSender).map { "MSG #lobby user\(s): seq \($0) from \(s)" }, "client \(index) from \(s)")
            }
            XCTAssertFalse(client.received.contains { $0.hasPrefix("SYS Missed") || $0.hasPrefix("ERR") })
        }
    }

    /// Graceful stop with output pending: every client gets what was queued, then the shutdown line.
    func testStopDeliversPendingOutputThenShutdownLine() throws {
        let server = try TestServer { $0.chat.messageRate = 0 }
        let alice = try LineClient.named("alice", port: server.port)
        let bob = try LineClient.named("bob", port: server.port)
        for i in 0..<200 { alice.send("burst \(i)\n") }
        alice.send("/who\n")
        try alice.expect(prefix: "SYS Who")  // the server has read the whole burst
        try bob.expect(prefix: "MSG #lobby alice: burst 0")
        server.stop()
        let rest = try bob.expectClose()
        XCTAssertEqual(rest.last, "SYS Shutdown: the server is shutting down")
        XCTAssertTrue(bob.received.contains("MSG #lobby alice: burst 199"))
        _ = try alice.expectClose()
    }

    /// A flooder does not starve others: the read budget moves it to the back of the line each turn.
    func testFlooderDoesNotStarveOthers() throws {
        let server = try TestServer { $0.chat.messageRate = 0; $0.readBudgetBytes = 4096 }
        defer { server.stop() }
        let flooder = try LineClient.named("flooder", port: server.port)
        let alice = try LineClient.named("alice", port: server.port)
        let bob = try LineClient.named("bob", port: server.port)
        let flood = String(repeating: "f", count: 200) + "\n"
        let big = String(repeating: flood, count: 2000)
        let floodThread = Thread { flooder.send(big) }
        floodThread.start()
        alice.send("quick question\n")
        try bob.expect("alice's line amid the flood", timeout: 20) { $0 == "MSG #lobby alice: quick question" }
    }
}
