// Issue 9 over real loopback sockets: long lines in small rings, the connection throttle, and how
// per-address limits group IPv6 addresses.

import ChatCore
import ChatServer
import ChatSys
import ChatTestSupport
import Foundation
import Glibc
import XCTest

final class LongLineTests: XCTestCase {
    /// Finding 1: max-line-bytes 65536 and one 16,364-byte message crashed chatd (SIGILL in MessageRing).
    func testLinesLongerThanANewRingAreDelivered() throws {
        let server = try TestServer { $0.chat.maxLineBytes = 65536; $0.chat.messageRate = 0 }
        defer { server.stop() }
        let a = try LineClient.named("alice", port: server.port)
        let b = try LineClient.named("bob", port: server.port)
        try a.expect(prefix: "SYS #lobby Online: bob")
        for size in [16_364, 65_536] {
            let text = String(repeating: "q", count: size)
            a.send(text + "\n")
            XCTAssertEqual(try b.expect(prefix: "MSG #lobby alice: "), "MSG #lobby alice: " + text)
        }
        a.send("/who\n")
        try a.expect(prefix: "SYS Who #lobby (2)")
    }

    /// Finding 1 after SIGHUP raised max-line-bytes: the lobby's ring was made for 4 KiB lines.
    func testSIGHUPRaisingTheLineLimit() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("chatd-longline-\(getpid()).conf")
        try "listen = 127.0.0.1:0\nmessage-rate = 0\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let daemon = try DaemonProcess(["--config", file.path, "--connect-rate", "0"])
        defer { daemon.terminate() }
        let listener = try LineClient.named("listener", port: daemon.port)
        try "listen = 127.0.0.1:0\nmessage-rate = 0\nmax-line-bytes = 65536\n".write(to: file, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        try waitUntil("the reload", timeout: 10) { daemon.readStderr().contains("configuration reloaded") }
        let talker = try LineClient.named("talker", port: daemon.port)
        let text = String(repeating: "w", count: 60_000)
        talker.send(text + "\n")
        XCTAssertEqual(try listener.expect(prefix: "MSG #lobby talker: "), "MSG #lobby talker: " + text)
        XCTAssertTrue(daemon.process.isRunning)
        daemon.signal(SIGTERM)
        XCTAssertEqual(daemon.waitForExit(), 0)
    }
}

final class ConnectionThrottleTests: XCTestCase {
    /// Finding 6: reconnecting no longer buys a fresh message burst without limit. Past the burst a new
    /// connection gets one line and is closed, before it is greeted; the connected are not disturbed.
    func testReconnectsPastTheBurstAreRefusedWithALine() throws {
        let server = try TestServer { $0.connectRate = 0.01; $0.connectBurst = 5; $0.chat.presenceDelay = 0 }
        defer { server.stop() }
        let member = try LineClient.named("member", port: server.port)
        for i in 0..<4 {
            let client = try LineClient.named("r\(i)", port: server.port)
            client.send("/quit\n")
            _ = try client.expectClose()
        }
        let refused = try LineClient(port: server.port)
        let lines = try refused.expectClose()
        XCTAssertEqual(lines.count, 1, "\(lines)")
        XCTAssertTrue(lines.first?.hasPrefix("ERR throttled too many new connections from your address; try again in ") ?? false, "\(lines)")
        member.send("/who\n")
        XCTAssertEqual(try member.expect(prefix: "SYS Who"), "SYS Who #lobby (1): member")
        XCTAssertEqual(server.server.refusedTotal, 1)
    }

    func testBucketRefillsAndIdleAddressesAreForgotten() {
        var throttle = ConnectionThrottle<String>(ratePerSecond: 2, burst: 3)
        let second: UInt64 = 1_000_000_000
        for _ in 0..<3 { XCTAssertEqual(throttle.admit("a", now: 10 * second), .admitted) }
        XCTAssertEqual(throttle.admit("a", now: 10 * second), .throttled(retryAfterSeconds: 1))
        XCTAssertEqual(throttle.admit("b", now: 10 * second), .admitted, "other addresses are not affected")
        XCTAssertEqual(throttle.admit("a", now: 10 * second + second / 2), .admitted, "one token per half second")
        XCTAssertEqual(throttle.admit("a", now: 10 * second + second / 2), .throttled(retryAfterSeconds: 1))
        throttle.sweep(now: 11 * second)
        XCTAssertEqual(throttle.count, 1, "b has refilled and is forgotten; a has not")
        throttle.sweep(now: 20 * second)
        XCTAssertEqual(throttle.count, 0, "full buckets are as good as none")
        throttle.update(ratePerSecond: 0, burst: 3)
        for _ in 0..<100 { XCTAssertEqual(throttle.admit("a", now: 20 * second), .admitted) }
    }

    func testAFullTableAdmitsUntrackedRatherThanRefusingStrangers() {
        var throttle = ConnectionThrottle<Int>(ratePerSecond: 0.001, burst: 1, maxEntries: 10)
        for key in 0..<10 { XCTAssertEqual(throttle.admit(key, now: 1), .admitted) }
        XCTAssertEqual(throttle.admit(10, now: 1), .admittedUntracked)
        XCTAssertEqual(throttle.admit(3, now: 1), .throttled(retryAfterSeconds: 1000), "tracked ones still are")
    }

    /// One host holds a whole /64: per-address limits count IPv6 by prefix, IPv4-mapped addresses as IPv4.
    func testIPv6AddressesAreCountedByPrefix() {
        func key(_ text: String, _ bits: Int = 64) -> AddressKey { SocketAddress(parsing: text)!.networkKey(ipv6PrefixLength: bits) }
        XCTAssertEqual(key("[2001:db8:1:2::1]:1"), key("[2001:db8:1:2:ffff:ffff:ffff:ffff]:2"))
        XCTAssertNotEqual(key("[2001:db8:1:2::1]:1"), key("[2001:db8:1:3::1]:1"))
        XCTAssertEqual(key("[2001:db8:1:2::1]:1", 48), key("[2001:db8:1:3::1]:1", 48))
        XCTAssertNotEqual(key("[2001:db8::1]:1", 128), key("[2001:db8::2]:1", 128))
        XCTAssertEqual(key("[::ffff:192.0.2.7]:1"), key("192.0.2.7:9"))
        XCTAssertNotEqual(key("192.0.2.7:1"), key("192.0.2.8:1"))
    }

    /// The per-address connection limit groups a /64 too: a client cannot dodge it by changing its interface id.
    func testPerAddressLimitCountsAnIPv6PrefixAsOneAddress() throws {
        let server: TestServer
        do {
            server = try TestServer {
                $0.listen = [SocketAddress(parsing: "[::1]:0")!]
                $0.maxClientsPerAddress = 2
                $0.ipv6PrefixLength = 64
            }
        } catch {
            throw XCTSkip("no IPv6 loopback here: \(error)")
        }
        defer { server.stop() }
        let one = try LineClient(port: server.port, host: "::1")
        let two = try LineClient(port: server.port, host: "::1")
        try one.expect(prefix: "SYS Hello")
        try two.expect(prefix: "SYS Hello")
        let three = try LineClient(port: server.port, host: "::1")
        XCTAssertTrue(try three.expectClose().first?.hasPrefix("ERR too-many-connections") ?? false)
    }
}
