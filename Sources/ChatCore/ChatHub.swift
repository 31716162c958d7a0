// ChatHub: the chat's state — names, rooms, membership, limits, rings and cursors. Fronts call its
// operations; it publishes typed room events into the rings (rendered once per format in use), asks a
// session's front to render what it sends that session, and tells the engine what to write. It never
// builds protocol text and never touches a socket.

/// Something worth a log line, reported to the engine.
public enum HubEvent {
    case named(Session)
    case renamed(Session, from: String)
    case joined(Session, room: String)
    case missed(Session, room: String, lines: Int)
    case rateLimited(Session)
    /// The session must be closed now, without waiting for its output (its queue overflowed).
    case terminated(Session, reason: String)
}

/// The outcome of claiming a name (registration).
public enum NameClaim: Equatable {
    case claimed
    /// No token left: the name was not even checked (checking costs CPU; see `claimName`).
    case rateLimited
    case invalid(NameProblem)
    /// Someone online has this name (`lookingLike` nil) or one that looks like it (its holder's name).
    case taken(lookingLike: String?)
}

/// The outcome of a rename.
public enum RenameResult: Equatable {
    case renamed(from: String)
    /// The new name is the old one, byte for byte.
    case unchanged
    case invalid(NameProblem)
    case taken(lookingLike: String?)
}

/// The outcome of a join.
public enum JoinResult {
    case joined(Room)
    case invalid(NameProblem)
    case alreadyMember(Room)
    case tooManyRooms(max: Int)
    /// The room's modes keep the session out (IRC `+k`, `+l`, `+i`).
    case needsKey(Room)
    case full(Room)
    case inviteOnly(Room)
}

/// The outcome of a private message.
public enum PrivateResult {
    case delivered(Session, id: MessageID)
    case noSuchUser
    /// Its queue is over the share others may fill, even after a flush: not delivered.
    case targetBusy(Session)
}

/// Room modes the hub enforces (IRC shows and sets them; native rooms keep the defaults).
public struct RoomModes: Equatable, Sendable {
    /// `+t`: only operators set the topic.
    public var topicLocked = true
    /// `+n`: no messages from outside the room.
    public var noExternal = true
    /// `+m`: only operators and voiced members speak.
    public var moderated = false
    /// `+s`: not listed to non-members.
    public var secret = false
    /// `+i`: only invited sessions join.
    public var inviteOnly = false
    /// `+k`: the key needed to join (nil: none).
    public var key: String?
    /// `+l`: most members (0: no limit).
    public var limit = 0
    public init() {}
}

public final class ChatHub {
    public var limits: ChatLimits {
        didSet { ringMemory.limit = limits.ringsMaxBytes }
    }
    /// The memory all rings share; its limit follows `limits.ringsMaxBytes`.
    public let ringMemory: RingMemory
    /// The room formats sessions read (`Session.format` indexes this).
    public let formats: [any RoomFormat]
    public static let lobbyName = "lobby"
    public private(set) var lobby: Room
    private var rooms: [String: Room] = [:]
    private var sessionsByName: [String: Session] = [:]
    /// Every room, sorted by name as listings show them: kept sorted on insert and removal, so a listing
    /// never sorts (with 1,000 CJK-named rooms a sort cost 1.5 ms per request).
    public private(set) var sortedRooms: [Room] = []
    /// Bumped on every change of the room list or of any room's membership, so fronts can cache listings.
    public private(set) var roomsVersion: UInt64 = 0
    /// Named sessions whose `Online:` is not yet public (see `ChatLimits.presenceDelay`), oldest first.
    private var pendingPresence: [Session] = []
    /// Every look-alike key (`Names.lookAlikeKeys`) of every named session → that session. A name with a
    /// key held by another session is taken, so no two online names look alike and each key has one holder.
    private var sessionsByLookAlike: [String: Session] = [:]
    /// The same for rooms: a join of a name that looks like an existing room's joins that room.
    private var roomsByLookAlike: [String: Room] = [:]
    private var dirtyRooms: [Room] = []
    private var flushQueue: [Session] = []
    /// Sessions the engine must close at once (see `HubEvent.terminated`), drained by `takeTerminated`.
    private var terminated: [Session] = []
    /// Rendering scratch, reused: rendering a message allocates nothing once it has grown.
    private var record: [UInt8] = []
    private var privateBytes: [UInt8] = []
    /// Each ring's range of the record `publish` appended last, by format (nil: no ring of that format).
    private var lastRanges: [Range<UInt64>?] = []
    private var visitStamp: UInt64 = 0
    /// Called for loggable events. Kept as a closure so ChatCore needs no logging package.
    public var onEvent: ((HubEvent) -> Void)?
    /// Set by the engine: writes a session's pending output to its socket now, as far as the socket takes it.
    /// The hub calls it before refusing a private message to a full queue (see `acceptsPrivate`).
    public var flushNow: ((Session) -> Void)?
    /// Wall-clock time (milliseconds since 1970, UTC), set by the engine every turn: the time events carry.
    public var wallClock: UInt64 = 0 {
        didSet { if lobby.createdAt == 0 { lobby.createdAt = wallClock } }
    }
    /// Private messages refused as target-busy (for status figures and tests).
    public private(set) var privateRefused: UInt64 = 0
    /// Messages and room events published (each counted once, whatever the number of formats).
    public private(set) var linesPublished: UInt64 = 0
    /// The epoch of the message ids this hub hands out (set by the engine at start: its wall clock).
    public var idEpoch: UInt64 = 0
    private var nextSerial: UInt64 = 0
    /// Ring bytes appended since the last end-of-turn flush. The engine flushes early when this nears a
    /// ring's size, so that readers who keep up are never overrun by a single busy turn.
    public private(set) var bytesSinceFlush = 0

