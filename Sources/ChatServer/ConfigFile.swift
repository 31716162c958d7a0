// ConfigFile: the one table of settings shared by the configuration file and the flags, and reading the file.

import ChatCore
import ChatSys
import Logging

/// One setting: its key (the long flag name without `--`, and the file's key), what kind of value it takes,
/// its closed range, and how it is applied. `--help`, `validate()` and the error messages all come from here,
/// so a range is written once.
public struct Setting: @unchecked Sendable {  // immutable; the closures capture only key paths and constants
    public enum Kind: String, Sendable {
        case address, level, path, count, bytes, lines, seconds, milliseconds
        case perSecond = "lines/s"
        case connectionsPerSecond = "connections/s"

        /// The unit after a number in help and errors ("" for plain counts).
        var unit: String {
            switch self {
            case .bytes: return " bytes"
            case .seconds: return " s"
            case .milliseconds: return " ms"
            case .perSecond: return " lines/s"
            case .connectionsPerSecond: return " connections/s"
            case .lines, .count, .address, .level, .path: return ""
            }
        }
    }

    public let key: String
    public let kind: Kind
    /// The accepted values (nil for `listen` and `log-level`, which are not numbers).
    public let range: SettingRange?
    /// The default, as it would be written in the file.
    public let defaultValue: String
    /// What the setting bounds, in a sentence or two.
    public let summary: String
    fileprivate let parse: (inout ServerConfig, String) throws(ConfigError) -> Void
    fileprivate let current: (ServerConfig) -> Double?

    /// The text `--help` shows: the summary, the range with its unit, and the default.
    public var help: String {
        guard let range else { return summary + " (default \(defaultValue))." }
        return summary + " Range \(range.description)\(kind.unit); default \(defaultValue)."
    }

    /// Throws unless the value `config` holds is inside the range.
    func check(_ config: ServerConfig) throws(ConfigError) {
        guard let range, let value = current(config) else { return }
        if !range.contains(value) {
            throw ConfigError(key: key, message: "must be \(range.description)\(kind.unit), got \(SettingRange.format(value))")
        }
    }

    /// A whole-number setting stored in an `Int` field.
    static func integer(_ key: String, _ kind: Kind, _ path: WritableKeyPath<ServerConfig, Int>, _ range: SettingRange,
                        _ summary: String) -> Setting {
        Setting(key: key, kind: kind, range: range, defaultValue: String(ServerConfig()[keyPath: path]), summary: summary,
                parse: { (config: inout ServerConfig, text: String) throws(ConfigError) in
                    switch SettingNumber.integer(text) {
                    case .value(let n): config[keyPath: path] = n
                    case .malformed:
                        throw ConfigError(key: key, message: "expected a whole number (\(range.description)\(kind.unit)), got \(ConfigText.quoted(text))")
                    case .tooLarge:
                        throw ConfigError(key: key, message: "must be \(range.description)\(kind.unit), got \(ConfigText.quoted(text))")
                    }
                },
                current: { Double(exactly: $0[keyPath: path]) ?? .infinity })
    }

    /// A decimal setting stored in a `Double` field; `scale` converts the value given to the one stored
    /// (milliseconds given, seconds stored: 0.001).
    static func decimal(_ key: String, _ kind: Kind, _ path: WritableKeyPath<ServerConfig, Double>, _ range: SettingRange,
                        scale: Double = 1, _ summary: String) -> Setting {
        Setting(key: key, kind: kind, range: range, defaultValue: SettingRange.format(ServerConfig()[keyPath: path] / scale),
                summary: summary,
                parse: { (config: inout ServerConfig, text: String) throws(ConfigError) in
                    switch SettingNumber.decimal(text) {
                    case .value(let n): config[keyPath: path] = n * scale
                    case .malformed:
                        throw ConfigError(key: key, message: "expected a decimal number (\(range.description)\(kind.unit); "
                                          + "no sign, exponent or hex), got \(ConfigText.quoted(text))")
                    case .tooLarge:
                        throw ConfigError(key: key, message: "must be \(range.description)\(kind.unit), got \(ConfigText.quoted(text))")
                    }
                },
                current: { $0[keyPath: path] / scale })
    }
}

