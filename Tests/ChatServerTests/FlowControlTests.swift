// Issue 9, findings 3, 7 and 10: a client is dropped only for its own behaviour (not reading), input is read
// at a byte budget, and a half-typed line cannot stay forever. Over real loopback sockets; every wait is a
// condition with a deadline, and every assertion is on counts of what was processed, never on timings.

import ChatServer
import ChatSys
import ChatTestSupport
import Foundation
import Glibc
import XCTest

/// Sends as much of `bytes` as the kernel takes now, without blocking; returns how many it took.
private func sendWithoutBlocking(_ client: LineClient, _ bytes: [UInt8]) -> Int {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { Glibc.send(client.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
        if n <= 0 { break }
        offset += n
    }
    return offset
}

/// A flag shared with a reader thread.
private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

final class FlowControlTests: XCTestCase {
    // MARK: Finding 3: nobody is dropped for what others send it

    /// Four users each send 40 private messages of 4 KB to a victim that reads as fast as it can. The victim is
    /// never dropped, and every message is either delivered or refused to its sender with `ERR target-busy`.
    func testPrivateMessageFloodNeverDropsAReadingVictim() throws {
        let server = try TestServer { $0.chat.messageRate = 0 }
        defer { server.stop() }
        // A small receive window: the victim reads as fast as it can, but the kernel holds little for it, so its
        // queue at the server does fill (before issue 9 that got it dropped with queue-overflow).
        let victim = try LineClient(port: server.port, receiveBuffer: 16 * 1024)
        victim.send("victim\n")
        try victim.expect(prefix: "SYS Welcome: victim")
        let senders = try (0..<4).map { try LineClient.named("sender\($0)", port: server.port) }
        let closer = try LineClient.named("closer", port: server.port)
        let sentinel = "MSG #lobby closer: sentinel"
        let readerDone = Flag()
        let reader = Thread {
            // Reads as fast as it can until the sentinel, a room line posted after every private message was handled.
            _ = pumpAll([victim], timeout: 60) { victim.received.contains(sentinel) }
            readerDone.set()
        }
        reader.start()
        let text = String(repeating: "v", count: 4000)
        for (index, sender) in senders.enumerated() {
            var burst = ""
            for i in 0..<40 { burst += "/msg victim \(index)-\(i) \(text)\n" }
            sender.send(burst)
        }
        var refused = 0
        for sender in senders {
            sender.send("/who\n")
            try sender.expect(prefix: "SYS Who #lobby", timeout: 30)  // replies come in order: every /msg was handled
            refused += sender.received.filter { $0 == "ERR target-busy victim is not reading fast enough; your message was not delivered" }.count
            XCTAssertFalse(sender.received.contains { $0.contains("Offline: victim") }, "the victim was dropped")
        }
        closer.send("sentinel\n")
        try waitUntil("the victim's reader to see the sentinel", timeout: 60) { readerDone.isSet }
        let delivered = victim.received.filter { $0.hasPrefix("PRIV sender") }
        XCTAssertTrue(victim.received.contains(sentinel), "the victim stopped receiving")
        XCTAssertFalse(victim.isClosed)
        XCTAssertFalse(victim.received.contains { $0.hasPrefix("ERR") }, "\(victim.received.filter { $0.hasPrefix("ERR") })")
        XCTAssertEqual(delivered.count + refused, 160, "a private message was neither delivered nor refused to its sender")
        XCTAssertEqual(Set(delivered).count, delivered.count, "a private message was delivered twice")
        XCTAssertGreaterThan(delivered.count, 0)
        XCTAssertEqual(UInt64(refused), server.server.hub.privateRefused)
    }

    /// A client that pipelines commands whose replies exceed its whole queue, and reads: its input is paused
    /// while its replies pile up, never dropped; every reply arrives, in order. Small socket buffers, so the
    /// replies pile up in the queue at all (a socket with room takes a big reply at once, see `replyFlushBytes`).
    func testPipelinedRepliesPauseInputInsteadOfDroppingAReader() throws {
        let server = try TestServer {
            $0.chat.messageRate = 0
            $0.chat.clientQueueBytes = 64 * 1024
            $0.sendBufferBytes = 4096
        }
        defer { server.stop() }
        let client = try LineClient(port: server.port, receiveBuffer: 4096)
        client.send("piper\n")
        try client.expect(prefix: "SYS Welcome: piper")
        let count = 2000  // 2000 x 5 help lines ~ 700 KB of replies, more than ten times the queue
        client.send(String(repeating: "/help\n", count: count) + "/who\n")
        try client.expect(prefix: "SYS Who #lobby (1): piper", timeout: 60)
        XCTAssertEqual(client.received.filter { $0.hasPrefix("SYS Help: ") }.count, 5 * count)
        XCTAssertFalse(client.received.contains { $0.hasPrefix("ERR") })
        XCTAssertGreaterThan(server.server.inputPausedTotal, 0, "the replies never reached the pause mark: the test proves nothing")
    }

    /// A big reply goes to a socket with room as soon as the line that asked for it is handled, not at the end of
    /// the turn (an IRC join storm would otherwise hold every joiner's NAMES in user space at once): a client
    /// that pipelines 28 KB of replies past the 16 KiB pause mark, with room in its socket, is never paused.
    func testBigRepliesGoToASocketWithRoomAtOnce() throws {
        let server = try TestServer {
            $0.chat.messageRate = 0
            $0.chat.clientQueueBytes = 64 * 1024  // input pauses at 16 KiB queued
        }
        defer { server.stop() }
        let client = try LineClient.named("eager", port: server.port)
        let count = 80  // 80 x 5 help lines, ~28 KB of replies, all made in one turn
        client.send(String(repeating: "/help\n", count: count) + "/who\n")
        try client.expect(prefix: "SYS Who #lobby (1): eager", timeout: 30)
        XCTAssertEqual(client.received.filter { $0.hasPrefix("SYS Help: ") }.count, 5 * count)
        XCTAssertEqual(server.server.inputPausedTotal, 0, "the replies waited in the queue although the socket had room")
    }

    /// A client that pipelines commands and never reads is dropped by the write timeout (its socket accepted
    /// nothing), not by its queue: it stopped being read when its replies piled up.
    func testClientThatNeverReadsItsRepliesIsDroppedOnlyByTheWriteTimeout() throws {
        let server = try TestServer {
            $0.chat.messageRate = 0
            $0.chat.clientQueueBytes = 64 * 1024
            $0.sendBufferBytes = 4096
            $0.writeTimeout = 0.5
        }
        defer { server.stop() }
        let watcher = try LineClient.named("watcher", port: server.port)
        let hog = try LineClient(port: server.port, receiveBuffer: 4096)
        hog.send("hog\n")
        try watcher.expect(prefix: "SYS #lobby Online: hog")
        let sent = sendWithoutBlocking(hog, Array(String(repeating: "/help\n", count: 100_000).utf8))
        XCTAssertGreaterThan(sent, 64 * 1024 / 70, "too little was sent to fill the queue")
        let offline = try watcher.expect(prefix: "SYS #lobby Offline: hog", timeout: 20)
        XCTAssertTrue(offline.hasPrefix("SYS #lobby Offline: hog (write timeout"), offline)
        XCTAssertGreaterThan(server.server.inputPausedTotal, 0)
    }

    // MARK: Finding 7: input is read at a byte budget

    /// Floods without reading: bytes are read at about the budget (burst plus rate x time since connect, an
    /// upper bound that a slow machine only makes looser), the flooder is throttled, not dropped, and the
    /// others are served meanwhile.
    private func assertFloodIsReadAtTheBudget(_ flood: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws {
        let rate = 16 * 1024
        let burst = 16 * 1024
        let server = try TestServer {
            $0.inputBytesPerSecond = rate
            $0.inputBurstBytes = burst
        }
        defer { server.stop() }
        let alice = try LineClient.named("alice", port: server.port)
        let bob = try LineClient.named("bob", port: server.port)
        let before = server.server.inputBytesTotal
        let connected = monotonic()
        let flooder = try LineClient(port: server.port)
        let sent = sendWithoutBlocking(flooder, Array("flooder\n".utf8) + flood)
        XCTAssertGreaterThan(sent, 8 * burst, "the kernel took too little of the flood for the test to mean anything", file: file, line: line)
        try waitUntil("the flooder to be throttled", timeout: 10) { server.server.inputThrottledTotal > 0 }
        alice.send("served amid the flood\n")
        XCTAssertEqual(try bob.expect(prefix: "MSG #lobby alice"), "MSG #lobby alice: served amid the flood", file: file, line: line)
        // Several refills, so that the rate (not only the burst) is what bounds the reads.
        try waitUntil("a few refills", timeout: 10) { server.server.inputThrottledTotal >= 4 }
        let read = Int(server.server.inputBytesTotal - before)
        let elapsed = monotonic() - connected
        let others = "served amid the flood\n".utf8.count
        XCTAssertLessThanOrEqual(read, burst + Int(Double(rate) * elapsed) + others, "read faster than the budget", file: file, line: line)
        XCTAssertLessThan(read, sent, "the whole flood was read", file: file, line: line)
        XCTAssertTrue(flooder.pump(timeout: 0), "the flooder was disconnected", file: file, line: line)
    }

    func testEmptyLineFloodIsReadAtTheBudgetWhileOthersAreServed() throws {
        try assertFloodIsReadAtTheBudget([UInt8](repeating: 10, count: 4 << 20))
    }

    func testEndlessOverlongLineIsReadAtTheBudgetWhileOthersAreServed() throws {
        try assertFloodIsReadAtTheBudget([UInt8](repeating: 0x78, count: 4 << 20))
    }

    // MARK: Finding 10: half-typed lines

    /// A partial line that stays incomplete for line-timeout is discarded, with its rest up to the newline, and
    /// the client is told; the connection stays and its next line goes through.
    func testHalfTypedLineIsDiscardedAfterTheLineTimeout() throws {
        let server = try TestServer { $0.lineTimeout = 1 }
        defer { server.stop() }
        let typist = try LineClient.named("typist", port: server.port)
        let watcher = try LineClient.named("watcher", port: server.port)
        typist.send("half-typed")
        let error = try typist.expect(prefix: "ERR ", timeout: 10)
        XCTAssertEqual(error, "ERR line-timeout a line stayed incomplete for 1 s; its 10 bytes and the rest up to its newline were discarded")
        typist.send(" tail\nafter\n")
        XCTAssertEqual(try watcher.expect(prefix: "MSG "), "MSG #lobby typist: after", "the tail of the expired line arrived as a line")
        XCTAssertEqual(server.server.linesTimedOutTotal, 1)
    }

    // MARK: Settings

    /// The new settings parse, and values outside their documented ranges are refused by name.
    func testInputBudgetAndLineTimeoutSettingsHaveRanges() throws {
        var config = ServerConfig()
        try config.apply(key: "input-bytes-per-second", value: "0")
        try config.apply(key: "input-burst-bytes", value: "4096")
        try config.apply(key: "line-timeout", value: "86400")
        XCTAssertNoThrow(try config.validate())
        XCTAssertEqual(config.inputBytesPerSecond, 0)
        for (key, value) in [("input-bytes-per-second", "1023"), ("input-bytes-per-second", "1073741825"),
                             ("input-bytes-per-second", "-1"), ("input-burst-bytes", "4095"),
                             ("input-burst-bytes", "1073741825"), ("line-timeout", "0.5"), ("line-timeout", "1e11")] {
            // Refused by the syntax check (`-1`, `1e11`) or by the range check, naming the key either way.
            var bad = ServerConfig()
            XCTAssertThrowsError(try { try bad.apply(key: key, value: value); try bad.validate() }(), "\(key) = \(value)") { error in
                XCTAssertEqual((error as? ConfigError)?.key, key)
            }
        }
        XCTAssertTrue(ServerConfig.settings.contains { $0.key == "line-timeout" && $0.help.contains("1 to 86400") })
    }
}