    public init(limits: ChatLimits = ChatLimits(), formats: [any RoomFormat]) {
        precondition(!formats.isEmpty, "a hub needs at least one room format")
        self.limits = limits
        self.formats = formats
        self.ringMemory = RingMemory(limit: limits.ringsMaxBytes)
        let lobby = Room(name: Self.lobbyName, key: Names.key(Self.lobbyName), limits: limits, memory: ringMemory,
                         formatCount: formats.count, createdAt: 0)
        // Nobody is the lobby's operator, so its topic is open to every member.
        lobby.modes.topicLocked = false
        self.lobby = lobby
        rooms[lobby.key] = lobby
        sortedRooms = [lobby]
        for key in Names.lookAlikeKeys(lobby.name) { roomsByLookAlike[key] = lobby }
    }

    deinit {
        // Rooms and their subscriptions reference each other (a room lists its members, a subscription
        // reads its room); break the cycle so a hub that goes away takes its rooms with it.
        for room in rooms.values {
            room.members.removeAll()
            room.draining.removeAll()
            for case let slot? in room.rings { slot.readers.removeAll() }
        }
    }

    public var roomCount: Int { rooms.count }
    public var namedCount: Int { sessionsByName.count }
    /// The most named sessions there have been at once since the hub started (LUSERS' "max").
    public private(set) var peakNamedCount = 0

    public func session(named name: String) -> Session? { sessionsByName[Names.key(name)] }

    /// The room called `name` (or one that looks like it), if it exists.
    public func room(named name: String) -> Room? {
        if let room = rooms[Names.key(name)] { return room }
        return Names.lookAlikeKeys(name).lazy.compactMap { self.roomsByLookAlike[$0] }.first
    }

    /// Calls `body` with every named session, in no particular order, until it returns false.
    public func forEachNamed(_ body: (Session) -> Bool) {
        for session in sessionsByName.values where !body(session) { return }
    }

    // MARK: Lifecycle

    /// Starts an orderly close: leaves every room (announcing the departure unless `announce` is false), then
    /// sends what is pending, then `finalLine`, after which `isFinished` is set. Idempotent.
    public func beginClose(_ session: Session, reason: LeaveReason, finalLine: [UInt8]?, announce: Bool = true) {
        guard session.phase != .closing else { return }
        let wasNamed = session.phase == .named
        session.phase = .closing
        session.closeReason = Self.describe(reason)
        session.finalLine = finalLine
        let wasAnnounced = !withdrawPendingPresence(session)
        departAll(session, reason: reason, announce: wasNamed && announce && wasAnnounced, draining: true)
        forgetName(session)
        requestFlush(session)
    }

    /// The connection is gone (reset, write timeout, engine shutdown): drop every trace of the session now.
    public func remove(_ session: Session, reason: String) {
        let wasAnnounced = !withdrawPendingPresence(session)
        if session.phase == .named {
            departAll(session, reason: .closed(reason), announce: wasAnnounced, draining: false)
        }
        session.phase = .closing
        if session.closeReason == nil { session.closeReason = reason }
        forgetName(session)
        for subscription in session.subscriptions { detach(subscription) }
        session.subscriptions.removeAll()
        session.current = nil
        session.output.release()
        session.finalLine = nil
        session.isFinished = true
    }

    /// How a departure reads in logs: `quit`, `quit: "message"`, or the server's description.
    public static func describe(_ reason: LeaveReason) -> String {
        switch reason {
        case .quit(nil): return "quit"
        case .quit(let message?): return "quit: " + EmbeddedText.quote(message)
        case .closed(let description): return description
        }
    }

    /// Sessions that must be closed at once; the engine calls this after feeding input and after flushing.
    public func takeTerminated(_ body: (Session) -> Void) {
        while let session = terminated.popLast() { body(session) }
    }

    // MARK: Names

