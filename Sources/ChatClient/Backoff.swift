// Backoff: the delays between reconnect attempts: exponential, capped, with jitter so that many clients
// dropped by one server restart do not all come back in the same instant.

public struct Backoff: Sendable {
    public let initial: Double
    public let cap: Double
    /// Each delay is scaled by a factor drawn from [1 - jitter, 1].
    public let jitter: Double
    public private(set) var attempts = 0

    public init(initial: Double = 0.5, cap: Double = 30, jitter: Double = 0.2) {
        precondition(initial > 0 && cap >= initial && jitter >= 0 && jitter < 1)
        self.initial = initial
        self.cap = cap
        self.jitter = jitter
    }

    /// The delay before the next attempt, in seconds; `unit` is a random number in [0, 1).
    public mutating func nextDelay(unit: Double) -> Double {
        // 2^attempts overflows nothing: the exponent stops growing once the cap is reached.
        let base = min(cap, initial * Double(1 << min(attempts, 30)))
        attempts += 1
        return base * (1 - jitter * unit)
    }

    /// A connection succeeded (the name was accepted): start again from `initial`.
    public mutating func reset() { attempts = 0 }
}

/// The exit status of `chat`, documented in `--help`.
public enum ChatExit: Int32, CaseIterable, Sendable {
    /// `/quit`, Ctrl-D, or the end of piped input.
    case ok = 0
    /// The server closed the connection (or it broke) without being asked to.
    case connectionLost = 1
    /// Bad command-line arguments.
    case usage = 2
    /// The server could not be reached (refused, unresolvable host, timeout).
    case unreachable = 3
    /// Pipe mode: the name was refused (taken or invalid), or input ended before a name.
    case nameRefused = 4
    /// Terminated by SIGHUP (the terminal went away).
    case hangup = 129
    /// Ctrl-C or SIGINT.
    case interrupted = 130
    /// SIGTERM.
    case terminated = 143

    public var meaning: String {
        switch self {
        case .ok: return "normal end: /quit, Ctrl-D, or end of piped input"
        case .connectionLost: return "the server closed the connection or it broke"
        case .usage: return "bad arguments"
        case .unreachable: return "server unreachable (refused, unknown host, timeout)"
        case .nameRefused: return "pipe mode: name taken or invalid, or no name given"
        case .hangup: return "SIGHUP (terminal closed)"
        case .interrupted: return "Ctrl-C / SIGINT"
        case .terminated: return "SIGTERM"
        }
    }
}
