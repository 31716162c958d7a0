// Settings and configuration files (issue 9, findings 2 and 11): every numeric setting has a closed range,
// checked from one table; values that used to pass validation and then trap (`1e11` seconds) are refused
// naming the key; the config file must be a regular file of sane size, read without ever blocking the loop.

import ChatCore
@testable import ChatServer
import ChatSys
import ChatTestSupport
import Foundation
import Glibc
import XCTest

/// The numeric settings of the table, with their ranges.
private var numericSettings: [Setting] { ServerConfig.settings.filter { $0.range != nil } }

/// A value in the syntax its setting expects (whole numbers for integer settings).
private func text(_ value: Double, for setting: Setting) -> String {
    SettingRange.format(value)
}

private func isIntegerSetting(_ setting: Setting) -> Bool {
    [.count, .bytes].contains(setting.kind)
}

final class SettingsTableTests: XCTestCase {
    /// The values of finding 2 and their siblings: each is refused, by `apply` (syntax) or `validate` (range),
    /// and the error names the key.
    func testOverflowingAndMalformedValuesAreRefusedNamingTheKey() {
        let bad = ["1e11", "100000000000", "18446744074", "99999999999999999999", "1" + String(repeating: "0", count: 400),
                   "nan", "NaN", "inf", "-inf", "infinity", "-0", "-0.0", "-1", "+1", "0x10", "0b1", "1e3", "1E3", "",
                   " ", "12abc", "1 2", "10s", "1..2", ".5", "5.", "1__0", "_1", "1_", "１０", "٣"]
        for setting in numericSettings {
            for value in bad {
                var config = ServerConfig()
                do {
                    try config.apply(key: setting.key, value: value)
                    try config.validate()
                    XCTFail("\(setting.key) = \(value) was accepted")
                } catch {
                    XCTAssertEqual(error.key, setting.key, "\(setting.key) = \(value): \(error)")
                }
            }
        }
    }

    /// Both ends of every range are accepted; just outside either end is refused, naming the key.
    func testEveryRangeIsClosedAndCheckedByValidate() throws {
        for setting in numericSettings {
            let range = try XCTUnwrap(setting.range)
            let step = isIntegerSetting(setting) ? 1.0 : 0.001
            // The smallest line limit and the largest ring and queue, so that the constraints between them
            // (ring and queue ≥ max-line-bytes + 512) allow each end of each range on its own.
            func config(_ value: Double) throws -> ServerConfig {
                var config = ServerConfig()
                try config.apply(key: "max-line-bytes", value: "16")
                // rings-max-bytes must hold one ring at its largest: test its own range with the smallest ring.
                try config.apply(key: "ring-bytes", value: setting.key == "rings-max-bytes" ? "528" : "1073741824")
                try config.apply(key: "rings-max-bytes", value: "17179869184")
                try config.apply(key: "client-queue-bytes", value: "1073741824")
                try config.apply(key: setting.key, value: text(value, for: setting))
                return config
            }
            for value in [range.lowerBound, range.upperBound] + (range.zeroMeans != nil ? [0] : []) {
                XCTAssertNoThrow(try config(value).validate(), "\(setting.key) = \(value)")
            }
            var outside = [range.upperBound + step]
            if range.lowerBound - step >= 0 && !(range.zeroMeans != nil && range.lowerBound - step <= 0) {
                outside.append(range.lowerBound - step)
            }
            for value in outside {
                XCTAssertThrowsError(try config(value).validate(), "\(setting.key) = \(value)") { error in
                    XCTAssertEqual((error as? ConfigError)?.key, setting.key)
                }
            }
        }
    }

    /// `--help` is generated from the table: each help text states its range and default.
    func testHelpTextStatesEveryRangeAndDefault() {
        for setting in ServerConfig.settings {
            if let range = setting.range {
                XCTAssertTrue(setting.help.contains("Range \(range.description)"), setting.help)
            }
            XCTAssertTrue(setting.help.contains("default \(setting.defaultValue)"), setting.help)
        }
        XCTAssertEqual(ServerConfig.settings.first { $0.key == "idle-timeout" }?.help,
                       "Seconds without input before a named client is disconnected. Range 0 (never) or 0.01 to 31536000 s; default 0.")
        XCTAssertEqual(Set(ServerConfig.settings.map(\.key)).count, ServerConfig.settings.count, "a key is listed twice")
    }