    /// Claims `name` for an unregistered session. A refused name costs a token of the rate limit, like a line:
    /// checking a name (NFD, three skeletons) takes tens of microseconds, and unmetered retries would let an
    /// unnamed client burn CPU at will. With no token left the name is not even checked. The accepted name is
    /// free, so a client that gets in at once starts with its whole burst.
    public func claimName(_ name: String, for session: Session, now: UInt64) -> NameClaim {
        precondition(session.phase == .awaitingName, "claimName is for unregistered sessions")
        // A copy of the bucket asks whether a token is there without taking it.
        var probe = session.bucket
        if !probe.take(now: now) {
            onEvent?(.rateLimited(session))
            return .rateLimited
        }
        if let problem = Names.validate(name) {
            _ = session.bucket.take(now: now)
            return .invalid(problem)
        }
        let key = Names.key(name)
        if sessionsByName[key] != nil {
            _ = session.bucket.take(now: now)
            return .taken(lookingLike: nil)
        }
        let lookAlikeKeys = Names.lookAlikeKeys(name)
        if let holder = lookAlikeHolder(lookAlikeKeys, other: session) {
            _ = session.bucket.take(now: now)
            return .taken(lookingLike: holder.name ?? "?")
        }
        sessionsByName[key] = session
        peakNamedCount = max(peakNamedCount, sessionsByName.count)
        for lookAlike in lookAlikeKeys { sessionsByLookAlike[lookAlike] = session }
        setName(name, key: key, of: session)
        session.phase = .named
        session.namedAt = now
        onEvent?(.named(session))
        return .claimed
    }

    /// Renames a named session, announcing it in every room it is in.
    public func rename(_ session: Session, to newName: String) -> RenameResult {
        guard let oldName = session.name else { return .invalid(.empty) }
        if newName == oldName { return .unchanged }
        if let problem = Names.validate(newName) { return .invalid(problem) }
        let key = Names.key(newName)
        if let holder = sessionsByName[key], holder !== session { return .taken(lookingLike: nil) }
        // Looking like one's own name is fine (`aIice` for alice); like someone else's is not.
        let lookAlikeKeys = Names.lookAlikeKeys(newName)
        if let holder = lookAlikeHolder(lookAlikeKeys, other: session) { return .taken(lookingLike: holder.name ?? "?") }
        forgetName(session)
        sessionsByName[key] = session
        for lookAlike in lookAlikeKeys { sessionsByLookAlike[lookAlike] = session }
        setName(newName, key: key, of: session)
        for subscription in session.subscriptions where subscription.endOffset == nil { subscription.room.version &+= 1 }
        roomsVersion &+= 1
        onEvent?(.renamed(session, from: oldName))
        // Nobody heard of a newcomer still unannounced: its `Online:` will carry the new name.
        if !session.presencePending {
            publishInAllRooms(RoomEvent(kind: .renamed, room: lobby, actor: session, previousName: oldName), of: session, skipActor: false)
        }
        return .renamed(from: oldName)
    }

    private func setName(_ name: String, key: String, of session: Session) {
        session.name = name
        session.nameBytes = Array(name.utf8)
        session.nameKey = key
        session.renderCache = []
    }

    /// Up to `limit` online names, sorted, and how many are online. Stops early: a join must not cost O(users).
    public func onlineNames(limit: Int) -> (names: [String], total: Int) {
        var names: [String] = []
        for session in sessionsByName.values {
            if names.count == limit { break }
            if let name = session.name { names.append(name) }
        }
        return (names.sorted(), sessionsByName.count)
    }

    /// Up to `limit` member names of `room`, sorted.
    public func memberNames(of room: Room, limit: Int) -> [String] {
        room.members.prefix(limit).map { $0.session.name ?? "?" }.sorted()
    }

    // MARK: Presence

    /// A newly named session enters the lobby and comes online there. With a presence delay its `Online:` is
    /// made public later (see `ChatLimits.presenceDelay`): the newcomer sees its own now, with the same bytes
    /// and in the same place as it would from the ring.
    public func arrive(_ session: Session, now: UInt64) {
        guard session.phase == .named, let name = session.name, !name.isEmpty else { return }
        if limits.presenceDelay == 0 {
            enter(lobby, session: session, announce: .online)
            return
        }
        enter(lobby, session: session, announce: nil)
        render(RoomEvent(kind: .online, room: lobby, actor: session, time: wallClock, sequence: lobby.messageCount),
               format: session.format, privatelyTo: session)
        session.presencePending = true
        session.namedAt = now
        pendingPresence.append(session)
    }

    /// Makes pending `Online:` records public once `presenceDelay` has passed; the engine calls it every tick.
    public func announceDuePresence(now: UInt64) {
        guard !pendingPresence.isEmpty else { return }
        var kept = 0
        for session in pendingPresence where session.presencePending {
            if now &- session.namedAt >= limits.presenceDelay {
                announcePresence(session)
            } else {
                pendingPresence[kept] = session
                kept += 1
            }
        }
        pendingPresence.removeLast(pendingPresence.count - kept)
    }

    /// Publishes a pending `Online:` before the session's first visible act (a message, an action), so nobody
    /// sees a record from someone who has not arrived. The session itself already saw it, so it skips it.
    private func announcePresence(_ session: Session) {
        guard session.presencePending else { return }
        session.presencePending = false
        guard let subscription = session.current else { return }
        publish(RoomEvent(kind: .online, room: subscription.room, actor: session), skipping: subscription)
    }

    /// Forgets a pending announcement; returns whether there was one (then the departure is not announced
    /// either: the room never heard of the session). Entries left in `pendingPresence` are skipped there.
    private func withdrawPendingPresence(_ session: Session) -> Bool {
        guard session.presencePending else { return false }
        session.presencePending = false
        return true
    }

