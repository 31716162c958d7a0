// Session: one client's chat-level state and its pending output, independent of any socket.

public final class Session {
    public enum Phase: Equatable, Sendable {
        /// Connected; the next line is taken as a name.
        case awaitingName
        case named
        /// Leaving: remaining output (and a final line) is being sent; input is ignored.
        case closing
    }

    /// The engine's identifier for the connection (for logs).
    public let id: UInt64
    /// The peer's address as text (for logs).
    public let peer: String
    public let connectedAt: UInt64
    public internal(set) var phase: Phase = .awaitingName
    public internal(set) var name: String?
    var nameKey: String?
    /// Private output: replies, errors, private messages, missed-line notices, and the rest of a ring line
    /// that a short write cut (which must go out before any further ring bytes).
    var output = ByteQueue()
    /// Ring subscriptions: the current room's, plus rooms being drained after a `/join`.
    var subscriptions: [Subscription] = []
    var current: Subscription?
    var bucket: TokenBucket
    /// Sent after everything else when the session closes (`SYS Bye: …`, `SYS Shutdown: …`, an `ERR`).
    var finalLine: [UInt8]?
    /// Why the session is closing (for the log and the `Offline:` line).
    public internal(set) var closeReason: String?
    /// Set once the final line has been written (or there was none and nothing is pending): the engine
    /// may close the socket.
    public internal(set) var isFinished = false
    /// Set by the engine when a write returned EAGAIN; cleared on the next writable edge. A blocked session
    /// is not flushed when its rooms get new lines (the write would only return EAGAIN again).
    public var isWriteBlocked = false
    var isQueuedForFlush = false
    /// The engine's handle for the connection (chatd: its fd), so a session can be mapped back without a lookup table.
    public var slot: Int = -1
    /// Named, but its `Online:` is not public yet (see `ChatLimits.presenceDelay`).
    var presencePending = false
    /// When the session was named (monotonic nanoseconds).
    var namedAt: UInt64 = 0
    /// Lines this session missed because it fell behind a ring (all rooms, whole life).
    public internal(set) var missedLines = 0

    public init(id: UInt64, peer: String, now: UInt64, limits: ChatLimits) {
        self.id = id
        self.peer = peer
        self.connectedAt = now
        self.bucket = TokenBucket(ratePerSecond: limits.messageRate, burst: limits.messageBurst, now: now)
    }

    public var roomName: String? { current?.room.name }

    /// Applies a new rate limit (configuration reload); tokens already earned are kept, up to the new burst.
    public func updateRate(perSecond rate: Double, burst: Double) {
        bucket.ratePerSecond = rate
        bucket.burst = max(1, burst)
    }

    /// Whether any byte is waiting to be written to this session.
    public var hasPendingOutput: Bool {
        if !output.isEmpty || finalLine != nil { return true }
        for subscription in subscriptions where subscription.hasPending { return true }
        return false
    }

    /// The line still to be sent last (for a session being dropped, the engine writes it best-effort).
    public var finalLineBytes: [UInt8]? { finalLine }

    /// Bytes of private output queued.
    public var queuedBytes: Int { output.count }

    func subscription(for room: Room) -> Subscription? {
        subscriptions.first { $0.room === room && $0.endOffset == nil }
    }
}
