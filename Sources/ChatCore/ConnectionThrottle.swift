// ConnectionThrottle: new connections per address (per network prefix) per second, with a burst.

/// A token bucket of new connections for each address key (the engine uses the IPv4 address, or the IPv6
/// network prefix, so that one host cannot get round it by cycling through its /64).
///
/// Without it, every new connection arrives with a full message burst, so reconnecting bypassed the message
/// rate limit (16 threads from one IP made 56,279 connections in 10 s). The table holds only addresses whose
/// bucket is not full: an address that has not connected for `burst / rate` seconds is forgotten, which is the
/// same as a fresh entry. It is bounded by `maxEntries`; past that (many addresses at once), it sweeps, and if
/// every entry is still live it admits without throttling rather than refuse strangers (and says so).
public struct ConnectionThrottle<Key: Hashable> {
    public var ratePerSecond: Double
    public var burst: Double
    public let maxEntries: Int
    private var buckets: [Key: TokenBucket] = [:]

    public init(ratePerSecond: Double, burst: Double, maxEntries: Int = 65_536) {
        self.ratePerSecond = ratePerSecond
        self.burst = burst
        self.maxEntries = maxEntries
    }

    public enum Verdict: Equatable {
        case admitted
        /// Refused; a token comes back in this many seconds (rounded up, at least 1).
        case throttled(retryAfterSeconds: Int)
        /// Admitted although the table is full of live entries (see the type's comment).
        case admittedUntracked
    }

    public var count: Int { buckets.count }

    /// Takes a token for a new connection from `key`.
    public mutating func admit(_ key: Key, now: UInt64) -> Verdict {
        if ratePerSecond <= 0 { return .admitted }
        if buckets[key] == nil && buckets.count >= maxEntries {
            sweep(now: now)
            if buckets.count >= maxEntries { return .admittedUntracked }
        }
        var bucket = buckets[key] ?? TokenBucket(ratePerSecond: ratePerSecond, burst: burst, now: now)
        let admitted = bucket.take(now: now)
        buckets[key] = bucket
        if admitted { return .admitted }
        let wait = bucket.secondsUntilNextToken
        return .throttled(retryAfterSeconds: wait.isFinite ? max(1, Int(min(wait, 86_400).rounded(.up))) : 86_400)
    }

    /// Forgets addresses whose bucket has refilled (equivalent to never having connected). Call now and then.
    public mutating func sweep(now: UInt64) {
        buckets = buckets.filter { _, bucket in
            var bucket = bucket
            return !bucket.isFull(now: now)
        }
    }

    /// Applies new settings (reload); entries keep their tokens, up to the new burst.
    public mutating func update(ratePerSecond: Double, burst: Double) {
        self.ratePerSecond = ratePerSecond
        self.burst = burst
        for key in buckets.keys {
            buckets[key]?.ratePerSecond = ratePerSecond
            buckets[key]?.burst = max(1, burst)
        }
        if ratePerSecond <= 0 { buckets.removeAll() }
    }
}