    // MARK: Messages

    /// A message, action or notice to a room the session is a member of. Returns false if it is not one.
    @discardableResult
    public func post(_ kind: RoomEvent.Kind, _ text: UnsafeRawBufferPointer, from session: Session, in room: Room,
                     clientTags: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) -> Bool {
        guard let subscription = session.subscription(for: room) else { return false }
        if room.modes.moderated && subscription.privileges.isEmpty { return false }
        announcePresence(session)
        var event = RoomEvent(kind: kind, room: room, actor: session, text: text)
        event.clientTags = clientTags
        publish(event, skipping: session.echoesOwnMessages ? nil : subscription)
        return true
    }

    /// A new message id (for what a front sends outside the rings, such as IRC TAGMSG).
    public func takeMessageID() -> MessageID {
        defer { nextSerial += 1 }
        return MessageID(epoch: idEpoch, serial: nextSerial)
    }

    /// Whether `room` may hear from `session` (a member, and voiced or better if the room is moderated).
    public func maySpeak(_ session: Session, in room: Room) -> Bool {
        guard let subscription = session.subscription(for: room) else { return false }
        return !room.modes.moderated || !subscription.privileges.isEmpty
    }

    /// Sends `bytes` to every member of `room` that reads `format`, except `sender` unless it echoes its own
    /// messages: for what a format carries outside the rings (IRC TAGMSG, seen only by clients with
    /// message-tags). A member whose queue is over the share others may fill is skipped, never closed; the
    /// return value is how many were skipped.
    @discardableResult
    public func sendOutsideRing(_ bytes: UnsafeRawBufferPointer, toMembersOf room: Room, reading format: Int, from sender: Session) -> Int {
        var skipped = 0
        for subscription in room.members where subscription.session.format == format {
            let member = subscription.session
            if member === sender && !sender.echoesOwnMessages { continue }
            if !sendOutsideRing(bytes, to: member) { skipped += 1 }
        }
        return skipped
    }

    /// Sends `bytes` to one named session outside the rings, within the share others may fill of its queue;
    /// false (nothing sent) if it is over that share or not named.
    @discardableResult
    public func sendOutsideRing(_ bytes: UnsafeRawBufferPointer, to session: Session) -> Bool {
        guard session.phase == .named, acceptsPrivate(bytes.count, into: session) else { return false }
        enqueue(bytes, to: session)
        return true
    }

    /// Changes the format a session reads; only possible while it reads no ring (in no room, none draining).
    public func setFormat(_ format: Int, of session: Session) -> Bool {
        guard format >= 0 && format < formats.count, session.subscriptions.isEmpty else { return false }
        session.format = format
        return true
    }

    /// A message to the session's current room (fronts without per-message targets).
    @discardableResult
    public func post(_ kind: RoomEvent.Kind, _ text: UnsafeRawBufferPointer, from session: Session) -> Bool {
        guard let room = session.current?.room else { return false }
        return post(kind, text, from: session, in: room)
    }

    /// A private message from `sender` to the online session named `name`.
    public func sendPrivate(_ kind: PrivateKind, _ text: UnsafeRawBufferPointer, from sender: Session, to name: String,
                            clientTags: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) -> PrivateResult {
        guard let target = sessionsByName[Names.key(name)], target.phase == .named else { return .noSuchUser }
        privateBytes.removeAll(keepingCapacity: true)
        let id = takeMessageID()
        target.front.renderPrivate(PrivateMessage(kind: kind, sender: sender, recipient: target, text: text, time: wallClock,
                                                  id: id, clientTags: clientTags),
                                   into: &privateBytes)
        if !acceptsPrivate(privateBytes.count, into: target) {
            // Its queue is over the share others may fill: write it to its socket first (a target that
            // reads drains into its socket buffer), and refuse only if it still does not fit.
            flushNow?(target)
            guard target.phase == .named else { return .noSuchUser }  // the write found the connection gone
            if !acceptsPrivate(privateBytes.count, into: target) {
                privateRefused += 1
                return .targetBusy(target)
            }
        }
        privateBytes.withUnsafeBytes { enqueue($0, to: target) }
        return .delivered(target, id: id)
    }

    /// Sets a room's topic (the front checks who may).
    public func setTopic(_ text: UnsafeRawBufferPointer, by session: Session, in room: Room) {
        room.topic = String(decoding: text, as: UTF8.self)
        room.topicSetter = session.name ?? ""
        room.topicTime = wallClock
        publish(RoomEvent(kind: .topic, room: room, actor: session, text: text), skipping: nil)
    }

    // MARK: Rooms

