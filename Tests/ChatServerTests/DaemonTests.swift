// End-to-end tests of the built `chatd` binary: start it, talk to it, signal it, check its exit status.

import ChatTestSupport
import Foundation
import Glibc
import XCTest

/// A `chatd` child process on an ephemeral port; always reaped, even when a test fails.
final class DaemonProcess {
    let process = Process()
    private let errorPipe = Pipe()
    private(set) var port: UInt16 = 0
    /// Everything the daemon wrote to stderr, collected by a reader thread so that a chatty daemon can never
    /// block on a full pipe (which would stall its event loop and the test with it).
    private let collected = StderrCollector()
    private var stderrText: String { collected.text }

    static var binary: URL { URL(fileURLWithPath: builtProduct("chatd")) }

    init(_ arguments: [String], environment: [String: String] = [:], waitForListening: Bool = true,
         executable: URL = DaemonProcess.binary) throws {
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "NOTIFY_SOCKET")
        env.removeValue(forKey: "LISTEN_FDS")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardError = errorPipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        collected.start(errorPipe.fileHandleForReading.fileDescriptor)
        if waitForListening {
            let deadline = monotonic() + 20
            while port == 0 {
                guard monotonic() < deadline, process.isRunning else {
                    terminate()
                    throw ClientError.timeout("chatd to listen; stderr: \(readStderr())")
                }
                readStderrAvailable()
                if let range = stderrText.range(of: #"addresses=127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                    let text = stderrText[range]
                    port = UInt16(text.split(separator: ":").last!)!
                }
            }
        }
    }

    private func readStderrAvailable() {
        var none = pollfd()
        _ = poll(&none, 0, 20)
    }

    func readStderr() -> String {
        readStderrAvailable()
        return stderrText
    }

    /// Waits for exit; returns the status (kills the process if it does not exit in time).
    func waitForExit(timeout: Double = 15) -> Int32? {
        let deadline = monotonic() + timeout
        while process.isRunning && monotonic() < deadline { readStderrAvailable() }
        if process.isRunning {
            terminate()
            return nil
        }
        collected.waitForEnd(timeout: 5)
        return process.terminationStatus
    }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    func terminate() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { terminate() }
}

final class DaemonTests: XCTestCase {
    func testChatThenSIGTERMWithOutputPendingExitsZero() throws {
        let daemon = try DaemonProcess(["--listen", "127.0.0.1:0", "--message-rate", "0"])
        defer { daemon.terminate() }
        let alice = try LineClient.named("alice", port: daemon.port)
        let bob = try LineClient(port: daemon.port, receiveBuffer: 4096)
        bob.send("bob\n")
        try alice.expect(prefix: "SYS #lobby Online: bob")
        alice.send("hello from the binary\n")
        // Bob reads nothing yet: a burst piles up in the server for him.
        let burst = 3000
        for i in 0..<burst { alice.send("line \(i) " + String(repeating: "z", count: 100) + "\n") }
        alice.send("/who\n")
        try alice.expect(prefix: "SYS Who")  // the server has read the whole burst
        daemon.signal(SIGTERM)
        let rest = try bob.expectClose(timeout: 10)
        XCTAssertEqual(rest.last, "SYS Shutdown: the server is shutting down")
        let lines = bob.received.filter { $0.hasPrefix("MSG") }
        XCTAssertEqual(lines.first, "MSG #lobby alice: hello from the binary")
        XCTAssertEqual(lines.count, burst + 1, "bob lost lines during shutdown")
        XCTAssertEqual(daemon.waitForExit(), 0, daemon.readStderr())
        XCTAssertTrue(daemon.readStderr().contains("shutting down"))
    }

    func testBadSettingExitsTwoWithAClearMessage() throws {
        let daemon = try DaemonProcess(["--max-clients", "0"], waitForListening: false)
        XCTAssertEqual(daemon.waitForExit(), 2)
        XCTAssertTrue(daemon.readStderr().contains("max-clients"), daemon.readStderr())

        let flag = try DaemonProcess(["--no-such-flag"], waitForListening: false)
        XCTAssertEqual(flag.waitForExit(), 2)

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("chatd-bad-\(getpid()).conf")
        try "ring-bytes = lots\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let config = try DaemonProcess(["--config", file.path], waitForListening: false)
        XCTAssertEqual(config.waitForExit(), 2)
        XCTAssertTrue(config.readStderr().contains("ring-bytes"), config.readStderr())
    }

