// Bad input and faults, each with its defined outcome (docs/ROBUSTNESS.md lists them all).

import ChatServer
import ChatSys
import ChatTestSupport
import Foundation
import Glibc
import XCTest

final class RobustnessTests: XCTestCase {
    /// Terminal injection: NUL, ESC/CSI/OSC sequences and C1 controls never reach another client raw.
    func testControlSequencesNeverReachOthers() throws {
        let server = try TestServer()
        defer { server.stop() }
        let mallory = try LineClient.named("mallory", port: server.port)
        let victim = try LineClient.named("victim", port: server.port)
        let attacks: [[UInt8]] = [
            Array("nul\u{0}byte\n".utf8),
            Array("\u{1B}[2Jclear\n".utf8),
            Array("\u{1B}]8;;http://evil\u{1B}\\link\u{1B}]8;;\u{1B}\\\n".utf8),   // OSC 8 hyperlink
            Array("cursor\u{1B}[10;10H\n".utf8),
            [0x63, 0x31, 0xC2, 0x9B, 0x32, 0x4A, 10],                              // C1 CSI (U+009B)
            Array("bell\u{7}\n".utf8),
            Array("del\u{7F}\n".utf8),
        ]
        for attack in attacks {
            mallory.sendBytes(attack)
            XCTAssertTrue(try mallory.expect(prefix: "ERR ").hasPrefix("ERR control-character"))
        }
        mallory.send("plain\n")
        XCTAssertEqual(try victim.expect(prefix: "MSG "), "MSG #lobby mallory: plain")
        for line in victim.received {
            XCTAssertFalse(line.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\t") || (0x7F...0x9F).contains($0.value) },
                           "a control character reached the victim: \(line.debugDescription)")
        }
        // Names cannot carry them either.
        let other = try LineClient(port: server.port)
        other.sendBytes(Array("evil\u{1B}[31m\n".utf8))
        XCTAssertTrue(try other.expect(prefix: "ERR ").hasPrefix("ERR control-character"))
    }

    /// A connection that never sends anything is closed at the name deadline; so is a slowloris.
    func testSilentConnectionIsClosedAtTheNameDeadline() throws {
        let server = try TestServer { $0.nameTimeout = 0.3 }
        defer { server.stop() }
        let silent = try LineClient(port: server.port)
        let lines = try silent.expectClose(timeout: 5)
        XCTAssertEqual(lines.last.map { $0.hasPrefix("ERR name-timeout") }, true, "\(lines)")
    }

    /// Half-close: a client that shuts down its sending side still receives everything pending, then EOF.
    func testHalfCloseStillDeliversPendingOutput() throws {
        let server = try TestServer { $0.chat.messageRate = 0 }
        defer { server.stop() }
        let talker = try LineClient.named("talker", port: server.port)
        let leaver = try LineClient(port: server.port, receiveBuffer: 4096)
        leaver.send("leaver\n")
        try talker.expect(prefix: "SYS #lobby Online: leaver")
        let count = 500
        for i in 0..<count { talker.send("pending \(i) " + String(repeating: "h", count: 200) + "\n") }
        talker.send("/who\n")
        try talker.expect(prefix: "SYS Who")  // the server has read them all: they are pending for leaver
        leaver.shutdownWrite()
        _ = try leaver.expectClose(timeout: 10)
        let got = leaver.received.filter { $0.hasPrefix("MSG #lobby talker: pending") }
        XCTAssertEqual(got.count, count, "a half-closed client lost pending output")
        XCTAssertEqual(leaver.received.last, "SYS #lobby Offline: leaver (connection closed by client)")
        try talker.expect(prefix: "SYS #lobby Offline: leaver")
    }

    /// A reset in the middle of a write (SO_LINGER 0 close while output is pending) costs nobody else anything.
    func testResetMidWriteLeavesOthersServed() throws {
        let server = try TestServer { $0.chat.messageRate = 0 }
        defer { server.stop() }
        let talker = try LineClient.named("talker", port: server.port)
        let watcher = try LineClient.named("watcher", port: server.port)
        for round in 0..<5 {
            let victim = try LineClient(port: server.port, receiveBuffer: 4096)
            victim.send("victim\(round)\n")
            try watcher.expect(prefix: "SYS #lobby Online: victim\(round)")
            for i in 0..<300 { talker.send("r\(round) \(i) " + String(repeating: "q", count: 300) + "\n") }
            try watcher.expect(prefix: "MSG #lobby talker: r\(round) 0 ")  // the server is writing to the victim too
            victim.reset()
            try watcher.expect("the last line of round \(round)", timeout: 20) { $0.hasPrefix("MSG #lobby talker: r\(round) 299 ") }
            // The reset may be noticed before the talker's last lines are read, so the Offline line can come
            // before them: look for it anywhere in what the watcher received.
            try waitUntil("Offline: victim\(round)", timeout: 10) {
                watcher.pump(timeout: 0.05)
                return watcher.received.contains { $0.hasPrefix("SYS #lobby Offline: victim\(round) (connection reset") }
            }
        }
        talker.send("still fine\n")
        XCTAssertEqual(try watcher.expect(prefix: "MSG #lobby talker: still"), "MSG #lobby talker: still fine")
    }
}

final class DaemonRobustnessTests: XCTestCase {
    private func openFDs(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// Connect-and-close floods and resets with output pending: the daemon neither dies (no SIGPIPE) nor
    /// leaks a descriptor, and keeps serving.
    func testConnectCloseFloodAndResetsLeakNothing() throws {
        let daemon = try DaemonProcess(["--listen", "127.0.0.1:0", "--message-rate", "0", "--max-clients-per-address", "0", "--connect-rate", "0"])
        defer { daemon.terminate() }
        let pid = daemon.process.processIdentifier
        let baseline = openFDs(pid)
        let anchor = try LineClient.named("anchor", port: daemon.port)
        for i in 0..<400 {
            let client = try LineClient(port: daemon.port)
            if i % 3 == 0 { client.send("flood\(i)\n") }
            if i % 2 == 0 { client.reset() }
        }
        // Resets while the daemon writes to the reset socket: EPIPE/ECONNRESET, never SIGPIPE.
        for i in 0..<20 {
            let victim = try LineClient(port: daemon.port, receiveBuffer: 4096)
            victim.send("victim\(i)\n")
            try anchor.expect(prefix: "SYS #lobby Online: victim\(i)")
            for j in 0..<50 { anchor.send("to victim \(i) \(j) " + String(repeating: "v", count: 500) + "\n") }
            victim.reset()
        }
        // The last reset may reach the daemon after the /who: wait until it has been seen.
        try anchor.expect(prefix: "SYS #lobby Offline: victim19", timeout: 10)
        anchor.send("/who\n")
        try anchor.expect(prefix: "SYS Who #lobby (1)", timeout: 10)
        XCTAssertTrue(daemon.process.isRunning, "chatd died: \(daemon.readStderr().suffix(500))")
        try waitUntil("the daemon's descriptors to return to the baseline", timeout: 10) { openFDs(pid) == baseline + 1 }
        daemon.signal(SIGTERM)
        XCTAssertEqual(daemon.waitForExit(), 0)
    }
}
