// ServerConfig: every setting of the engine, each a named limit with a default that protects the process.

import ChatCore
import ChatSys
import Logging

public struct ServerConfig: Sendable {
    /// The server password (from `password-file`), or nil for none; `passwordFile` is where it came from.
    public var password: [UInt8]?
    public var passwordFile: String?
    /// IRC operators (from `oper-file`): name -> password, for `OPER NAME PASSWORD`; `operFile` is where they came from.
    public var operators: [String: [UInt8]] = [:]
    public var operFile: String?
    /// The server's name in IRC replies.
    public var ircServerName = "chatd"
    /// Addresses the IRC front listens on (none: IRC is off).
    public var ircListen: [SocketAddress] = []
    /// Seconds an IRC client may stay quiet before the server sends it a PING, and seconds it then has to
    /// answer (any line counts) before it is closed with `ERROR :Ping timeout …`.
    public var ircPingInterval: Double = 120
    public var ircPingTimeout: Double = 60
    /// Addresses to listen on when no sockets are inherited from systemd.
    public var listen: [SocketAddress] = [SocketAddress(parsing: "127.0.0.1:12345")!]
    /// Chat-level limits (line length, ring size, rate, private queue).
    public var chat = ChatLimits()
    /// Most connections at once; beyond it a client gets `ERR server-full` and is closed.
    public var maxClients = 10_000
    /// Most connections from one IP address at once (0: unlimited). Raise it for load tests from one host.
    public var maxClientsPerAddress = 256
    /// New connections per second from one address (IPv4) or IPv6 prefix, sustained (0: unlimited), and the
    /// burst above it. Reconnecting must not be a way round the message rate (each connection starts with a
    /// full message burst) or a cheap way to make every room read `Online:`/`Offline:` lines.
    public var connectRate: Double = 0.5
    public var connectBurst: Double = 20
    /// IPv6 addresses are counted per network of this prefix length by the per-address limits (a host
    /// usually has a whole /64); IPv4 addresses are counted singly.
    public var ipv6PrefixLength = 64
    /// Seconds a new connection has to send a valid name (slowloris protection).
    public var nameTimeout: Double = 10
    /// Seconds a client with pending output may accept no bytes before it is disconnected.
    public var writeTimeout: Double = 30
    /// Seconds without input after which a named client is disconnected (0: never).
    public var idleTimeout: Double = 0
    /// Bytes read from one connection per loop turn before others get their turn.
    public var readBudgetBytes = 64 * 1024
    /// Input budget per client: bytes per second, sustained (0: unlimited, for benchmarks). Every byte read
    /// counts, empty lines and the discarded rest of an overlong line too. Once spent, chatd stops reading that
    /// socket until the tick has refilled it; the kernel's backpressure slows the sender. The default is above
    /// what `message-rate` lets a user send (20 lines/s of mostly short text) and far below a flood.
    public var inputBytesPerSecond = 64 * 1024
    /// Input bytes a client may send at once above the sustained rate (a pasted burst of long lines).
    public var inputBurstBytes = 256 * 1024
    /// Seconds a partial line (bytes without a newline yet) may stay incomplete; then it is discarded, up to its
    /// newline, and the client is told `ERR line-timeout`. Bounds the memory of half-typed lines in time.
    public var lineTimeout: Double = 60
    /// Seconds to deliver pending output and the shutdown line on SIGTERM before closing anyway.
    public var shutdownGrace: Double = 5
    /// SO_SNDBUF for each client socket in bytes (0: the kernel's autotuning, up to net.ipv4.tcp_wmem's
    /// maximum, 4 MiB by default). Bounds the kernel memory a client that stops reading can pin, and makes
    /// such a client show up as a slow consumer sooner.
    public var sendBufferBytes = 0
    /// Seconds a closing connection waits for the client's EOF after our last byte (avoids an RST that
    /// could destroy the final line in the client's receive queue).
    public var lingerTimeout: Double = 2
    /// Flush coalescing: a client written less than this many seconds ago waits until it has passed, so that
    /// under sustained traffic each client gets at most one write per interval carrying every line posted
    /// meanwhile (a loopback write costs ~10 µs of CPU whatever its size). Quiet clients are written at once.
    /// 0 = one write per client per loop turn. Trade-off: up to this much added latency under load.
    public var flushInterval: Double = 0.02
    /// Period of the housekeeping timer (deadlines, status) in seconds.
    public var tickInterval: Double = 0.25
    /// TCP keepalive: idle seconds before probing, seconds between probes, probes before giving up.
    public var keepaliveIdle: Int32 = 60
    public var keepaliveInterval: Int32 = 10
    public var keepaliveProbes: Int32 = 6
    /// Whether the server owns SIGTERM/SIGINT/SIGHUP through a signalfd (the daemon: yes; tests: no).
    public var handleSignals = false
    public var logger = Logger(label: "chatd")
    /// Whether `listen` was set explicitly (the first explicit address replaces the default).
    var listenWasSet = false