    /// Values set in code (tests, embedding) are held to the same ranges: the server refuses to start.
    func testServerRefusesAConfigOutsideARange() {
        var config = ServerConfig()
        config.listen = [SocketAddress(parsing: "127.0.0.1:0")!]
        config.idleTimeout = 1e11
        XCTAssertThrowsError(try Server(config: config)) { XCTAssertEqual(($0 as? ConfigError)?.key, "idle-timeout") }
        config.idleTimeout = .nan
        XCTAssertThrowsError(try config.validate()) { XCTAssertEqual(($0 as? ConfigError)?.key, "idle-timeout") }
        config.idleTimeout = 0
        config.chat.messageRate = .infinity
        XCTAssertThrowsError(try config.validate()) { XCTAssertEqual(($0 as? ConfigError)?.key, "message-rate") }
        config.chat.messageRate = 20
        config.sendBufferBytes = Int(Int32.max) + 1
        XCTAssertThrowsError(try config.validate()) { XCTAssertEqual(($0 as? ConfigError)?.key, "send-buffer-bytes") }
    }

    func testNanosecondConversionsSaturateInsteadOfTrapping() {
        XCTAssertEqual(Nanoseconds.saturating(seconds: 10), 10_000_000_000)
        XCTAssertEqual(Nanoseconds.saturating(seconds: 0.25), 250_000_000)
        XCTAssertEqual(Nanoseconds.saturating(seconds: 0), 0)
        XCTAssertEqual(Nanoseconds.saturating(seconds: -0.0), 0)
        XCTAssertEqual(Nanoseconds.saturating(seconds: -5), 0)
        XCTAssertEqual(Nanoseconds.saturating(seconds: .nan), 0)
        XCTAssertEqual(Nanoseconds.saturating(seconds: 1e11), Nanoseconds.maximum)
        XCTAssertEqual(Nanoseconds.saturating(seconds: 18_446_744_074), Nanoseconds.maximum)
        XCTAssertEqual(Nanoseconds.saturating(seconds: .infinity), Nanoseconds.maximum)
        // `now + duration` cannot overflow for any monotonic reading below 2^63 (292 years of uptime).
        XCTAssertFalse((UInt64(1) << 63).addingReportingOverflow(Nanoseconds.maximum).overflow)
        var config = ServerConfig()
        config.idleTimeout = 31_536_000
        XCTAssertEqual(config.idleTimeoutNanoseconds, 31_536_000_000_000_000)
        config.tickInterval = 0
        XCTAssertGreaterThan(config.tickIntervalNanoseconds, 0, "a zero timerfd interval would disarm the tick")
    }

    /// A seeded property test over random keys, values and file text: applying and validating never traps, and
    /// whatever validates keeps every derived conversion in range.
    func testRandomSettingsAndFilesNeverTrapAndAcceptedValuesAreSafe() throws {
        var random = SeededRandom(seed: 0x9_C0F1)
        let keys = ServerConfig.settings.map(\.key) + ["", "max_clients", "MAX-CLIENTS", "\u{FEFF}max-clients", "x"]
        let tokens = ["0", "1", "-0", "nan", "inf", "1e11", "0x1F", "_", ".", "9", "99999999999999999999", "00", " ", "\t",
                      "18446744074", "1048576", "1073741824", "86400", "3600", "0.001", "1_000", "\u{0}", "\u{FF}", "#", "=", "\"",
                      "127.0.0.1:0", "[::1]:0", "info", "é"]
        var accepted = 0
        for _ in 0..<3000 {
            var config = ServerConfig()
            for _ in 0..<random.below(6) + 1 {
                let key = keys[random.below(keys.count)]
                var value = ""
                switch random.below(3) {
                case 0: value = String(random.next() >> UInt64(random.below(64)))
                case 1: value = String(Double(bitPattern: random.next()))
                default: for _ in 0..<random.below(4) + 1 { value += tokens[random.below(tokens.count)] }
                }
                try? config.apply(key: key, value: value)
            }
            // Random file text: lines of tokens and raw bytes.
            var bytes: [UInt8] = random.below(4) == 0 ? [0xEF, 0xBB, 0xBF] : []
            for _ in 0..<random.below(8) {
                if random.below(5) == 0 {
                    for _ in 0..<random.below(12) { bytes.append(UInt8(truncatingIfNeeded: random.next())) }
                } else {
                    bytes += Array("\(keys[random.below(keys.count)]) = \(tokens[random.below(tokens.count)])\(tokens[random.below(tokens.count)])".utf8)
                }
                bytes.append(random.below(6) == 0 ? 13 : 10)
            }
            try? config.apply(fileBytes: bytes)
            guard (try? config.validate()) != nil else { continue }
            accepted += 1
            try assertDerivedArithmeticIsSafe(config)
        }
        XCTAssertGreaterThan(accepted, 100, "the generator should produce valid configurations too")
        // And the extremes themselves: every setting at each end of its range at once.
        for end in [\SettingRange.lowerBound, \SettingRange.upperBound] {
            var config = ServerConfig()
            try config.apply(key: "max-line-bytes", value: "16")
            for setting in numericSettings where setting.key != "max-line-bytes" {
                try config.apply(key: setting.key, value: text(setting.range![keyPath: end], for: setting))
            }
            try config.validate()
            try assertDerivedArithmeticIsSafe(config)
        }
    }

