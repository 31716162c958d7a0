// Fronts and formats: how the hub, which holds chat state only, meets the wire protocols.
//
// The hub never builds protocol text. What it publishes to a room is a typed `RoomEvent`, rendered once
// per format in use in that room by that format's `RoomFormat` into the room's ring for that format.
// What it sends one session (a private message, a missed-messages notice, a drop notice) it asks the
// session's `Front` to render. Everything else a client is told (welcomes, replies, errors) the front
// renders itself from the results of the hub's operations.

/// Why a member left a room or the chat.
public enum LeaveReason: Equatable, Sendable {
    /// The user quit; its message (already cleaned of what reshapes a display), if it gave one.
    case quit(String?)
    /// The connection ended for a reason the server describes ("connection reset by peer", ...).
    case closed(String)
}

/// A channel member's privileges (IRC's `@` and `+`); native clients do not show them.
public struct MemberPrivileges: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let voice = MemberPrivileges(rawValue: 1)
    public static let op = MemberPrivileges(rawValue: 2)
}

/// Something that happened in a room, as every member's format renders it.
/// A message's identity: the epoch of the hub that published it (its start, wall-clock milliseconds) and its
/// serial number there. Unique as long as no two hubs of a deployment start in the same millisecond.
public struct MessageID: Hashable, Sendable {
    public var epoch: UInt64
    public var serial: UInt64
    public init(epoch: UInt64, serial: UInt64) {
        self.epoch = epoch
        self.serial = serial
    }
}

public struct RoomEvent {
    public enum Kind {
        /// A message to the room (`text`).
        case message
        /// `/me` or CTCP ACTION (`text`).
        case action
        /// An IRC NOTICE to the room (`text`); native renders it as a message.
        case notice
        /// The actor came online and is in this room (native's arrival in the lobby).
        case online
        /// The actor joined this room.
        case joined
        /// The actor left this room for `otherRoom` (native `/join`), or parted (`text`: its part message).
        case left
        /// The actor left the chat.
        case offline(LeaveReason)
        /// The actor was renamed from `previousName`.
        case renamed
        /// The actor set the topic to `text` (empty: cleared).
        case topic
        /// The actor (an operator) removed `target` from the room (`text`: the reason).
        case kicked
        /// The actor changed modes: `text` is the change as IRC writes it (`+o bob`, `-t`).
        case modeChanged
    }

    public var kind: Kind
    public var room: Room
    public let actor: Session
    /// Message text, part message, topic: the user's bytes, valid only during the render call.
    public var text: UnsafeRawBufferPointer
    /// For `.left`: the room the actor moved to, if it moved.
    public var otherRoom: Room?
    /// For `.renamed`: the name before.
    public var previousName: String
    /// For `.kicked`: who was removed.
    public var target: Session?
    /// When the hub published it (wall-clock milliseconds since 1970, UTC).
    public var time: UInt64
    /// The message's number in its room (the same in every ring of the room).
    public var sequence: UInt64
    /// The message's identity (set by the hub when it publishes).
    public var id = MessageID(epoch: 0, serial: 0)
    /// Tags the sender attached for other clients (IRC client-only tags, `+key=value;…` as sent, already
    /// checked by its front): opaque to the hub, valid only during the render call, empty for most messages.
    public var clientTags = UnsafeRawBufferPointer(start: nil, count: 0)

    public init(kind: Kind, room: Room, actor: Session, text: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                otherRoom: Room? = nil, previousName: String = "", target: Session? = nil, time: UInt64 = 0, sequence: UInt64 = 0) {
        self.kind = kind
        self.room = room
        self.actor = actor
        self.text = text
        self.otherRoom = otherRoom
        self.previousName = previousName
        self.target = target
        self.time = time
        self.sequence = sequence
    }
}

/// One wire format's rendering of room events: what goes into that format's ring in every room.
public protocol RoomFormat: AnyObject {
    /// Appends `event` as one record: one or more whole lines, each ending in `\n`, never empty.
    func render(_ event: RoomEvent, into record: inout [UInt8])
}

/// What kind of private message.
public enum PrivateKind: Sendable {
    case message
    case action
    case notice
}

/// A private message, as the recipient's front renders it.
public struct PrivateMessage {
    public let kind: PrivateKind
    public let sender: Session
    public let recipient: Session
    /// The user's bytes, valid only during the render call.
    public let text: UnsafeRawBufferPointer
    public let time: UInt64
    public let id: MessageID
    /// As in `RoomEvent.clientTags`.
    public let clientTags: UnsafeRawBufferPointer
}

/// A wire protocol as the engine and the hub see it. A front parses a session's framed input lines into hub
/// operations and renders the hub's results, replies and errors; the hub calls it to render what it sends a
/// session on its own (the `render…` methods append to `bytes`, which the hub then queues).
public protocol Front: AnyObject {
    /// A new connection: greet it if the protocol greets.
    func open(_ session: Session)
    /// One complete input line, without its terminator (`\n`, or `\r\n`: the front drops a trailing `\r`).
    func receive(_ line: UnsafeRawBufferPointer, from session: Session, now: UInt64)
    /// An input line longer than the limit (its rest is being discarded by the framer).
    func lineTooLong(_ session: Session)
    /// The engine's notices, as this protocol writes them (a final line before a close, or a refusal).
    func render(_ notice: ServerNotice, for session: Session?) -> [UInt8]

    func renderPrivate(_ message: PrivateMessage, into bytes: inout [UInt8])
    /// `inviter` invites `session` to `room` (IRC INVITE).
    func renderInvite(from inviter: Session, to room: Room, for session: Session, into bytes: inout [UInt8])
    func renderMissed(_ count: Int, in room: Room, for session: Session, into bytes: inout [UInt8])
    /// The last line to a session dropped because its queue overflowed.
    func renderDropped(reason: String, for session: Session, into bytes: inout [UInt8])
    /// The engine's periodic check: `idle` nanoseconds since the session's last input. Returns whether the
    /// front acted (IRC pings a quiet client, and closes one that did not answer).
    func tick(_ session: Session, idle: UInt64, now: UInt64) -> Bool
}

extension Front {
    public func tick(_ session: Session, idle: UInt64, now: UInt64) -> Bool { false }
}

/// What the engine tells a client, in the client's protocol.
public enum ServerNotice: Sendable {
    /// Refusals, sent to a socket that is closed at once (no session).
    case serverFull(max: Int)
    case serverBusy
    case throttled(retryAfterSeconds: Int)
    case tooManyConnections(max: Int)
    /// Final lines before a close.
    case shutdown
    case nameTimeout(seconds: String)
    case idleTimeout(seconds: String)
    case writeTimeout(seconds: String)
    /// A server operator disconnected the session (IRC `KILL`).
    case killed(by: String, reason: String)
    /// Not final: a partial line was dropped after `seconds`.
    case lineTimeout(seconds: String, droppedBytes: Int)
}