    public init() {
        chat.presenceDelay = 1_000_000_000
    }

    /// `chat.presenceDelay` in seconds, for the settings table (which stores decimals).
    public var presenceDelaySeconds: Double {
        get { Double(chat.presenceDelay) / 1e9 }
        set { chat.presenceDelay = Nanoseconds.saturating(seconds: newValue) }
    }

    /// Checks every setting against its range in `ServerConfig.settings` (the one place ranges are defined),
    /// then the few constraints between settings and the internal values no flag sets. The message names
    /// the setting. The server calls this on start and on every reload, so no value outside a range runs.
    public func validate() throws(ConfigError) {
        func require(_ ok: Bool, _ key: String, _ why: String) throws(ConfigError) {
            if !ok { throw ConfigError(key: key, message: why) }
        }
        for setting in Self.settings { try setting.check(self) }
        try require(chat.ringBytes >= chat.minimumRingBytes, "ring-bytes", "must be at least max-line-bytes + 512 (\(chat.minimumRingBytes))")
        try require(chat.ringsMaxBytes >= chat.ringBytes, "rings-max-bytes", "must be at least ring-bytes (\(chat.ringBytes))")
        // A /who or welcome reply lists up to 100 names (up to ~13 KB); the queue must hold a few of them.
        try require(chat.clientQueueBytes >= chat.maxLineBytes + 512, "client-queue-bytes",
                    "must be at least max-line-bytes + 512 (\(chat.maxLineBytes + 512))")
        // Internal values (tests and the watchdog set them, no flag does): the same rule, a closed range.
        try require(readBudgetBytes >= 1024 && readBudgetBytes <= 1 << 30, "read-budget-bytes", "must be 1024 to 1073741824")
        try require(tickInterval >= 0.01 && tickInterval <= 5, "tick-interval", "must be 0.01 to 5 seconds")
        try require(lingerTimeout >= 0 && lingerTimeout <= 60, "linger-timeout", "must be 0 to 60 seconds")
        try require((1...86_400).contains(keepaliveIdle) && (1...86_400).contains(keepaliveInterval) && (1...1000).contains(keepaliveProbes),
                    "keepalive", "idle and interval must be 1 to 86400 s, probes 1 to 1000")
    }

    // MARK: Durations in nanoseconds
    //
    // The loop works in monotonic nanoseconds. Converting with `UInt64(seconds * 1e9)` traps for NaN and for
    // anything ≥ 2^64 ns (18,446,744,074 s): validated ranges keep every value far below that, and these
    // conversions saturate anyway (at ~146 years, so `now + duration` cannot overflow either).

    public var nameTimeoutNanoseconds: UInt64 { Nanoseconds.saturating(seconds: nameTimeout) }
    public var writeTimeoutNanoseconds: UInt64 { Nanoseconds.saturating(seconds: writeTimeout) }
    /// 0: no idle timeout.
    public var idleTimeoutNanoseconds: UInt64 { Nanoseconds.saturating(seconds: idleTimeout) }
    public var shutdownGraceNanoseconds: UInt64 { Nanoseconds.saturating(seconds: shutdownGrace) }
    public var lingerTimeoutNanoseconds: UInt64 { Nanoseconds.saturating(seconds: lingerTimeout) }
    public var lineTimeoutNanoseconds: UInt64 { Nanoseconds.saturating(seconds: lineTimeout) }
    public var ircPingIntervalNanoseconds: UInt64 { Nanoseconds.saturating(seconds: ircPingInterval) }
    public var ircPingTimeoutNanoseconds: UInt64 { Nanoseconds.saturating(seconds: ircPingTimeout) }
    public var flushIntervalNanoseconds: UInt64 { Nanoseconds.saturating(seconds: flushInterval) }
    /// At least 1 ms: a timerfd interval of 0 would disarm the timer.
    public var tickIntervalNanoseconds: Int { Int(max(1_000_000, Nanoseconds.saturating(seconds: tickInterval))) }
}

/// A configuration value that cannot be used, named by its key.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let key: String
    public let message: String
    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }
    public var description: String { "\(key): \(message)" }
}
