// ServerConfig: every setting of the engine, each a named limit with a default that protects the process.

import ChatCore
import ChatSys
import Logging

public struct ServerConfig: Sendable {
    /// Addresses to listen on when no sockets are inherited from systemd.
    public var listen: [SocketAddress] = [SocketAddress(parsing: "127.0.0.1:12345")!]
    /// Chat-level limits (line length, ring size, rate, private queue).
    public var chat = ChatLimits()
    /// Most connections at once; beyond it a client gets `ERR server-full` and is closed.
    public var maxClients = 10_000
    /// Most connections from one IP address at once (0: unlimited). Raise it for load tests from one host.
    public var maxClientsPerAddress = 256
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

    public init() {}

    /// Checks values that would make the server misbehave; the message names the setting.
    public func validate() throws(ConfigError) {
        func require(_ ok: Bool, _ key: String, _ why: String) throws(ConfigError) {
            if !ok { throw ConfigError(key: key, message: why) }
        }
        try require(chat.maxLineBytes >= 16 && chat.maxLineBytes <= 1 << 20, "max-line-bytes", "must be between 16 and 1048576")
        try require(chat.ringBytes >= chat.minimumRingBytes, "ring-bytes", "must be at least max-line-bytes + 512 (\(chat.minimumRingBytes))")
        try require(chat.ringBytes <= 1 << 30, "ring-bytes", "must be at most 1 GiB")
        // A /who or welcome reply lists up to 100 names (up to ~13 KB); the queue must hold a few of them.
        try require(chat.clientQueueBytes >= max(64 * 1024, chat.maxLineBytes + 512), "client-queue-bytes",
                    "must be at least 65536 and at least max-line-bytes + 512")
        try require(chat.messageRate >= 0, "message-rate", "must be 0 (off) or positive")
        try require(chat.messageBurst >= 1, "message-burst", "must be at least 1")
        try require(chat.maxRooms >= 1, "max-rooms", "must be at least 1")
        try require(maxClients >= 1, "max-clients", "must be at least 1")
        try require(maxClientsPerAddress >= 0, "max-clients-per-address", "must be 0 (unlimited) or positive")
        try require(nameTimeout > 0, "name-timeout", "must be positive")
        try require(writeTimeout > 0, "write-timeout", "must be positive")
        try require(idleTimeout >= 0, "idle-timeout", "must be 0 (off) or positive")
        try require(readBudgetBytes >= 1024, "read-budget-bytes", "must be at least 1024")
        try require(inputBytesPerSecond == 0 || (inputBytesPerSecond >= 1024 && inputBytesPerSecond <= 1 << 30),
                    "input-bytes-per-second", "must be 0 (unlimited) or between 1024 and 1073741824")
        try require(inputBurstBytes >= 4096 && inputBurstBytes <= 1 << 30, "input-burst-bytes", "must be between 4096 and 1073741824")
        try require(lineTimeout >= 1 && lineTimeout <= 86_400, "line-timeout", "must be between 1 and 86400 seconds")
        try require(shutdownGrace >= 0, "shutdown-grace", "must be 0 or positive")
        try require(sendBufferBytes == 0 || (sendBufferBytes >= 4096 && sendBufferBytes <= 64 << 20), "send-buffer-bytes",
                    "must be 0 (kernel autotuning) or between 4096 and 67108864")
        try require(flushInterval >= 0 && flushInterval <= 1, "flush-interval-ms", "must be between 0 and 1000 ms")
        try require(tickInterval >= 0.01 && tickInterval <= 5, "tick-interval", "must be between 0.01 and 5 seconds")
        try require(!listen.isEmpty, "listen", "needs at least one address")
    }
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