    /// Joins the room called `name` (made if new). With `leavingCurrent`, the session first leaves its
    /// current room for it (native `/join`: one room at a time); otherwise it joins one more (IRC).
    /// With `actorSeesJoin` false the joiner is not sent its own join record: its front renders it privately,
    /// ahead of the replies that must follow it (IRC: JOIN, then the topic and NAMES).
    public func join(_ session: Session, roomNamed raw: String, leavingCurrent: Bool, key: String? = nil,
                     actorSeesJoin: Bool = true) -> JoinResult {
        guard session.phase == .named else { return .invalid(.empty) }
        let (roomName, problem) = Names.roomName(raw)
        if let problem { return .invalid(problem) }
        let nameKey = Names.key(roomName)
        let lookAlikeKeys = Names.lookAlikeKeys(roomName)
        // A room that looks like an existing one *is* that one (as `#DEV` is `#dev`): nobody can open a
        // look-alike `#Iobby` beside `#lobby`, and the reply shows the spelling joined.
        let existing = rooms[nameKey] ?? lookAlikeKeys.lazy.compactMap { self.roomsByLookAlike[$0] }.first
        if let existing {
            if session.isMember(of: existing) { return .alreadyMember(existing) }
        } else if rooms.count >= limits.maxRooms {
            return .tooManyRooms(max: limits.maxRooms)
        }
        let room: Room
        if let existing {
            room = existing
            let invited = session.nameKey.map { room.invited.contains($0) } ?? false
            if room.modes.inviteOnly && !invited { return .inviteOnly(room) }
            if let required = room.modes.key, required != key, !invited { return .needsKey(room) }
            if room.modes.limit > 0 && room.memberCount >= room.modes.limit && !invited { return .full(room) }
            if let nameKey = session.nameKey { room.invited.remove(nameKey) }
        } else {
            room = Room(name: roomName, key: nameKey, limits: limits, memory: ringMemory, formatCount: formats.count,
                        createdAt: wallClock)
            rooms[nameKey] = room
            insertSorted(room)
            for lookAlike in lookAlikeKeys { roomsByLookAlike[lookAlike] = room }
        }
        // A newcomer whose arrival was never announced leaves without a `Left:`; its `Joined:` is public.
        let wasAnnounced = !withdrawPendingPresence(session)
        if leavingCurrent, let current = session.current {
            leave(current, event: wasAnnounced ? RoomEvent(kind: .left, room: current.room, actor: session, otherRoom: room) : nil)
        }
        let subscription = enter(room, session: session, announce: .joined, actorSees: actorSeesJoin)
        if room.members.count == 1 && room !== lobby { subscription.privileges = .op }
        onEvent?(.joined(session, room: room.name))
        return .joined(room)
    }

    /// Leaves `room` (IRC PART), announcing it with the part message `text`.
    public func part(_ session: Session, from room: Room, message text: UnsafeRawBufferPointer) -> Bool {
        guard let subscription = session.subscription(for: room) else { return false }
        leave(subscription, event: RoomEvent(kind: .left, room: room, actor: session, text: text))
        return true
    }

    /// Sets `room`'s modes (the front has checked that `session` is an operator) and announces the change,
    /// written as `change` (`+k secret`, `-t`) in the room's record.
    public func setModes(_ modes: RoomModes, change: String, by session: Session, in room: Room) {
        if room.modes.inviteOnly && !modes.inviteOnly { room.invited.removeAll() }  // `-i` ends pending invites
        room.modes = modes
        announceMode(change, by: session, in: room)
    }

    /// Gives or takes a member's privileges (`+o`, `-v`); returns false if `target` is not a member.
    public func setPrivileges(_ privileges: MemberPrivileges, of target: Session, in room: Room, change: String, by session: Session) -> Bool {
        guard let subscription = target.subscription(for: room) else { return false }
        subscription.privileges = privileges
        room.version &+= 1
        announceMode(change, by: session, in: room)
        return true
    }

    private func announceMode(_ change: String, by session: Session, in room: Room) {
        var text = change
        text.withUTF8 { bytes in
            publish(RoomEvent(kind: .modeChanged, room: room, actor: session, text: UnsafeRawBufferPointer(bytes)), skipping: nil)
        }
    }

    /// Invites `target` into `room` (lets it past `+i`, `+k` and `+l` once).
    public func invite(_ target: Session, to room: Room) {
        if let nameKey = target.nameKey, room.invited.count < 1000 { room.invited.insert(nameKey) }
    }

    /// Calls `body` with every room `session` is invited to and not a member of (a scan of all rooms).
    public func forEachRoom(inviting session: Session, _ body: (Room) -> Void) {
        guard let key = session.nameKey else { return }
        for room in rooms.values where room.invited.contains(key) && !session.isMember(of: room) { body(room) }
    }

    /// Removes `target` from `room` on an operator's behalf; everyone there, the target included, is told.
    public func kick(_ target: Session, from room: Room, by session: Session, reason text: UnsafeRawBufferPointer) -> Bool {
        guard let subscription = target.subscription(for: room) else { return false }
        leave(subscription, event: RoomEvent(kind: .kicked, room: room, actor: session, text: text, target: target))
        if target.returnsToLobby && target.current == nil && room !== lobby {
            enter(lobby, session: target, announce: .joined)
        }
        return true
    }

    /// The privileges `session` holds in `room` (empty when not a member).
    public func privileges(of session: Session, in room: Room) -> MemberPrivileges {
        session.subscription(for: room)?.privileges ?? []
    }

    /// Calls `body` with each member of `room` and its privileges.
    public func forEachMember(of room: Room, _ body: (Session, MemberPrivileges) -> Void) {
        for member in room.members { body(member.session, member.privileges) }
    }

