// ServiceNotifier: what chatd tells systemd while it runs — watchdog pings and a live STATUS= line.

import ChatSys

/// Sends `WATCHDOG=1` and `STATUS=` from the server's own loop thread (its tick), and `STOPPING=1` when
/// shutdown begins.
///
/// The watchdog ping is sent from the event loop, not from a helper thread, on purpose: if the loop is stuck
/// (a busy loop, a deadlock, SIGSTOP) the pings stop, and systemd kills and restarts the service after
/// `WatchdogSec=`. A helper thread would keep pinging for a loop that serves nobody.
///
/// Not thread-safe: every method runs on the server's loop thread (or before `run()`).
public final class ServiceNotifier {
    /// Nanoseconds between watchdog pings: half of what `WATCHDOG_USEC` asks for (as sd_watchdog_enabled(3)
    /// recommends), so one late tick never costs a restart. Nil when systemd wants no watchdog.
    public let watchdogPingInterval: UInt64?
    /// Nanoseconds between `STATUS=` updates.
    public let statusInterval: UInt64
    /// The server's tick period in nanoseconds: pings are checked only on ticks, so a ping is sent once the
    /// interval is within half a tick, which keeps the real gap close to the interval instead of a tick past it.
    private let tickSlack: UInt64
    private let send: (String) -> Void

    private var lastPing: UInt64 = 0
    private var lastStatus: UInt64 = 0
    private var linesAtLastStatus: UInt64 = 0
    private var stopping = false

    /// - Parameters:
    ///   - watchdogMicroseconds: `WATCHDOG_USEC` as `Systemd.watchdogMicroseconds()` returns it (nil: no watchdog).
    ///   - statusInterval: seconds between `STATUS=` updates.
    ///   - tickInterval: the server's tick period in seconds (`ServerConfig.tickInterval`).
    ///   - send: delivers one notification; `Systemd.notify` unless a test captures it.
    public init(watchdogMicroseconds: UInt64?, statusInterval: Double = 2, tickInterval: Double,
                send: @escaping (String) -> Void = { Systemd.notify($0) }) {
        self.watchdogPingInterval = watchdogMicroseconds.map { $0 * 1000 / 2 }
        self.statusInterval = UInt64(statusInterval * 1e9)
        self.tickSlack = UInt64(tickInterval * 1e9) / 2
        self.send = send
    }

    /// The largest tick period (seconds) that still lets the loop ping in time: a quarter of the watchdog
    /// timeout, so that a ping is due at most every two ticks. Nil without a watchdog.
    public static func tickInterval(forWatchdogMicroseconds usec: UInt64?) -> Double? {
        usec.map { max(0.01, Double($0) / 4e6) }
    }

    /// Hooks into the server's tick and shutdown (keeping any hooks already set) and sends `READY=1` with a
    /// first status. Call after `server.start()`, when the listeners accept.
    public func attach(to server: Server, now: UInt64 = Sys.monotonicNanoseconds()) {
        let previousTick = server.onTick
        server.onTick = { [self] server in
            previousTick?(server)
            tick(now: Sys.monotonicNanoseconds(), clients: server.connectionCount, rooms: server.hub.roomCount,
                 linesPublished: server.hub.linesPublished)
        }
        let previousShutdown = server.onShutdown
        server.onShutdown = { [self] server in
            previousShutdown?(server)
            shutdownBegan(clients: server.connectionCount)
        }
        let addresses = server.boundAddresses.map(\.description).joined(separator: " ")
        ready(now: now, status: "listening on \(addresses)", linesPublished: server.hub.linesPublished)
    }

    /// `READY=1` (with a status and, if the watchdog is on, a first ping).
    public func ready(now: UInt64, status: String, linesPublished: UInt64) {
        var message = "READY=1\nSTATUS=\(status)"
        if watchdogPingInterval != nil {
            message += "\nWATCHDOG=1"
            lastPing = now
        }
        lastStatus = now
        linesAtLastStatus = linesPublished
        send(message)
    }

    /// Called every tick on the loop thread: pings the watchdog and refreshes the status when they are due,
    /// in one datagram.
    public func tick(now: UInt64, clients: Int, rooms: Int, linesPublished: UInt64) {
        var lines: [String] = []
        if let interval = watchdogPingInterval, now &- lastPing + tickSlack >= interval {
            lines.append("WATCHDOG=1")
            lastPing = now
        }
        if now &- lastStatus >= statusInterval {
            let seconds = Double(now &- lastStatus) / 1e9
            let rate = Double(linesPublished &- linesAtLastStatus) / seconds
            lines.append("STATUS=" + (stopping
                ? "shutting down: \(clients) \(clients == 1 ? "client" : "clients") left"
                : "\(clients) \(clients == 1 ? "client" : "clients"), \(rooms) \(rooms == 1 ? "room" : "rooms"), "
                    + "\(Self.oneDecimal(rate)) messages/s"))
            lastStatus = now
            linesAtLastStatus = linesPublished
        }
        if !lines.isEmpty { send(lines.joined(separator: "\n")) }
    }

    /// `STOPPING=1`: systemd then knows the exit that follows is wanted, and shows the status meanwhile.
    public func shutdownBegan(clients: Int) {
        guard !stopping else { return }
        stopping = true
        send("STOPPING=1\nSTATUS=shutting down: \(clients) \(clients == 1 ? "client" : "clients") left")
    }

    /// `RELOADING=1` before a reload and `READY=1` after it, as systemd 252 expects from a `Type=notify`
    /// service reloaded by `ExecReload=kill -HUP` (there is no `Type=notify-reload` before 253).
    public func reloading(_ body: () -> Void) {
        send("RELOADING=1\nSTATUS=reloading configuration")
        body()
        send("READY=1\nSTATUS=configuration reloaded")
    }

    private static func oneDecimal(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}
