// What the test targets share: an in-process chatd on an ephemeral loopback port, the built products beside
// the test bundle, a monotonic clock, deadline-bounded waits and a seeded random generator. Every wait polls
// a condition with a deadline; nothing sleeps to synchronise.

import ChatServer
import ChatSys
import Foundation
import Glibc
import XCTest

/// Runs a `Server` on its own thread; `stop()` shuts it down gracefully and joins the thread.
public final class TestServer: @unchecked Sendable {
    public let server: Server
    public let port: UInt16
    private let finished = DispatchSemaphore(value: 0)
    private var stopped = false

    /// A native listener on 127.0.0.1:`port` (0: the kernel picks one), no per-address or connect-rate
    /// limits (tests open many connections from 127.0.0.1; the throttle's tests turn them on), a fast tick,
    /// then `configure`. `CHATD_TEST_LOG=1` in the environment turns on debug logging.
    public init(port: UInt16 = 0, _ configure: (inout ServerConfig) -> Void = { _ in }) throws {
        var config = ServerConfig()
        config.listen = [SocketAddress(parsing: "127.0.0.1:\(port)")!]
        config.maxClientsPerAddress = 0
        config.connectRate = 0
        config.tickInterval = 0.05
        config.shutdownGrace = 2
        config.logger.logLevel = ProcessInfo.processInfo.environment["CHATD_TEST_LOG"] != nil ? .debug : .critical
        configure(&config)
        server = try Server(config: config)
        try server.start()
        self.port = server.boundAddresses[0].port
        let thread = Thread { [server, finished] in
            do { try server.run() } catch { XCTFail("server loop failed: \(error)") }
            finished.signal()
        }
        thread.start()
    }

    /// Graceful stop; fails the test if the loop does not finish within `seconds`.
    public func stop(within seconds: Double = 10) {
        guard !stopped else { return }
        stopped = true
        server.requestStop()
        XCTAssertEqual(finished.wait(timeout: .now() + seconds), .success, "server did not stop within \(seconds) s")
    }

    deinit { stop() }
}

/// Monotonic seconds.
public func monotonic() -> Double { Double(Sys.monotonicNanoseconds()) / 1e9 }

/// A wait that ran out.
public struct TestTimeout: Error, CustomStringConvertible {
    public let what: String
    public init(what: String) { self.what = what }
    public var description: String { "timed out waiting for \(what)" }
}

/// Polls `condition` every 10 ms until it holds, or throws `TestTimeout` once `timeout` seconds have passed.
public func waitUntil(_ what: @autoclosure () -> String, timeout: Double = 5, _ condition: () throws -> Bool) throws {
    let deadline = monotonic() + timeout
    while try !condition() {
        if monotonic() > deadline { throw TestTimeout(what: what()) }
        usleep(10_000)
    }
}

/// The path of the built executable `name` (`chatd`, `chat`): the test bundle runs from the build products
/// folder, beside the executables.
public func builtProduct(_ name: String) -> String {
    let products = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    let candidates = [products.appendingPathComponent(name), products.deletingLastPathComponent().appendingPathComponent(name)]
    return (candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]).path
}

/// SplitMix64: small, fast and seeded, so every randomized test can be replayed from its seed.
public struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in 0..<n (n > 0).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