    @discardableResult
    private func enter(_ room: Room, session: Session, announce kind: RoomEvent.Kind?, actorSees: Bool = true) -> Subscription {
        let slot = room.slot(for: session.format)
        let subscription = Subscription(session: session, room: room, slot: slot)
        subscription.indexInRoom = room.members.count
        room.members.append(subscription)
        subscription.indexInSlot = slot.readers.count
        slot.readers.append(subscription)
        membershipChanged(room)
        session.subscriptions.append(subscription)
        if session.current == nil { session.current = subscription }
        // Subscribed before announcing, so the newcomer sees its own `Online:`/`Joined:` record too.
        if let kind { publish(RoomEvent(kind: kind, room: room, actor: session), skipping: actorSees ? nil : subscription) }
        return subscription
    }

    /// Moves a subscription from member to draining: it still gets what was posted while it was a member.
    private func leave(_ subscription: Subscription, event: RoomEvent?, skipOwn: Bool = false) {
        let room = subscription.room
        let session = subscription.session
        if session.current === subscription { session.current = nil }
        removeFromRoom(subscription, in: \.members)
        if let event { publish(event, skipping: skipOwn ? subscription : nil) }
        subscription.endOffset = subscription.ring.head
        subscription.endSeq = subscription.ring.headSeq
        if subscription.hasPending {
            subscription.indexInRoom = room.draining.count
            room.draining.append(subscription)
        } else {
            removeReader(subscription)
            session.subscriptions.removeAll { $0 === subscription }
            retireIfUnused(room)
        }
    }

    /// Leaves every room at once, the departure announced in each (each other session that shares several of
    /// them is sent it once). `draining`: the session still gets what is due (an orderly close).
    private func departAll(_ session: Session, reason: LeaveReason, announce: Bool, draining: Bool) {
        let memberships = session.subscriptions.filter { $0.endOffset == nil }
        guard !memberships.isEmpty else { return }
        if announce {
            publishInAllRooms(RoomEvent(kind: .offline(reason), room: memberships[0].room, actor: session), of: session,
                              skipActor: !session.seesOwnQuit || !draining)
        }
        for subscription in memberships {
            if draining {
                leave(subscription, event: nil)
            } else {
                if session.current === subscription { session.current = nil }
            }
        }
    }

    /// Publishes a per-user event (a rename, a departure) in every room `session` is a member of. A session that
    /// shares several of those rooms reads it in the first and skips it in the others, so it is told once.
    private func publishInAllRooms(_ event: RoomEvent, of session: Session, skipActor: Bool) {
        let memberships = session.subscriptions.filter { $0.endOffset == nil }
        if memberships.count == 1 {
            var one = event
            one.room = memberships[0].room
            publish(one, skipping: skipActor ? memberships[0] : nil)
            return
        }
        visitStamp &+= 1
        let stamp = visitStamp
        for (position, subscription) in memberships.enumerated() {
            var each = event
            let room = subscription.room
            each.room = room
            publish(each, skipping: skipActor || position > 0 ? subscription : nil)
            for index in room.rings.indices {
                guard let slot = room.rings[index], let range = lastRanges[index] else { continue }
                for reader in slot.readers where reader !== subscription && reader.endOffset == nil {
                    if reader.session.visitMark == stamp {
                        reader.skip(range)
                    } else {
                        reader.session.visitMark = stamp
                    }
                }
            }
        }
    }

    private func detach(_ subscription: Subscription) {
        let room = subscription.room
        if subscription.endOffset == nil {
            removeFromRoom(subscription, in: \.members)
        } else {
            removeFromRoom(subscription, in: \.draining)
        }
        removeReader(subscription)
        retireIfUnused(room)
    }

    private func removeFromRoom(_ subscription: Subscription, in list: ReferenceWritableKeyPath<Room, [Subscription]>) {
        let room = subscription.room
        let index = subscription.indexInRoom
        precondition(room[keyPath: list][index] === subscription, "room membership index out of sync")
        if list == \Room.members { membershipChanged(room) }
        let last = room[keyPath: list].removeLast()
        if last !== subscription {
            room[keyPath: list][index] = last
            last.indexInRoom = index
        }
    }

    private func removeReader(_ subscription: Subscription) {
        let slot = subscription.slot
        let index = subscription.indexInSlot
        precondition(slot.readers[index] === subscription, "ring reader index out of sync")
        let last = slot.readers.removeLast()
        if last !== subscription {
            slot.readers[index] = last
            last.indexInSlot = index
        }
    }

    private func retireIfUnused(_ room: Room) {
        if room !== lobby && room.isUnused && rooms[room.key] === room {
            rooms[room.key] = nil
            if let index = sortedRooms.firstIndex(where: { $0 === room }) { sortedRooms.remove(at: index) }
            roomsVersion &+= 1
            for key in Names.lookAlikeKeys(room.name) where roomsByLookAlike[key] === room { roomsByLookAlike[key] = nil }
        }
    }

