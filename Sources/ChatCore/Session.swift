// Session: one client's chat-level state and its pending output, independent of any socket and of any
// wire format (its front renders what it is sent).

public final class Session {
    public enum Phase: Equatable, Sendable {
        /// Connected, not registered yet (native: the next line is taken as a name; IRC: NICK/USER/CAP).
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
    /// The wire protocol this session speaks: it parses the session's input and renders what it is sent.
    public let front: any Front
    /// Which of the hub's room formats this session reads (`ChatHub.formats` index): its subscriptions read
    /// that format's ring in every room. A front may change it before the session joins a room.
    public var format: Int
    public internal(set) var phase: Phase = .awaitingName
    public internal(set) var name: String?
    /// `name` as UTF-8, for renderers (appending it to a record allocates nothing).
    public internal(set) var nameBytes: [UInt8] = []
    var nameKey: String?
    /// Whether the session is sent its own messages back (IRC `echo-message`); otherwise it skips them.
    public var echoesOwnMessages = false
    /// Whether a session that leaves a room (or quits) is sent the room's record of its own departure.
    /// Native clients see their own `Left:`/`Offline:`; an IRC client sees its own PART but gets `ERROR`, not
    /// its own QUIT.
    public var seesOwnQuit = true
    /// A session that always talks to a current room (native): kicked from one, it goes back to the lobby.
    public var returnsToLobby = false
    /// A cache for the front's renderers (IRC: the `:nick!user@host ` source prefix), cleared on rename.
    public var renderCache: [UInt8] = []
    /// What the session's front keeps per session (IRC: registration, capabilities); the hub never reads it.
    public var frontState: AnyObject?
    /// Set by the front when the session goes away (`AWAY`), nil when it is back.
    public var awayMessage: String?
    /// A server operator (IRC `OPER`): shown as such in WHO, WHOIS and LUSERS; may disconnect users (`KILL`).
    public var isOperator = false
    /// Private output: replies, errors, private messages, missed-message notices, and the rest of a ring
    /// record that a short write cut (which must go out before any further ring bytes).
    var output = ByteQueue()
    /// Ring subscriptions: the rooms the session is a member of, plus rooms being drained after it left.
    var subscriptions: [Subscription] = []
    /// The room a front without per-message targets talks to (native); fronts with targets may leave it nil.
    var current: Subscription?
    public var bucket: TokenBucket
    /// Sent after everything else when the session closes (a goodbye, a shutdown notice, an error).
    var finalLine: [UInt8]?
    /// Why the session is closing (for the log).
    public internal(set) var closeReason: String?
    /// Set once the final line has been written (or there was none and nothing is pending): the engine
    /// may close the socket.
    public internal(set) var isFinished = false
    /// Set by the engine when a write returned EAGAIN; cleared on the next writable edge. A blocked session
    /// is not flushed when its rooms get new records (the write would only return EAGAIN again).
    public var isWriteBlocked = false
    var isQueuedForFlush = false
    /// The engine's handle for the connection (chatd: its fd), so a session can be mapped back without a lookup table.
    public var slot: Int = -1
    /// Named, but its `Online:` is not public yet (see `ChatLimits.presenceDelay`).
    var presencePending = false
    /// When the session was named (monotonic nanoseconds).
    var namedAt: UInt64 = 0
    /// Messages this session missed because it fell behind a ring (all rooms, whole life).
    public internal(set) var missedLines = 0
    /// A stamp the hub sets while it walks the members of several rooms, to count each session once.
    var visitMark: UInt64 = 0

    public init(id: UInt64, peer: String, now: UInt64, limits: ChatLimits, front: any Front, format: Int = 0) {
        self.id = id
        self.peer = peer
        self.connectedAt = now
        self.front = front
        self.format = format
        self.bucket = TokenBucket(ratePerSecond: limits.messageRate, burst: limits.messageBurst, now: now)
    }

    /// The current room (native fronts), if any.
    public var currentRoom: Room? { current?.room }
    public var roomName: String? { current?.room.name }

    /// The rooms this session is a member of, in the order it joined them.
    public var rooms: [Room] {
        subscriptions.compactMap { $0.endOffset == nil ? $0.room : nil }
    }

    /// Whether the session is a member of `room`.
    public func isMember(of room: Room) -> Bool { subscription(for: room) != nil }

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