    private func assertDerivedArithmeticIsSafe(_ config: ServerConfig, file: StaticString = #filePath, line: UInt = #line) throws {
        let limit = Double(UInt64.max) / 1e9
        for seconds in [config.nameTimeout, config.writeTimeout, config.idleTimeout, config.shutdownGrace, config.lingerTimeout,
                        config.flushInterval, config.tickInterval, config.ircPingInterval, config.ircPingTimeout] {
            // What the old `UInt64(seconds * 1e9)` needed, and what `compactDescription` (log and ERR text) needs.
            XCTAssertTrue(seconds.isFinite && seconds >= 0 && seconds < limit && seconds < 1e15, "\(seconds) s", file: file, line: line)
        }
        let now = UInt64(1) << 62  // a monotonic clock 146 years after boot
        for ns in [config.nameTimeoutNanoseconds, config.writeTimeoutNanoseconds, config.idleTimeoutNanoseconds,
                   config.shutdownGraceNanoseconds, config.lingerTimeoutNanoseconds, config.flushIntervalNanoseconds,
                   config.ircPingIntervalNanoseconds, config.ircPingTimeoutNanoseconds] {
            XCTAssertFalse(now.addingReportingOverflow(ns).overflow, file: file, line: line)
        }
        XCTAssertGreaterThan(config.tickIntervalNanoseconds, 0, file: file, line: line)
        XCTAssertNotNil(Int32(exactly: config.sendBufferBytes), file: file, line: line)
        XCTAssertNotNil(Int32(exactly: config.maxLineBytes + 512), file: file, line: line)
        XCTAssertFalse(UInt64(config.maxClients).addingReportingOverflow(64).overflow, file: file, line: line)
        // The ring rounds up to a power of two: that must stay within 1 GiB (and so within Int).
        var ring = 1
        while ring < config.chat.ringBytes { ring <<= 1 }
        XCTAssertLessThanOrEqual(ring, 1 << 30, file: file, line: line)
        let rate = config.chat.messageRate, burst = config.chat.messageBurst
        XCTAssertTrue(rate.isFinite && burst.isFinite && burst >= 1, file: file, line: line)
        // The token bucket refills with elapsed ns × rate / 1e9: finite even after a year idle.
        XCTAssertTrue((Double(UInt64(31_536_000) * 1_000_000_000) * rate / 1e9).isFinite, file: file, line: line)
        var bucket = TokenBucket(ratePerSecond: rate, burst: burst, now: 0)
        XCTAssertTrue(bucket.take(now: 1))
        _ = bucket.take(now: UInt64.max)
    }
}

extension ServerConfig {
    fileprivate var maxLineBytes: Int { chat.maxLineBytes }
}