    private func insertSorted(_ room: Room) {
        var low = 0
        var high = sortedRooms.count
        while low < high {
            let mid = (low + high) / 2
            if sortedRooms[mid].name < room.name { low = mid + 1 } else { high = mid }
        }
        sortedRooms.insert(room, at: low)
        roomsVersion &+= 1
    }

    /// A member came or went: cached listings are stale.
    private func membershipChanged(_ room: Room) {
        roomsVersion &+= 1
        room.version &+= 1
    }

    /// Gives back ring memory grown for readers that have caught up (see `RoomRing.shrinkIfCaughtUp`); the
    /// engine calls it every tick. Only grown rings are looked at beyond a size check.
    public func shrinkCaughtUpRings() {
        for room in sortedRooms {
            for case let slot? in room.rings where slot.ring.capacity > slot.ring.initialCapacity { slot.shrinkIfCaughtUp() }
        }
    }

    /// Removes the session's name and its look-alike keys (recomputed from the name they were made from).
    private func forgetName(_ session: Session) {
        if let key = session.nameKey, sessionsByName[key] === session {
            sessionsByName[key] = nil
        }
        if let name = session.name {
            for key in Names.lookAlikeKeys(name) where sessionsByLookAlike[key] === session { sessionsByLookAlike[key] = nil }
        }
    }

    /// The named session, other than `session`, that holds one of `keys`, if any.
    private func lookAlikeHolder(_ keys: [String], other session: Session) -> Session? {
        for key in keys { if let holder = sessionsByLookAlike[key], holder !== session { return holder } }
        return nil
    }

    // MARK: Publishing

    /// Renders `event` once into every ring of its room and appends it there; `sender`, if given, is not sent
    /// it (its own message, unless it echoes). Each ring's range for the record is left in `lastRanges`.
    private func publish(_ event: RoomEvent, skipping sender: Subscription?) {
        var event = event
        let room = event.room
        event.time = wallClock
        event.sequence = room.messageCount
        event.id = takeMessageID()
        lastRanges.removeAll(keepingCapacity: true)
        var senderRange: Range<UInt64>?
        var senderWasAtHead = false
        if let sender { senderWasAtHead = sender.cursor == sender.ring.head && sender.skips.isEmpty }
        for index in room.rings.indices {
            guard let slot = room.rings[index] else {
                lastRanges.append(nil)
                continue
            }
            record.removeAll(keepingCapacity: true)
            formats[index].render(event, into: &record)
            let range = record.withUnsafeBytes { slot.append($0) }
            bytesSinceFlush += range.count
            lastRanges.append(range)
            if sender?.slot === slot { senderRange = range }
        }
        room.messageCount += 1
        linesPublished += 1
        markDirty(room)
        if let sender, let range = senderRange {
            if senderWasAtHead {
                // The sender had read everything: step over its own record without recording anything.
                sender.cursor = range.upperBound
                sender.cursorSeq = sender.ring.headSeq
            } else {
                sender.skips.append(range)
            }
        }
    }

    /// Renders a room event in one format into a session's private output (a record only it sees).
    private func render(_ event: RoomEvent, format: Int, privatelyTo session: Session) {
        var event = event
        event.id = takeMessageID()
        record.removeAll(keepingCapacity: true)
        formats[format].render(event, into: &record)
        record.withUnsafeBytes { enqueue($0, to: session) }
    }

    // MARK: Output

    private func markDirty(_ room: Room) {
        if !room.isDirty {
            room.isDirty = true
            dirtyRooms.append(room)
        }
    }

    /// Asks for `session` to be flushed at the end of this turn (if it is not write-blocked).
    public func requestFlush(_ session: Session) {
        if !session.isQueuedForFlush {
            session.isQueuedForFlush = true
            flushQueue.append(session)
        }
    }

    /// End of turn: calls `flush` once for every session with something new to send, until none is left
    /// (flushing can close sessions, which can publish departures, which make more sessions due).
    public func forEachSessionToFlush(_ flush: (Session) -> Void) {
        bytesSinceFlush = 0
        while !dirtyRooms.isEmpty || !flushQueue.isEmpty {
            while let room = dirtyRooms.popLast() {
                room.isDirty = false
                for subscription in room.members where !subscription.session.isWriteBlocked { requestFlush(subscription.session) }
                for subscription in room.draining where !subscription.session.isWriteBlocked { requestFlush(subscription.session) }
            }
            var index = 0
            while index < flushQueue.count {
                let session = flushQueue[index]
                if !session.isWriteBlocked && !session.isFinished { flush(session) }
                // Cleared after the flush: requests made during it (a missed-messages notice) are served by it.
                session.isQueuedForFlush = false
                index += 1
            }
            flushQueue.removeAll(keepingCapacity: true)
        }
    }