extension ServerConfig {
    /// Every setting that can be given in the file or as `--KEY VALUE`. Each range keeps the arithmetic done
    /// with the value safe: seconds stay far below 2^64 ns, byte counts fit an Int32 (`SO_SNDBUF`) or the
    /// ring's power-of-two rounding (≤ 1 GiB), and rates and bursts stay finite.
    public static let settings: [Setting] = [
        Setting(key: "listen", kind: .address, range: nil, defaultValue: "127.0.0.1:12345",
                summary: "Address to listen on, HOST:PORT or [IPV6]:PORT; repeat for several. Ignored when systemd passes sockets",
                parse: { (config: inout ServerConfig, value: String) throws(ConfigError) in
                    guard let address = SocketAddress(parsing: value) else {
                        throw ConfigError(key: "listen", message: "expected HOST:PORT or [IPV6]:PORT with a numeric host, got \(ConfigText.quoted(value))")
                    }
                    if !config.listenWasSet { config.listen = []; config.listenWasSet = true }
                    config.listen.append(address)
                },
                current: { _ in nil }),
        Setting(key: "irc-listen", kind: .address, range: nil, defaultValue: "none",
                summary: "Address for IRC clients (irssi, weechat, bots), HOST:PORT or [IPV6]:PORT; repeat for several; off unless given (docs/IRC.md)",
                parse: { (config: inout ServerConfig, value: String) throws(ConfigError) in
                    guard let address = SocketAddress(parsing: value) else {
                        throw ConfigError(key: "irc-listen", message: "expected HOST:PORT or [IPV6]:PORT with a numeric host, got \(ConfigText.quoted(value))")
                    }
                    config.ircListen.append(address)
                },
                current: { _ in nil }),
        Setting(key: "irc-server-name", kind: .address, range: nil, defaultValue: "chatd",
                summary: "The server's name in IRC replies (the source of numerics, PONG): 1-63 letters, digits, '.', '-'",
                parse: { (config: inout ServerConfig, value: String) throws(ConfigError) in
                    let allowed = value.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2E || $0 == 0x2D }
                    guard !value.isEmpty, value.utf8.count <= 63, allowed, !value.hasPrefix("-"), !value.hasPrefix(".") else {
                        throw ConfigError(key: "irc-server-name", message: "expected 1-63 letters, digits, '.' and '-' (not first), got \(ConfigText.quoted(value))")
                    }
                    config.ircServerName = value
                },
                current: { _ in nil }),
        .decimal("irc-ping-interval", .seconds, \.ircPingInterval, SettingRange(1...86_400),
                 "Seconds an IRC client may stay quiet before the server sends it a PING."),
        .decimal("irc-ping-timeout", .seconds, \.ircPingTimeout, SettingRange(1...86_400),
                 "Seconds an IRC client has to answer the server's PING (any line counts) before it is closed with 'ERROR :Ping timeout'."),
        Setting(key: "log-level", kind: .level, range: nil, defaultValue: "info",
                summary: "trace, debug, info, notice, warning, error or critical",
                parse: { (config: inout ServerConfig, value: String) throws(ConfigError) in
                    guard let level = Logger.Level(rawValue: value.lowercased()) else {
                        throw ConfigError(key: "log-level", message: "expected one of trace, debug, info, notice, warning, error, critical")
                    }
                    config.logger.logLevel = level
                },
                current: { _ in nil }),
        Setting(key: "password-file", kind: .path, range: nil, defaultValue: "none",
                summary: "File holding the server password (its first line, 1-255 bytes): IRC clients send it with PASS, native clients with /pass PASSWORD before their name. Read at start and on SIGHUP",
                parse: { (config: inout ServerConfig, value: String) throws(ConfigError) in
                    config.password = try ServerPassword.load(path: value)
                    config.passwordFile = value
                },
                current: { _ in nil }),
        Setting(key: "oper-file", kind: .path, range: nil, defaultValue: "none",
                summary: "File of IRC operators, one 'NAME PASSWORD' per line (# comments; at most 100): OPER NAME PASSWORD makes an IRC user a server operator (+o, may KILL). Read at start and on SIGHUP",
                parse: { (config: inout ServerConfig, value: String) throws(ConfigError) in
                    config.operators = try OperatorFile.load(path: value)
                    config.operFile = value
                },
                current: { _ in nil }),
        .integer("max-clients", .count, \.maxClients, SettingRange(1...1_048_576),
                 "Most connections at once; more get 'ERR server-full'."),
        .integer("max-clients-per-address", .count, \.maxClientsPerAddress, SettingRange(1...1_048_576, zeroMeans: "unlimited"),
                 "Most connections from one IP address. Raise it for load tests."),
        .decimal("connect-rate", .connectionsPerSecond, \.connectRate, SettingRange(0.001...1_000_000, zeroMeans: "unlimited"),
                 "New connections per second from one IPv4 address or IPv6 prefix, sustained; more get 'ERR throttled'."),
        .decimal("connect-burst", .count, \.connectBurst, SettingRange(1...1_000_000),
                 "New connections one address may make at once above connect-rate."),
        .integer("ipv6-prefix-length", .count, \.ipv6PrefixLength, SettingRange(16...128),
                 "IPv6 clients are counted per network of this prefix length by max-clients-per-address and connect-rate."),
        .decimal("presence-delay-ms", .milliseconds, \.presenceDelaySeconds, SettingRange(0...60_000), scale: 0.001,
                 "A new user's Online line waits this long, or until it first speaks; one that leaves sooner is announced neither arriving nor leaving."),
        .integer("rings-max-bytes", .bytes, \.chat.ringsMaxBytes, SettingRange(65_536...17_179_869_184),
                 "Most bytes all rooms' rings may grow to together for lagging readers, at least ring-bytes; past it those readers miss lines sooner (and are told)."),
        .integer("max-line-bytes", .bytes, \.chat.maxLineBytes, SettingRange(16...1_048_576),
                 "Longest input line; longer lines get 'ERR line-too-long' and are discarded."),
        .integer("ring-bytes", .bytes, \.chat.ringBytes, SettingRange(528...1_073_741_824),
                 "Most bytes a room's ring buffer may hold, at least max-line-bytes + 512; readers further behind miss lines and are told."),
        .integer("client-queue-bytes", .bytes, \.chat.clientQueueBytes, SettingRange(65_536...1_073_741_824),
                 "Most bytes of private output queued per client before it is dropped, at least max-line-bytes + 512."),
        .decimal("message-rate", .perSecond, \.chat.messageRate, SettingRange(0.001...1_000_000, zeroMeans: "unlimited, for benchmarks"),
                 "Lines per second per client, sustained."),
        .decimal("message-burst", .lines, \.chat.messageBurst, SettingRange(1...1_000_000),
                 "Lines a client may send at once above the rate."),
        .integer("max-rooms", .count, \.chat.maxRooms, SettingRange(1...1_000_000),
                 "Most rooms at once, the lobby included."),
        .decimal("name-timeout", .seconds, \.nameTimeout, SettingRange(0.01...86_400),
                 "Seconds a new connection has to send a valid name."),
        .decimal("write-timeout", .seconds, \.writeTimeout, SettingRange(0.01...86_400),
                 "Seconds a client with pending output may accept no bytes before it is dropped."),
        .decimal("idle-timeout", .seconds, \.idleTimeout, SettingRange(0.01...31_536_000, zeroMeans: "never"),
                 "Seconds without input before a named client is disconnected."),
        .integer("input-bytes-per-second", .bytes, \.inputBytesPerSecond, SettingRange(1024...1_073_741_824, zeroMeans: "unlimited"),
                 "Input bytes per second per client, sustained; over it chatd stops reading that client for a while (0 for benchmarks)."),
        .integer("input-burst-bytes", .bytes, \.inputBurstBytes, SettingRange(4096...1_073_741_824),
                 "Input bytes a client may send at once above input-bytes-per-second."),
        .decimal("line-timeout", .seconds, \.lineTimeout, SettingRange(1...86_400),
                 "Seconds a partial line may stay without its newline before it is discarded with 'ERR line-timeout'."),
        .decimal("shutdown-grace", .seconds, \.shutdownGrace, SettingRange(0...3600),
                 "Seconds to deliver pending output and the shutdown line on SIGTERM."),
        .integer("send-buffer-bytes", .bytes, \.sendBufferBytes, SettingRange(4096...67_108_864, zeroMeans: "kernel autotuning up to 4 MiB"),
                 "Kernel send buffer per client (SO_SNDBUF)."),
        .decimal("flush-interval-ms", .milliseconds, \.flushInterval, SettingRange(0...1000), scale: 0.001,
                 "Flush coalescing: a client written less than this many ms ago waits for it to pass, so busy rooms cost one write per client per interval; quiet clients are written at once. 0 = every loop turn."),
    ]

    private static let settingsByKey: [String: Setting] = Dictionary(uniqueKeysWithValues: settings.map { ($0.key, $0) })

    /// Applies one setting by key: the value's syntax is checked here, its range by `validate()` (so that a
    /// flag can still override an out-of-range value in the file). Errors name the key and say what is allowed.
    public mutating func apply(key: String, value: String) throws(ConfigError) {
        guard let setting = Self.settingsByKey[key] else {
            throw ConfigError(key: ConfigText.quoted(key), message: "unknown setting; known: \(Self.settings.map(\.key).joined(separator: ", "))")
        }
        try setting.parse(&self, value)
    }

    /// Applies a configuration file's text.
    public mutating func apply(fileText: String) throws(ConfigError) {
        try apply(fileBytes: Array(fileText.utf8))
    }

    /// Applies a configuration file's bytes (UTF-8, an initial byte-order mark allowed).
    public mutating func apply(fileBytes: [UInt8]) throws(ConfigError) {
        let entries: [ConfigText.Entry]
        do {
            entries = try ConfigText.parse(bytes: fileBytes)
        } catch {
            throw ConfigError(key: "line \(error.line)", message: error.message)
        }
        for entry in entries {
            do {
                try apply(key: entry.key, value: entry.value)
            } catch {
                throw ConfigError(key: "\(error.key) (line \(entry.line))", message: error.message)
            }
        }
    }
}