    func testConfigFileIsReadAndFlagsOverrideIt() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("chatd-\(getpid()).conf")
        try """
            # a comment
            listen = 127.0.0.1:0
            max-clients = 1   # flags override this
            """.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let daemon = try DaemonProcess(["--config", file.path, "--max-clients", "2"])
        defer { daemon.terminate() }
        let one = try LineClient.named("one", port: daemon.port)
        let two = try LineClient.named("two", port: daemon.port)
        let third = try LineClient(port: daemon.port)
        XCTAssertTrue(try third.expectClose().first?.hasPrefix("ERR server-full") ?? false)
        try one.expect(prefix: "SYS #lobby Online: two")
        two.send("/quit\n")
        _ = try two.expectClose()
        daemon.signal(SIGINT)
        XCTAssertEqual(daemon.waitForExit(), 0)
    }

    func testPortInUseExitsOne() throws {
        let first = try DaemonProcess(["--listen", "127.0.0.1:0"])
        defer { first.terminate() }
        let second = try DaemonProcess(["--listen", "127.0.0.1:\(first.port)"], waitForListening: false)
        XCTAssertEqual(second.waitForExit(), 1)
        XCTAssertTrue(second.readStderr().contains("bind"), second.readStderr())
    }
}

final class DescriptorExhaustionTests: XCTestCase {
    /// With few fds, chatd refuses what it cannot hold with a line (the spare-fd trick), keeps serving the
    /// clients it has, and accepts again once fds are free: it neither spins nor stalls on EMFILE.
    func testEMFILEKeepsServingAndRecovers() throws {
        let binary = DaemonProcess.binary.path
        let daemon = try DaemonProcess(["-c", "ulimit -n 32 && exec \"$0\" --listen 127.0.0.1:0 --max-clients 1000 --connect-rate 0", binary],
                                       executable: URL(fileURLWithPath: "/bin/sh"))
        defer { daemon.terminate() }
        let alice = try LineClient.named("alice", port: daemon.port)
        var clients: [LineClient] = []
        var refused = 0
        for _ in 0..<40 {
            let client = try LineClient(port: daemon.port)
            clients.append(client)
        }
        // Each extra client was either served (greeted) or refused with a reason, never left hanging.
        for client in clients {
            let line = try client.expect("greeting or refusal") { $0.hasPrefix("SYS Hello") || $0.hasPrefix("ERR server-busy") }
            if line.hasPrefix("ERR") { refused += 1 }
        }
        XCTAssertGreaterThan(refused, 0, "expected some refusals with 32 fds")
        // The connected client is still served.
        alice.send("/who\n")
        try alice.expect(prefix: "SYS Who #lobby (1)")
        XCTAssertTrue(daemon.readStderr().contains("cannot accept"))
        // Free the fds; new clients are accepted again.
        clients.removeAll()
        var welcomed = false
        let deadline = monotonic() + 10
        while !welcomed && monotonic() < deadline {
            let late = try LineClient(port: daemon.port)
            let line = try late.expect("greeting or refusal") { $0.hasPrefix("SYS Hello") || $0.hasPrefix("ERR server-busy") }
            welcomed = line.hasPrefix("SYS Hello")
        }
        XCTAssertTrue(welcomed, "chatd did not accept again after fds were freed")
        daemon.signal(SIGTERM)
        XCTAssertEqual(daemon.waitForExit(), 0)
    }
}

final class ReloadTests: XCTestCase {
    /// SIGHUP re-reads the config file: a valid change applies at once, an invalid one is logged and the
    /// running configuration kept.
    func testSIGHUPReloadsAndKeepsOldConfigOnError() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("chatd-reload-\(getpid()).conf")
        try "listen = 127.0.0.1:0\nmax-clients = 1\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let daemon = try DaemonProcess(["--config", file.path])
        defer { daemon.terminate() }
        let one = try LineClient.named("one", port: daemon.port)
        XCTAssertTrue(try LineClient(port: daemon.port).expectClose().first?.hasPrefix("ERR server-full") ?? false)

        try "listen = 127.0.0.1:0\nmax-clients = 2\n".write(to: file, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        try waitUntil("the reload", timeout: 10) { daemon.readStderr().contains("configuration reloaded") }
        let two = try LineClient.named("two", port: daemon.port)

        try "max-clients = lots\n".write(to: file, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        try waitUntil("the failed reload", timeout: 10) { daemon.readStderr().contains("reload failed") }
        XCTAssertTrue(daemon.readStderr().contains("max-clients"))
        // Still max-clients = 2, and still serving.
        XCTAssertTrue(try LineClient(port: daemon.port).expectClose().first?.hasPrefix("ERR server-full") ?? false)
        one.send("/who\n")
        try one.expect(prefix: "SYS Who #lobby (2)")
        _ = two
        daemon.signal(SIGTERM)
        XCTAssertEqual(daemon.waitForExit(), 0)
    }
}

/// Reads a pipe to its end on a thread of its own.
final class StderrCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes: [UInt8] = []
    private let done = DispatchSemaphore(value: 0)

    var text: String { lock.withLock { String(decoding: bytes, as: UTF8.self) } }

    func start(_ fd: Int32) {
        Thread { [self] in
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                lock.withLock { bytes.append(contentsOf: chunk[0..<n]) }
            }
            done.signal()
        }.start()
    }

    func waitForEnd(timeout: Double) {
        _ = done.wait(timeout: .now() + timeout)
    }
}