    /// Prepares `session` for a write: notes messages it missed if a ring overwrote its cursor. Call before
    /// `forEachPendingSpan`.
    public func prepareFlush(_ session: Session) {
        for subscription in session.subscriptions {
            let missed = subscription.recoverFromOverrun()
            if missed > 0 {
                session.missedLines += missed
                onEvent?(.missed(session, room: subscription.room.name, lines: missed))
                // Its own buffer: this can run inside `sendPrivate` (through `flushNow`), which holds `privateBytes`.
                var notice: [UInt8] = []
                session.front.renderMissed(missed, in: subscription.room, for: session, into: &notice)
                notice.withUnsafeBytes { enqueue($0, to: session) }
            }
        }
        finishDrainedSubscriptions(session)
        // A closing session with no final line and nothing left to send gets no write, so `didWrite` would never
        // mark it finished (e.g. a client that half-closes before naming itself): mark it here.
        if session.phase == .closing, session.finalLine == nil, !session.hasPendingOutput {
            session.isFinished = true
        }
    }

    /// Calls `span` with each byte range due to `session`, in wire order: private output, ring bytes from
    /// each cursor, then the final line. Stops early when `span` returns false (the iovec array is full).
    @inline(__always)
    public func forEachPendingSpan(of session: Session, _ span: (UnsafeRawBufferPointer) -> Bool) {
        if !session.output.isEmpty {
            if !span(session.output.readable) { return }
        }
        for subscription in session.subscriptions {
            if !subscription.forEachDueSpan(span) { return }
        }
        if let finalLine = session.finalLine {
            finalLine.withUnsafeBytes { _ = span($0) }
        }
    }

    /// Records that the first `count` bytes of the spans just offered were written.
    public func didWrite(_ count: Int, to session: Session) {
        var budget = count
        let fromOutput = min(budget, session.output.count)
        session.output.consume(fromOutput)
        budget -= fromOutput
        if budget > 0 || session.output.isEmpty {
            for subscription in session.subscriptions {
                budget = subscription.advance(by: budget, carry: &session.output)
                if subscription.hasPending || !session.output.isEmpty { break }
            }
        }
        finishDrainedSubscriptions(session)
        if session.phase == .closing, session.output.isEmpty, !session.subscriptions.contains(where: { $0.hasPending }) {
            if let finalLine = session.finalLine {
                if budget >= finalLine.count {
                    session.finalLine = nil
                    session.isFinished = true
                } else if budget > 0 {
                    session.finalLine = Array(finalLine[budget...])
                }
            } else {
                session.isFinished = true
            }
        }
    }

    private func finishDrainedSubscriptions(_ session: Session) {
        guard session.subscriptions.contains(where: { $0.endOffset != nil && !$0.hasPending }) else { return }
        for subscription in session.subscriptions where subscription.endOffset != nil && !subscription.hasPending {
            removeFromRoom(subscription, in: \.draining)
            removeReader(subscription)
            retireIfUnused(subscription.room)
        }
        session.subscriptions.removeAll { $0.endOffset != nil && !$0.hasPending }
    }

    /// Queues bytes (whole lines) for one session: a reply or an error its front rendered.
    public func enqueue(_ bytes: [UInt8], to session: Session) {
        bytes.withUnsafeBytes { enqueue($0, to: session) }
    }

    /// Whether a private message of `count` bytes from someone else may join `target`'s queue: only within the
    /// share others may fill, or into an empty queue (so a line longer than the share still gets through to a
    /// client that reads).
    private func acceptsPrivate(_ count: Int, into target: Session) -> Bool {
        target.output.isEmpty || target.output.count + count <= limits.privateShareBytes
    }

    /// Whether the engine should stop processing `session`'s input: its own replies pile up (it sends faster
    /// than it reads). The engine resumes when `mayResumeInput` says so.
    public func wantsInputPaused(_ session: Session) -> Bool {
        session.output.count >= limits.inputPauseBytes
    }

    public func mayResumeInput(_ session: Session) -> Bool {
        session.output.count <= limits.inputResumeBytes
    }

    public func enqueue(_ bytes: UnsafeRawBufferPointer, to session: Session) {
        guard !session.isFinished else { return }
        if session.output.count + bytes.count > limits.clientQueueBytes {
            // The hard cap, for what cannot be paused. With an engine that pauses input at `inputPauseBytes`
            // and private messages bounded by `privateShareBytes`, a client that reads never gets here; one that
            // stops reading is dropped by the write timeout first. Still: close with a reason rather than
            // dropping lines silently.
            terminate(session, reason: "output queue over \(limits.clientQueueBytes) bytes (client not reading)")
            return
        }
        session.output.append(bytes)
        requestFlush(session)
    }

    private func terminate(_ session: Session, reason: String) {
        guard !session.isFinished else { return }
        remove(session, reason: reason)
        var line: [UInt8] = []
        session.front.renderDropped(reason: reason, for: session, into: &line)
        session.finalLine = line
        terminated.append(session)
        onEvent?(.terminated(session, reason: reason))
    }
}

extension Subscription {
    /// Adds a record this subscription must not be sent (kept ascending; records are published in order).
    func skip(_ range: Range<UInt64>) {
        guard range.lowerBound >= cursor else { return }
        skips.append(range)
    }
}

extension Double {
    /// `20` rather than `20.0`, `0.5` as is: for rates and seconds in protocol and log text.
    public var compactDescription: String {
        // `Int(self)` traps outside ±2^63 (and for inf/NaN): only whole numbers well inside it print as integers.
        self == rounded() && abs(self) < 1e15 ? String(Int(self)) : String(self)
    }
}