/// Parses chatd's configuration file (the grammar is `ConfigText`'s, in ChatCore, where the fuzzer reaches it).
public enum ConfigFile {
    public typealias Entry = ConfigText.Entry

    public static func parse(_ text: String) throws(ConfigError) -> [Entry] {
        do {
            return try ConfigText.parse(text)
        } catch {
            throw ConfigError(key: "line \(error.line)", message: error.message)
        }
    }

    /// The file at `path`, if it is a regular file of at most `ConfigText.maxFileBytes`; never blocks (a FIFO
    /// is refused, not waited on). Errors have the key `config` and name the path.
    public static func read(path: String) throws(ConfigError) -> [UInt8] {
        do {
            return try Sys.readRegularFile(path, limit: ConfigText.maxFileBytes)
        } catch {
            throw ConfigError(key: "config", message: "\(path): \(error)")
        }
    }

    /// Reads and applies the file at `path` to `config`; errors are prefixed with `config: PATH`.
    public static func load(path: String, into config: inout ServerConfig) throws(ConfigError) {
        let bytes = try read(path: path)
        do {
            try config.apply(fileBytes: bytes)
        } catch {
            throw ConfigError(key: "config", message: "\(path): \(error)")
        }
    }
}

/// IRC operators, read from `oper-file`: `NAME PASSWORD` per line (the password is the rest of the line after
/// the spaces that follow the name), blank lines and lines starting with `#` ignored.
public enum OperatorFile {
    public static let maxOperators = 100

