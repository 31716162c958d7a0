// Flush coalescing (`flush-interval-ms`): a client written recently waits for the interval to pass and then
// gets every line posted meanwhile in order; deferred readers are flushed early rather than overrun.
// Only lower bounds on time are asserted (a slow machine can only make them longer).

import ChatServer
import ChatSys
import ChatTestSupport
import Foundation
import Glibc
import XCTest

final class FlushIntervalTests: XCTestCase {
    func testLinesPostedWithinTheIntervalArriveTogetherAfterIt() throws {
        let server = try TestServer { config in
            config.chat.messageRate = 0
            config.flushInterval = 0.3
        }
        defer { server.stop() }
        let alice = try LineClient.named("alice", port: server.port)
        let bob = try LineClient.named("bob", port: server.port)
        try alice.expect(prefix: "SYS #lobby Online: bob")

        let firstSent = monotonic()
        alice.send("one\n")
        XCTAssertEqual(try bob.expect(prefix: "MSG "), "MSG #lobby alice: one")
        alice.send("two\nthree\nfour\n")
        XCTAssertEqual(try bob.expect(prefix: "MSG "), "MSG #lobby alice: two")
        // bob was written when "one" arrived (after it was sent), so "two" had to wait for the interval.
        XCTAssertGreaterThanOrEqual(monotonic() - firstSent, 0.29)
        XCTAssertEqual(try bob.expect(prefix: "MSG "), "MSG #lobby alice: three")
        XCTAssertEqual(try bob.expect(prefix: "MSG "), "MSG #lobby alice: four")
    }

    func testDeferredReadersAreFlushedBeforeTheRingCouldOverrunThem() throws {
        let server = try TestServer { config in
            config.chat.messageRate = 0
            config.chat.maxLineBytes = 512
            config.chat.ringInitialBytes = 1024
            config.chat.ringBytes = 2048
            config.flushInterval = 1  // far longer than the burst: only the quarter-ring rule can flush early
        }
        defer { server.stop() }
        let alice = try LineClient.named("alice", port: server.port)
        let bob = try LineClient.named("bob", port: server.port)
        try alice.expect(prefix: "SYS #lobby Online: bob")
        alice.send("warm-up\n")
        try bob.expect(prefix: "MSG #lobby alice: warm-up")

        let count = 200
        for i in 0..<count {
            alice.send("line \(i) " + String(repeating: "x", count: 80) + "\n")
        }
        for i in 0..<count {
            let line = try bob.expect(prefix: "MSG ", timeout: 10)
            XCTAssertTrue(line.hasPrefix("MSG #lobby alice: line \(i) "), "expected line \(i), got \(line)")
        }
        XCTAssertFalse(bob.received.contains { $0.hasPrefix("SYS Missed") }, "a reader that keeps up must never be overrun")
    }

    func testZeroTurnsCoalescingOff() throws {
        let server = try TestServer { config in
            config.chat.messageRate = 0
            config.flushInterval = 0
        }
        defer { server.stop() }
        let alice = try LineClient.named("alice", port: server.port)
        let bob = try LineClient.named("bob", port: server.port)
        try alice.expect(prefix: "SYS #lobby Online: bob")
        for i in 0..<50 { alice.send("m\(i)\n") }
        for i in 0..<50 { XCTAssertEqual(try bob.expect(prefix: "MSG "), "MSG #lobby alice: m\(i)") }
    }

    func testFlushIntervalIsASetting() throws {
        var config = ServerConfig()
        try config.apply(key: "flush-interval-ms", value: "30")
        XCTAssertEqual(config.flushInterval, 0.03, accuracy: 1e-9)
        try config.apply(key: "flush-interval-ms", value: "5000")
        XCTAssertThrowsError(try config.validate())
    }
}