final class ConfigFileTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("chatd-config-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func file(_ name: String, _ bytes: [UInt8]) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    func testByteOrderMarkIsSkippedAndOnlyAtTheStart() throws {
        var config = ServerConfig()
        try config.apply(fileBytes: [0xEF, 0xBB, 0xBF] + Array("max-clients = 7\r\nmax-rooms = 9\n".utf8))
        XCTAssertEqual(config.maxClients, 7)
        XCTAssertEqual(config.chat.maxRooms, 9)
        XCTAssertThrowsError(try config.apply(fileBytes: Array("max-clients = 7\n\u{FEFF}max-rooms = 9\n".utf8))) {
            XCTAssertTrue(($0 as? ConfigError)?.description.contains("unknown setting") ?? false, "\($0)")
        }
    }

    func testInvalidUTF8AndControlCharactersNameTheLine() {
        var config = ServerConfig()
        XCTAssertThrowsError(try config.apply(fileBytes: Array("# ok\nmax-clients = 5".utf8) + [0xFF, 0x0A])) {
            XCTAssertEqual(($0 as? ConfigError)?.key, "line 2")
            XCTAssertTrue("\($0)".contains("UTF-8"), "\($0)")
        }
        XCTAssertThrowsError(try config.apply(fileBytes: Array("max-clients = 5\nmax-rooms = 1\u{0}\n".utf8))) {
            XCTAssertEqual(($0 as? ConfigError)?.key, "line 2")
            XCTAssertTrue("\($0)".contains("U+0000"), "\($0)")
        }
        XCTAssertThrowsError(try config.apply(fileBytes: Array("max-clients = 5\n\n\u{1B}[2J\n".utf8))) {
            XCTAssertEqual(($0 as? ConfigError)?.key, "line 3")
        }
    }

    func testARegularFileIsRead() throws {
        let path = try file("ok.conf", Array("max-clients = 3\n".utf8))
        var config = ServerConfig()
        try ConfigFile.load(path: path, into: &config)
        XCTAssertEqual(config.maxClients, 3)
        // procfs reports a size of 0 for files that have content: read to the end anyway.
        XCTAssertFalse(try ConfigFile.read(path: "/proc/self/status").isEmpty)
    }

    func testExactlyTheLimitIsReadAndOneByteMoreIsRefused() throws {
        let line = Array("# padding\n".utf8)
        var bytes: [UInt8] = []
        while bytes.count + line.count <= ConfigText.maxFileBytes { bytes += line }
        bytes += [UInt8](repeating: UInt8(ascii: "#"), count: ConfigText.maxFileBytes - bytes.count)
        XCTAssertEqual(try ConfigFile.read(path: try file("limit.conf", bytes)).count, ConfigText.maxFileBytes)
        let big = try file("big.conf", bytes + [10])
        XCTAssertThrowsError(try ConfigFile.read(path: big)) {
            XCTAssertEqual(($0 as? ConfigError)?.key, "config")
            XCTAssertTrue("\($0)".contains("larger than 1048576 bytes") && "\($0)".contains(big), "\($0)")
        }
        XCTAssertThrowsError(try ConfigFile.read(path: try file("2mib.conf", [UInt8](repeating: 10, count: 2 << 20))))
    }

    func testDirectoriesDevicesSocketsAndMissingFilesAreRefused() throws {
        let cases: [(String, String)] = [(directory.path, "a directory"), ("/dev/zero", "a character device"),
                                         ("/dev/null", "a character device"), (directory.path + "/missing", "cannot open")]
        for (path, what) in cases {
            XCTAssertThrowsError(try ConfigFile.read(path: path), path) {
                XCTAssertEqual(($0 as? ConfigError)?.key, "config")
                XCTAssertTrue("\($0)".contains(what) && "\($0)".contains(path), "\($0)")
            }
        }
        // A listening unix socket: open(2) fails (ENXIO), which is reported, not waited on.
        let socketPath = directory.appendingPathComponent("s.sock").path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(socketPath.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0)
        XCTAssertThrowsError(try ConfigFile.read(path: socketPath)) { XCTAssertEqual(($0 as? ConfigError)?.key, "config") }
    }

    /// A FIFO with no writer: refused at once. Run on a thread with a deadline, so that a read that blocks fails
    /// the test instead of hanging it (the FIFO is then opened for writing to release the reader).
    func testAFIFOIsRefusedWithoutBlocking() throws {
        let path = directory.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(path, 0o600), 0)
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox()
        Thread {
            do { _ = try ConfigFile.read(path: path); result.set("read succeeded") } catch { result.set("\(error)") }
            done.signal()
        }.start()
        if done.wait(timeout: .now() + 10) == .timedOut {
            let writer = open(path, O_WRONLY | O_NONBLOCK)
            if writer >= 0 { Glibc.close(writer) }
            XCTFail("reading a FIFO blocked")
            _ = done.wait(timeout: .now() + 5)
            return
        }
        XCTAssertTrue(result.get().contains("a FIFO, not a regular file"), result.get())
    }
}

