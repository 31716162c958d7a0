// ConfigFile: the `key = value` configuration file and the one table of settings shared with the flags.

import ChatCore
import ChatSys

/// Parses chatd's configuration file: one `key = value` per line, `#` starts a comment, blank lines are
/// ignored, keys are the long flag names without `--` (`max-clients = 5000`). `listen` may repeat.
public enum ConfigFile {
    public struct Entry: Equatable, Sendable {
        public let key: String
        public let value: String
        public let line: Int
    }

    public static func parse(_ text: String) throws(ConfigError) -> [Entry] {
        var entries: [Entry] = []
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = Substring(rawLine)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let trimmed = line.trimmingSpaces()
            if trimmed.isEmpty { continue }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw ConfigError(key: "line \(lineNumber)", message: "expected key = value, got \"\(trimmed)\"")
            }
            let key = trimmed[..<equals].trimmingSpaces()
            var value = trimmed[trimmed.index(after: equals)...].trimmingSpaces()
            if value.count >= 2 && value.hasPrefix("\"") && value.hasSuffix("\"") { value = value.dropFirst().dropLast() }
            guard !key.isEmpty else { throw ConfigError(key: "line \(lineNumber)", message: "missing key before =") }
            entries.append(Entry(key: String(key), value: String(value), line: lineNumber))
        }
        return entries
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let first = s.first, first == " " || first == "\t" || first == "\r" { s = s.dropFirst() }
        while let last = s.last, last == " " || last == "\t" || last == "\r" { s = s.dropLast() }
        return s
    }
}

extension ServerConfig {
    /// Every setting that can be given in the file or as `--KEY VALUE`, with its help text.
    public static let settings: [(key: String, help: String)] = [
        ("listen", "Address to listen on, HOST:PORT or [IPV6]:PORT; repeat for several (default 127.0.0.1:12345). Ignored when systemd passes sockets."),
        ("log-level", "trace, debug, info, notice, warning, error or critical (default info)."),
        ("max-clients", "Most connections at once; more get 'ERR server-full' (default 10000)."),
        ("max-clients-per-address", "Most connections from one IP address; 0 = unlimited (default 256). Raise it for load tests."),
        ("max-line-bytes", "Longest input line in bytes; longer lines get 'ERR line-too-long' and are discarded (default 4096)."),
        ("ring-bytes", "Most bytes a room's ring buffer may hold; readers further behind miss lines and are told (default 1048576)."),
        ("client-queue-bytes", "Most bytes of private output queued per client before it is dropped (default 262144)."),
        ("message-rate", "Lines per second per client, sustained; 0 = unlimited, for benchmarks (default 20)."),
        ("message-burst", "Lines a client may send at once above the rate (default 40)."),
        ("max-rooms", "Most rooms at once, the lobby included (default 1000)."),
        ("name-timeout", "Seconds a new connection has to send a valid name (default 10)."),
        ("write-timeout", "Seconds a client with pending output may accept no bytes before it is dropped (default 30)."),
        ("idle-timeout", "Seconds without input before a named client is disconnected; 0 = never (default 0)."),
        ("input-bytes-per-second", "Input bytes per second per client, sustained; over it chatd stops reading that client for a while. 0 = unlimited, for benchmarks; else 1024-1073741824 (default 65536)."),
        ("input-burst-bytes", "Input bytes a client may send at once above input-bytes-per-second, 4096-1073741824 (default 262144)."),
        ("line-timeout", "Seconds a partial line may stay without its newline before it is discarded with 'ERR line-timeout', 1-86400 (default 60)."),
        ("shutdown-grace", "Seconds to deliver pending output and the shutdown line on SIGTERM (default 5)."),
        ("send-buffer-bytes", "Kernel send buffer per client (SO_SNDBUF); 0 = kernel autotuning up to 4 MiB (default 0)."),
        ("flush-interval-ms", "Flush coalescing: a client written less than this many ms ago waits for it to pass, so busy rooms cost one write per client per interval; quiet clients are written at once. 0 = every loop turn (default 20)."),
    ]

    /// Applies one setting by key. Errors name the key and say what is allowed.
    public mutating func apply(key: String, value: String) throws(ConfigError) {
        func integer() throws(ConfigError) -> Int {
            guard let n = Int(value.replacingUnderscores()) else { throw ConfigError(key: key, message: "expected a whole number, got \"\(value)\"") }
            return n
        }
        func number() throws(ConfigError) -> Double {
            guard let n = Double(value), n.isFinite else { throw ConfigError(key: key, message: "expected a number, got \"\(value)\"") }
            return n
        }
        switch key {
        case "listen":
            guard let address = SocketAddress(parsing: value) else {
                throw ConfigError(key: key, message: "expected HOST:PORT or [IPV6]:PORT with a numeric host, got \"\(value)\"")
            }
            if !listenWasSet { listen = []; listenWasSet = true }
            listen.append(address)
        case "log-level":
            guard let level = Logger.Level(rawValue: value.lowercased()) else {
                throw ConfigError(key: key, message: "expected one of trace, debug, info, notice, warning, error, critical")
            }
            logger.logLevel = level
        case "max-clients": maxClients = try integer()
        case "max-clients-per-address": maxClientsPerAddress = try integer()
        case "max-line-bytes": chat.maxLineBytes = try integer()
        case "ring-bytes": chat.ringBytes = try integer()
        case "client-queue-bytes": chat.clientQueueBytes = try integer()
        case "message-rate": chat.messageRate = try number()
        case "message-burst": chat.messageBurst = try number()
        case "max-rooms": chat.maxRooms = try integer()
        case "name-timeout": nameTimeout = try number()
        case "write-timeout": writeTimeout = try number()
        case "idle-timeout": idleTimeout = try number()
        case "input-bytes-per-second": inputBytesPerSecond = try integer()
        case "input-burst-bytes": inputBurstBytes = try integer()
        case "line-timeout": lineTimeout = try number()
        case "shutdown-grace": shutdownGrace = try number()
        case "send-buffer-bytes": sendBufferBytes = try integer()
        case "flush-interval-ms": flushInterval = try number() / 1000
        default:
            throw ConfigError(key: key, message: "unknown setting; known: \(Self.settings.map(\.key).joined(separator: ", "))")
        }
    }

    /// Applies a configuration file's text.
    public mutating func apply(fileText: String) throws(ConfigError) {
        for entry in try ConfigFile.parse(fileText) {
            do {
                try apply(key: entry.key, value: entry.value)
            } catch {
                throw ConfigError(key: "\(entry.key) (line \(entry.line))", message: error.message)
            }
        }
    }
}

import Logging

extension String {
    fileprivate func replacingUnderscores() -> String { String(filter { $0 != "_" }) }
}
