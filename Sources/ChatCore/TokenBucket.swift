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
        if now > lastRefill {
            tokens = min(burst, tokens + Double(now - lastRefill) * ratePerSecond / 1e9)
            lastRefill = now
        }
        if tokens >= 1 {
            tokens -= 1
            return true
        }
        return false
    }
}
