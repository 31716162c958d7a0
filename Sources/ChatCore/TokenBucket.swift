// TokenBucket: the per-client message rate limit.

/// A token bucket refilled at `ratePerSecond` up to `burst`. Time is passed in (monotonic nanoseconds),
/// so the bucket is pure and testable. A rate of 0 disables limiting.
public struct TokenBucket: Sendable {
    public var ratePerSecond: Double
    public var burst: Double
    private var tokens: Double
    private var lastRefill: UInt64

    public init(ratePerSecond: Double, burst: Double, now: UInt64) {
        self.ratePerSecond = ratePerSecond
        self.burst = max(1, burst)
        self.tokens = max(1, burst)
        self.lastRefill = now
    }

    /// Takes one token if available.
    public mutating func take(now: UInt64) -> Bool {
        if ratePerSecond <= 0 { return true }
        refill(now: now)
        if tokens >= 1 {
            tokens -= 1
            return true
        }
        return false
    }

    private mutating func refill(now: UInt64) {
        if now > lastRefill {
            tokens = min(burst, tokens + Double(now - lastRefill) * ratePerSecond / 1e9)
            lastRefill = now
        }
    }

    /// Whether the bucket has refilled to its burst (a full bucket is as good as a new one).
    public mutating func isFull(now: UInt64) -> Bool {
        refill(now: now)
        return tokens >= burst
    }

    /// Seconds until one token is available (0 if one is now); infinite when the rate is 0 and limiting is on.
    public var secondsUntilNextToken: Double {
        if tokens >= 1 { return 0 }
        return (1 - tokens) / ratePerSecond
    }
}