final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value = ""
    func set(_ text: String) { lock.withLock { value = text } }
    func get() -> String { lock.withLock { value } }
}

/// The built `chatd` with the values of findings 2 and 11 (see `DaemonProcess`: always reaped).
final class ConfigDaemonTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("chatd-cfgd-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func file(_ name: String, _ text: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try text.write(to: url, atomically: false, encoding: .utf8)
        return url.path
    }

    /// Exits with `status` (a hang is killed by `waitForExit` and fails here) and says `needles` on stderr.
    private func assertExit(_ arguments: [String], status: Int32 = 2, says needles: [String],
                            file: StaticString = #filePath, line: UInt = #line) throws {
        let daemon = try DaemonProcess(arguments, waitForListening: false)
        defer { daemon.terminate() }
        XCTAssertEqual(daemon.waitForExit(timeout: 15), status, "\(arguments): \(daemon.readStderr())", file: file, line: line)
        let stderr = daemon.readStderr()
        for needle in needles {
            XCTAssertTrue(stderr.contains(needle), "\(arguments): expected \"\(needle)\" in: \(stderr)", file: file, line: line)
        }
    }

    /// Finding 2: each of these started, then trapped at the first tick (or at SIGTERM). Now: exit 2, key named.
    func testOverflowingTimeoutsExitTwoNamingTheKey() throws {
        for key in ["name-timeout", "write-timeout", "idle-timeout", "shutdown-grace"] {
            for value in ["1e11", "18446744074"] {
                try assertExit(["--listen", "127.0.0.1:0", "--\(key)", value], says: ["chatd: \(key): ", "got"])
            }
        }
        try assertExit(["--config", try file("idle.conf", "listen = 127.0.0.1:0\nidle-timeout = 1e11\n")],
                       says: ["chatd: config: ", "idle-timeout (line 2)"])
        try assertExit(["--listen", "127.0.0.1:0", "--message-rate", "1e308"], says: ["chatd: message-rate: "])
        try assertExit(["--listen", "127.0.0.1:0", "--max-clients", "99999999999999999999"], says: ["chatd: max-clients: must be 1 to 1048576"])
    }

    /// Every setting at the top of its range: the daemon ticks (watchdog pings come from the tick, which is
    /// where the old conversions trapped), serves clients, and stops cleanly on SIGTERM.
    func testLargestAcceptedValuesTickServeAndStop() throws {
        var arguments = ["--listen", "127.0.0.1:0"]
        for setting in numericSettings {
            arguments += ["--\(setting.key)", text(setting.range!.upperBound, for: setting)]
        }
        let notify = try NotifySocket(abstract: true)
        // WATCHDOG_USEC without WATCHDOG_PID: the watchdog is on (a ping every 0.5 s, from the tick). sd_notify
        // blocks when the notify socket's queue (10 datagrams) is full, so the test drains it between steps.
        let daemon = try DaemonProcess(arguments, environment: ["NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "1000000"])
        defer { daemon.terminate() }
        try notify.expect(line: "READY=1")
        let alice = try LineClient.named("alice", port: daemon.port)
        notify.pump(timeout: 0)
        let bob = try LineClient(port: daemon.port)  // connected and unnamed: the tick checks its name deadline
        _ = try bob.expect(prefix: "SYS Hello")  // accepted
        try notify.expectPing(after: monotonic(), "a tick with clients connected")
        bob.send("bob\n")
        try bob.expect(prefix: "SYS Welcome: bob")
        // presence-delay-ms is at its 60 s maximum: bob's first line makes his arrival public, before it.
        bob.send("hi\n")
        try alice.expect(prefix: "SYS #lobby Online: bob")
        XCTAssertEqual(try alice.expect(prefix: "MSG "), "MSG #lobby bob: hi")
        notify.pump(timeout: 0)
        alice.send("hello at the limits\n")
        XCTAssertEqual(try bob.expect(prefix: "MSG "), "MSG #lobby alice: hello at the limits")
        notify.pump(timeout: 0)
        daemon.signal(SIGTERM)
        XCTAssertEqual(try alice.expectClose(timeout: 10).last, "SYS Shutdown: the server is shutting down")
        XCTAssertEqual(daemon.waitForExit(), 0, daemon.readStderr())
    }

    /// SIGHUP with a timeout that used to crash the running daemon: the reload fails, the running configuration
    /// is kept (max-clients stays 2), the loop keeps ticking and serving.
    func testSIGHUPWithAnOverflowingTimeoutKeepsTheRunningConfig() throws {
        let path = try file("reload.conf", "listen = 127.0.0.1:0\nmax-clients = 2\n")
        let notify = try NotifySocket(abstract: true)
        // The watchdog pings from the tick (every 0.5 s here), which proves the loop ticks after each reload.
        let daemon = try DaemonProcess(["--config", path], environment: ["NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "1000000"])
        defer { daemon.terminate() }
        let one = try LineClient.named("one", port: daemon.port)
        var failures = 0
        for bad in ["idle-timeout = 1e11", "idle-timeout = 100000000000", "write-timeout = 18446744074"] {
            _ = try file("reload.conf", "listen = 127.0.0.1:0\nmax-clients = 20\n\(bad)\n")
            daemon.signal(SIGHUP)
            failures += 1
            try waitUntil("failed reload \(failures)", timeout: 10) {
                daemon.readStderr().components(separatedBy: "reload failed; keeping the running configuration").count - 1 == failures
            }
            XCTAssertTrue(daemon.readStderr().contains(bad.split(separator: " ")[0]), daemon.readStderr())
            try notify.expectPing(after: monotonic(), "a tick after the failed reload")
        }
        XCTAssertFalse(daemon.readStderr().contains("configuration reloaded"))
        notify.pump(timeout: 0)
        let two = try LineClient.named("two", port: daemon.port)
        XCTAssertTrue(try LineClient(port: daemon.port).expectClose().first?.hasPrefix("ERR server-full") ?? false,
                      "max-clients 2 should still hold")
        one.send("/who\n")
        try one.expect(prefix: "SYS Who #lobby (2)")
        _ = two
        daemon.signal(SIGTERM)
        XCTAssertEqual(daemon.waitForExit(), 0)
    }

    /// Finding 11 at start: FIFO (no writer: must not block), directory, /dev/zero, 2 MiB, invalid UTF-8.
    func testConfigThatIsNotASaneRegularFileExitsTwo() throws {
        let fifo = directory.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        try assertExit(["--config", fifo], says: ["chatd: config: \(fifo): a FIFO, not a regular file"])
        try assertExit(["--config", directory.path], says: ["chatd: config: \(directory.path): a directory, not a regular file"])
        try assertExit(["--config", "/dev/zero"], says: ["chatd: config: /dev/zero: a character device, not a regular file"])
        let big = try file("big.conf", String(repeating: "# padding padding padding padding\n", count: 62_000))
        try assertExit(["--config", big], says: ["chatd: config: \(big): larger than 1048576 bytes"])
        let binary = directory.appendingPathComponent("latin1.conf")
        try Data(Array("listen = 127.0.0.1:0\nlog-level = d".utf8) + [0xE9, 0x62, 0x75, 0x67, 10]).write(to: binary)
        try assertExit(["--config", binary.path], says: ["chatd: config: \(binary.path): line 2: not valid UTF-8"])
    }

    /// A file saved with a UTF-8 byte-order mark is read as if it had none.
    func testConfigWithAByteOrderMarkIsAccepted() throws {
        let path = try file("bom.conf", "\u{FEFF}listen = 127.0.0.1:0\nmax-clients = 1\n")
        let daemon = try DaemonProcess(["--config", path])
        defer { daemon.terminate() }
        let one = try LineClient.named("one", port: daemon.port)
        XCTAssertTrue(try LineClient(port: daemon.port).expectClose().first?.hasPrefix("ERR server-full") ?? false)
        one.send("/who\n")
        try one.expect(prefix: "SYS Who #lobby (1)")
        daemon.signal(SIGTERM)
        XCTAssertEqual(daemon.waitForExit(), 0)
    }

    /// Finding 11 at SIGHUP: the path now names a FIFO, then a directory, then /dev/zero (a symlink), then a
    /// 2 MiB file. Each reload fails at once with the reason logged; the running configuration (max-clients 2)
    /// is kept; the loop is never blocked (a blocked loop would never log the failure: the wait times out).
    func testSIGHUPWithAFileThatIsNotSaneKeepsServing() throws {
        let path = directory.appendingPathComponent("chatd.conf").path
        _ = try file("chatd.conf", "listen = 127.0.0.1:0\nmax-clients = 2\n")
        let daemon = try DaemonProcess(["--config", path])
        defer { daemon.terminate() }
        let one = try LineClient.named("one", port: daemon.port)
        let replacements: [(String, () throws -> Void)] = [
            ("a FIFO, not a regular file", { unlink(path); XCTAssertEqual(mkfifo(path, 0o600), 0) }),
            ("a directory, not a regular file", { unlink(path); XCTAssertEqual(mkdir(path, 0o700), 0) }),
            ("a character device, not a regular file", { rmdir(path); XCTAssertEqual(symlink("/dev/zero", path), 0) }),
            ("larger than 1048576 bytes", {
                unlink(path)
                _ = try self.file("chatd.conf", "max-clients = 20\n" + String(repeating: "#", count: 2 << 20))
            }),
        ]
        for (index, (reason, replace)) in replacements.enumerated() {
            try replace()
            daemon.signal(SIGHUP)
            try waitUntil("failed reload: \(reason)", timeout: 10) {
                daemon.readStderr().components(separatedBy: "reload failed; keeping the running configuration").count - 1 == index + 1
            }
            XCTAssertTrue(daemon.readStderr().contains(reason), daemon.readStderr())
            one.send("/who\n")
            try one.expect(prefix: "SYS Who #lobby (1)")
        }
        let two = try LineClient.named("two", port: daemon.port)
        XCTAssertTrue(try LineClient(port: daemon.port).expectClose().first?.hasPrefix("ERR server-full") ?? false,
                      "max-clients 2 should still hold")
        _ = two
        daemon.signal(SIGTERM)
        XCTAssertEqual(daemon.waitForExit(), 0)
    }

    /// `chatd --help` states every setting's range (the help text comes from the settings table).
    func testHelpListsEveryRange() throws {
        let process = Process()
        process.executableURL = DaemonProcess.binary
        process.arguments = ["--help"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        // ArgumentParser wraps long help lines: compare with all whitespace runs collapsed.
        let help = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for setting in ServerConfig.settings {
            XCTAssertTrue(help.contains("--\(setting.key) "), setting.key)
            if let range = setting.range {
                XCTAssertTrue(help.contains("Range \(range.description)\(setting.kind == .count || setting.kind == .lines ? "" : " ")"),
                              "\(setting.key): \(range.description) not in --help")
            }
        }
    }

    /// README's settings table and deploy/chatd.conf state each setting's range as the table has it.
    func testREADMEAndSampleConfigStateEveryRange() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let sample = try String(contentsOf: root.appendingPathComponent("deploy/chatd.conf"), encoding: .utf8)
        for setting in numericSettings {
            let range = setting.range!.description
            let row = readme.split(separator: "\n").first { $0.hasPrefix("| `\(setting.key)`") }
            XCTAssertTrue(row?.contains(range) ?? false, "README row for \(setting.key) should say \(range)")
            let lines = sample.split(separator: "\n", omittingEmptySubsequences: false)
            guard let at = lines.firstIndex(where: { $0.hasPrefix("#\(setting.key) = ") }) else {
                XCTFail("deploy/chatd.conf has no line for \(setting.key)")
                continue
            }
            XCTAssertEqual(lines[at], "#\(setting.key) = \(setting.defaultValue)")
            // The comment block just above the key states the range.
            let comment = lines[..<at].reversed().prefix { $0.hasPrefix("#") && !$0.contains(" = ") }.joined(separator: " ")
            XCTAssertTrue(comment.contains("Range: \(range)"), "deploy/chatd.conf: \(setting.key) should say Range: \(range)")
        }
    }
}

extension NotifySocket {
    /// Waits for a `WATCHDOG=1` that arrived after `time` (`monotonic()`): the loop ticked since then.
    func expectPing(after time: Double, _ what: String, timeout: Double = 10) throws {
        let deadline = monotonic() + timeout
        while !messages.contains(where: { $0.time > time && $0.text.split(separator: "\n").contains("WATCHDOG=1") }) {
            let left = deadline - monotonic()
            if left <= 0 { throw ClientError.timeout(what) }
            pump(timeout: min(left, 0.2))
        }
    }
}