    public static func load(path: String) throws(ConfigError) -> [String: [UInt8]] {
        let bytes: [UInt8]
        do {
            bytes = try Sys.readRegularFile(path, limit: 64 * 1024)
        } catch {
            throw ConfigError(key: "oper-file", message: "\(path): \(error)")
        }
        var operators: [String: [UInt8]] = [:]
        for (index, rawLine) in bytes.split(separator: 10, omittingEmptySubsequences: false).enumerated() {
            var line = rawLine[...]
            if line.last == 13 { line = line.dropLast() }
            while line.first == 32 || line.first == 9 { line = line.dropFirst() }
            if line.isEmpty || line.first == UInt8(ascii: "#") { continue }
            func problem(_ text: String) -> ConfigError { ConfigError(key: "oper-file", message: "\(path) line \(index + 1): \(text)") }
            guard let space = line.firstIndex(where: { $0 == 32 || $0 == 9 }) else { throw problem("expected NAME PASSWORD") }
            let name = String(decoding: line[..<space], as: UTF8.self)
            var password = line[space...]
            while password.first == 32 || password.first == 9 { password = password.dropFirst() }
            guard Names.validate(name) == nil else { throw problem("\(name) is not a valid name") }
            guard !password.isEmpty, password.count <= ServerPassword.maxBytes else {
                throw problem("the password must be 1-\(ServerPassword.maxBytes) bytes")
            }
            guard !password.contains(0) && !password.contains(13) else { throw problem("the password contains NUL or CR") }
            guard operators[Names.key(name)] == nil else { throw problem("\(name) is listed twice") }
            guard operators.count < maxOperators else { throw problem("more than \(maxOperators) operators") }
            operators[Names.key(name)] = Array(password)
        }
        return operators
    }
}

/// The server password, read from `password-file`.
public enum ServerPassword {
    public static let maxBytes = 255

    /// The file's first line (a trailing `\n` or `\r\n` dropped): 1 to 255 bytes, no NUL, CR or LF.
    /// The file is read like the configuration file: a regular file, without blocking.
    public static func load(path: String) throws(ConfigError) -> [UInt8] {
        let bytes: [UInt8]
        do {
            bytes = try Sys.readRegularFile(path, limit: 4096)
        } catch {
            throw ConfigError(key: "password-file", message: "\(path): \(error)")
        }
        var line = bytes.prefix { $0 != 10 }
        if line.last == 13 { line = line.dropLast() }
        guard !line.isEmpty else { throw ConfigError(key: "password-file", message: "\(path): the first line is empty") }
        guard line.count <= maxBytes else {
            throw ConfigError(key: "password-file", message: "\(path): the password is over \(maxBytes) bytes")
        }
        guard !line.contains(0) && !line.contains(13) else {
            throw ConfigError(key: "password-file", message: "\(path): the password contains NUL or CR")
        }
        return Array(line)
    }
}
