// ChatLimits: every bound the chat logic enforces, with defaults that protect the process.

public struct ChatLimits: Sendable, Equatable {
    /// Longest input line in bytes, excluding the line terminator.
    public var maxLineBytes = 4096
    /// A room's ring starts this small and doubles when a slow reader still needs its oldest bytes.
    public var ringInitialBytes = 16 * 1024
    /// The most a room's ring may hold. A reader further behind than this misses lines (and is told).
    public var ringBytes = 1024 * 1024
    /// The most all rooms' rings may hold together when growing for lagging readers (see `RingMemory`).
    public var ringsMaxBytes = 128 * 1024 * 1024
    /// Most bytes of private output (replies, errors, private messages) queued for one client.
    public var clientQueueBytes = 256 * 1024
    /// Sustained lines per second per client (messages and commands); 0 turns rate limiting off.
    public var messageRate: Double = 20
    /// Lines a client may send in a burst above the sustained rate.
    public var messageBurst: Double = 40
    /// Most rooms that may exist at once (the lobby included).
    public var maxRooms = 1000
    /// Nanoseconds a newly named user's `Online:` waits before it is published to the room (0: at once). A
    /// connection that names itself and goes within this time costs the room nothing: neither its `Online:` nor
    /// its `Offline:` is sent. Its first message or action publishes the `Online:` first.
    public var presenceDelay: UInt64 = 0
    /// Most names listed in a welcome, `/who` or `/rooms` line before "and N more".
    public var maxListedNames = 100

    public init() {}

    /// A private message is queued for its target only while the target's private queue stays within this
    /// share of `clientQueueBytes` (or is empty); otherwise the sender gets `ERR target-busy`. The other half
    /// is reserved for the target's own replies, so what others send can never overflow a client's queue.
    public var privateShareBytes: Int { clientQueueBytes / 2 }
    /// The engine stops processing a client's input while its private queue holds this much (its own replies
    /// pile up faster than it reads them) ...
    public var inputPauseBytes: Int { clientQueueBytes / 4 }
    /// ... and resumes once the queue has drained to this. Paused at a quarter, a client's queue holds at
    /// most a quarter plus one reply (≤ ~14 KB, or one echoed line) plus the private-message share: under
    /// `clientQueueBytes` for every valid setting, which therefore stays a hard cap that a reading client
    /// never reaches.
    public var inputResumeBytes: Int { clientQueueBytes / 8 }

    /// The ring must hold at least one maximal rendered line: prefix (tag, room, name) plus the text.
    public var minimumRingBytes: Int { maxLineBytes + 512 }
}
