// ChatHub: the chat's state machine. It turns input lines into ring appends and private replies,
// and tells the engine what to write; it never touches a socket.

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

public final class ChatHub {
    public var limits: ChatLimits {
        didSet { ringMemory.limit = limits.ringsMaxBytes }
    }
    /// The memory all rings share; its limit follows `limits.ringsMaxBytes`.
    public let ringMemory: RingMemory
    public static let lobbyName = "lobby"
    public private(set) var lobby: Room
    private var rooms: [String: Room] = [:]
    private var sessionsByName: [String: Session] = [:]
    /// Every room, sorted by name as `/rooms` lists them: kept sorted on insert and removal, so a `/rooms`
    /// never sorts (with 1,000 CJK-named rooms a sort cost 1.5 ms per request).
    private var sortedRooms: [Room] = []
    /// The `/rooms` reply, rendered once per change of the room list or of any room's membership.
    private var roomsReply: [UInt8]?
    /// Named sessions whose `Online:` is not yet public (see `ChatLimits.presenceDelay`), oldest first.
    private var pendingPresence: [Session] = []
    /// Every look-alike key (`Names.lookAlikeKeys`) of every named session → that session. A name with a
    /// key held by another session is taken, so no two online names look alike and each key has one holder.
    private var sessionsByLookAlike: [String: Session] = [:]
    /// The same for rooms: a `/join` of a name that looks like an existing room's joins that room.
    private var roomsByLookAlike: [String: Room] = [:]
    private var dirtyRooms: [Room] = []
    private var flushQueue: [Session] = []
    /// Sessions the engine must close at once (see `HubEvent.terminated`), drained by `takeTerminated`.
    private var terminated: [Session] = []
    /// Called for loggable events. Kept as a closure so ChatCore needs no logging package.
    public var onEvent: ((HubEvent) -> Void)?
    /// Set by the engine: writes a session's pending output to its socket now, as far as the socket takes it.
    /// The hub calls it before refusing a private message to a full queue (see `acceptsPrivate`).
    public var flushNow: ((Session) -> Void)?
    /// Private messages refused with `ERR target-busy` (for status figures and tests).
    public private(set) var privateRefused: UInt64 = 0
    /// Lines appended to rings (messages and room events), for status figures.
    public private(set) var linesPublished: UInt64 = 0
    /// Ring bytes appended since the last end-of-turn flush. The engine flushes early when this nears a
    /// ring's size, so that readers who keep up are never overrun by a single busy turn.
    public private(set) var bytesSinceFlush = 0

    public init(limits: ChatLimits = ChatLimits()) {
        self.limits = limits
        self.ringMemory = RingMemory(limit: limits.ringsMaxBytes)
        let lobby = Room(name: Self.lobbyName, key: Names.key(Self.lobbyName), limits: limits, memory: ringMemory)
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
        }
    }

    public var roomCount: Int { rooms.count }
    public var namedCount: Int { sessionsByName.count }

    public func session(named name: String) -> Session? { sessionsByName[Names.key(name)] }

    // MARK: Lifecycle

    /// A new connection: greet it and ask for a name.
    public func open(_ session: Session) {
        send("SYS Hello: chatd protocol 1. Send your name: 1-32 letters, digits, _ - .", to: session)
    }

    /// Starts an orderly close: leaves rooms (announcing `Offline:` unless `announce` is false), then sends what
    /// is pending, then `finalLine`, after which `isFinished` is set. Idempotent. `reason` and `finalLine` are
    /// the server's own text: user text goes in only as `EmbeddedText.quoted` (see `quit`).
    public func beginClose(_ session: Session, reason: String, finalLine: String?, announce: Bool = true) {
        guard session.phase != .closing else { return }
        let wasNamed = session.phase == .named
        session.phase = .closing
        session.closeReason = reason
        session.finalLine = finalLine.map { Array(($0 + "\n").utf8) }
        let wasAnnounced = !withdrawPendingPresence(session)
        if let current = session.current {
            leave(current, announcement: wasNamed && announce && wasAnnounced ? "Offline: \(session.name ?? "?") (\(reason))" : nil)
        }
        forgetName(session)
        requestFlush(session)
    }

    /// The connection is gone (reset, write timeout, engine shutdown): drop every trace of the session now.
    public func remove(_ session: Session, reason: String) {
        let wasAnnounced = !withdrawPendingPresence(session)
        if session.phase == .named, let current = session.current {
            leave(current, announcement: wasAnnounced ? "Offline: \(session.name ?? "?") (\(reason))" : nil)
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

    /// Sessions that must be closed at once; the engine calls this after feeding input and after flushing.
    public func takeTerminated(_ body: (Session) -> Void) {
        while let session = terminated.popLast() { body(session) }
    }

    // MARK: Input

    /// Handles one complete input line (without its terminator).
    public func receive(_ line: UnsafeRawBufferPointer, from session: Session, now: UInt64) {
        switch session.phase {
        case .closing: return
        case .awaitingName, .named: break
        }
        if line.isEmpty { return }
        if let problem = TextCheck.problem(in: line) {
            switch problem {
            case .invalidUTF8:
                sendError("invalid-utf8", "line is not valid UTF-8; nothing was sent", to: session)
            case .controlCharacter:
                sendError("control-character", "line contains control characters (ESC, NUL, ...); nothing was sent", to: session)
            case .lineSeparator:
                sendError("line-separator", "line contains U+2028 or U+2029 (line or paragraph separator); nothing was sent", to: session)
            case .unbalancedBidi:
                sendError("unbalanced-bidi", "line leaves a bidi override or isolate open, or closes one never opened; close each with U+202C (PDF) or U+2069 (PDI); nothing was sent", to: session)
            }
            return
        }
        if session.phase == .named && !session.bucket.take(now: now) {
            onEvent?(.rateLimited(session))
            sendError("rate-limited", "more than \(limits.messageRate.compactDescription) lines per second; this line was not sent", to: session)
            return
        }
        let parsed = CommandParser.parse(line)
        if session.phase == .awaitingName {
            switch parsed {
            case .empty: return
            case .command(.quit(let reason)):
                quit(session, reason: reason)
            case .command(.help): sendHelp(to: session)
            case .command:
                sendError("name-required", "send your name first", to: session)
            case .message:
                claimName(String(decoding: line, as: UTF8.self), for: session, now: now)
            }
            return
        }
        switch parsed {
        case .empty: return
        case .message(let range): post(UnsafeRawBufferPointer(rebasing: line[range]), from: session)
        case .command(let command): execute(command, line: line, from: session)
        }
    }

    /// An input line was longer than the limit (its rest is being discarded by the framer).
    public func lineTooLong(from session: Session) {
        guard session.phase != .closing else { return }
        sendError("line-too-long", "line longer than \(limits.maxLineBytes) bytes; it was discarded", to: session)
    }

    private func claimName(_ name: String, for session: Session, now: UInt64) {
        // A refused name costs a token of the rate limit, like a line: checking a name (NFD, three
        // skeletons) takes tens of microseconds, and unmetered retries would let an unnamed client burn
        // CPU at will. With no token left the name is not even checked. The accepted name is free, so a
        // client that gets in at once starts with its whole burst. (A copy of the bucket asks whether a
        // token is there without taking it.)
        var probe = session.bucket
        if !probe.take(now: now) {
            onEvent?(.rateLimited(session))
            sendError("rate-limited", "more than \(limits.messageRate.compactDescription) refused names per second; this one was not considered", to: session)
            return
        }
        if let problem = Names.validate(name) {
            _ = session.bucket.take(now: now)
            sendError("name-invalid", Names.explain(problem) + "; send another name", to: session)
            return
        }
        let key = Names.key(name)
        if sessionsByName[key] != nil {
            _ = session.bucket.take(now: now)
            sendError("name-taken", "\(name) is already online; send another name", to: session)
            return
        }
        let lookAlikeKeys = Names.lookAlikeKeys(name)
        if let holder = lookAlikeHolder(lookAlikeKeys, other: session) {
            _ = session.bucket.take(now: now)
            sendError("name-taken", "\(name) looks like \(holder.name ?? "?"), who is online; send another name", to: session)
            return
        }
        sessionsByName[key] = session
        for lookAlike in lookAlikeKeys { sessionsByLookAlike[lookAlike] = session }
        session.name = name
        session.nameKey = key
        session.phase = .named
        onEvent?(.named(session))
        send("SYS Welcome: \(name). You are in #\(lobby.name); online (\(sessionsByName.count)): \(listOnline()). Type /help for commands.", to: session)
        if limits.presenceDelay == 0 {
            enter(lobby, session: session, announcement: "Online: \(name)")
            return
        }
        // Presence is made public later (see `ChatLimits.presenceDelay`): the newcomer sees its own `Online:`
        // now, with the same bytes and in the same place as it would from the ring.
        enter(lobby, session: session, announcement: nil)
        send("SYS #\(lobby.name) Online: \(name)", to: session)
        session.presencePending = true
        session.namedAt = now
        pendingPresence.append(session)
    }

    // MARK: Presence

    /// Makes pending `Online:` lines public once `presenceDelay` has passed; the engine calls it every tick.
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
    /// sees a line from someone who has not arrived. The session itself already saw the line, so it skips it.
    private func announcePresence(_ session: Session) {
        guard session.presencePending else { return }
        session.presencePending = false
        guard let subscription = session.current, let name = session.name else { return }
        announce("Online: \(name)", in: subscription.room, from: subscription)
    }

    /// Forgets a pending announcement; returns whether there was one (then the departure is not announced
    /// either: the room never heard of the session). Entries left in `pendingPresence` are skipped there.
    private func withdrawPendingPresence(_ session: Session) -> Bool {
        guard session.presencePending else { return false }
        session.presencePending = false
        return true
    }

    private func post(_ text: UnsafeRawBufferPointer, from session: Session) {
        announcePresence(session)
        guard let subscription = session.current else { return }
        subscription.messagePrefix.withUnsafeBytes { prefix in
            publish(prefix, text, in: subscription.room, from: subscription)
        }
    }

    /// Appends a line to a room's ring on behalf of `sender`, who is not sent its own line.
    private func publish(_ prefix: UnsafeRawBufferPointer, _ body: UnsafeRawBufferPointer, in room: Room, from sender: Subscription?) {
        let wasHead = room.ring.head
        let range = room.append(prefix, body)
        linesPublished += 1
        bytesSinceFlush += range.count
        markDirty(room)
        guard let sender else { return }
        if sender.cursor == wasHead && sender.skips.isEmpty {
            // The sender had read everything: step over its own line without recording anything.
            sender.cursor = range.upperBound
            sender.cursorSeq = room.ring.headSeq
        } else {
            sender.skips.append(range)
        }
    }

    private func announce(_ event: String, in room: Room, from sender: Subscription? = nil) {
        var line = "SYS #\(room.name) \(event)"
        line.withUTF8 { utf8 in
            publish(UnsafeRawBufferPointer(start: nil, count: 0), UnsafeRawBufferPointer(utf8), in: room, from: sender)
        }
    }

    private func execute(_ command: Command, line: UnsafeRawBufferPointer, from session: Session) {
        guard let name = session.name else { return }
        switch command {
        case .join(let raw):
            let (roomName, problem) = Names.roomName(raw)
            if let problem {
                sendError("room-invalid", "room names follow name rules: " + Names.explain(problem), to: session)
                return
            }
            let key = Names.key(roomName)
            let lookAlikeKeys = Names.lookAlikeKeys(roomName)
            // A room that looks like an existing one *is* that one (as `#DEV` is `#dev`): nobody can open a
            // look-alike `#Iobby` beside `#lobby`, and the `SYS Room:` reply shows the spelling joined.
            let existing = rooms[key] ?? lookAlikeKeys.lazy.compactMap { self.roomsByLookAlike[$0] }.first
            if let existing, session.current?.room === existing {
                sendError("already-in-room", "you are already in #\(existing.name)", to: session)
                return
            }
            let room: Room
            if let existing {
                room = existing
            } else {
                guard rooms.count < limits.maxRooms else {
                    sendError("too-many-rooms", "the server holds its maximum of \(limits.maxRooms) rooms; join an existing one (/rooms)", to: session)
                    return
                }
                room = Room(name: roomName, key: key, limits: limits, memory: ringMemory)
                rooms[key] = room
                insertSorted(room)
                for lookAlike in lookAlikeKeys { roomsByLookAlike[lookAlike] = room }
            }
            // A newcomer whose arrival was never announced leaves without a `Left:`; its `Joined:` is public.
            let wasAnnounced = !withdrawPendingPresence(session)
            if let current = session.current {
                leave(current, announcement: wasAnnounced ? "Left: \(name) (to #\(room.name))" : nil)
            }
            enter(room, session: session, announcement: "Joined: \(name)")
            send("SYS Room: #\(room.name); members (\(room.memberCount)): \(listMembers(room))", to: session)
            onEvent?(.joined(session, room: room.name))
        case .rooms:
            if roomsReply == nil {
                let shown = sortedRooms.prefix(limits.maxListedNames).map { "#\($0.name)(\($0.memberCount))" }
                roomsReply = Array("SYS Rooms (\(sortedRooms.count)): \(list(shown, total: sortedRooms.count))\n".utf8)
            }
            roomsReply!.withUnsafeBytes { enqueue($0, to: session) }
        case .who:
            guard let room = session.current?.room else { return }
            if room.whoReply == nil {
                room.whoReply = Array("SYS Who #\(room.name) (\(room.memberCount)): \(listMembers(room))\n".utf8)
            }
            room.whoReply!.withUnsafeBytes { enqueue($0, to: session) }
        case .privateMessage(let to, let textRange):
            guard let target = sessionsByName[Names.key(to)], target.phase == .named else {
                // `to` is whatever the sender typed (not a validated name): quoted, like all user text in server lines.
                sendError("no-such-user", "nobody named \(EmbeddedText.quoted(to, maxBytes: EmbeddedText.maxEchoBytes)) is online", to: session)
                return
            }
            var privateLine = Array("PRIV \(name): ".utf8)
            privateLine.append(contentsOf: UnsafeRawBufferPointer(rebasing: line[textRange]))
            privateLine.append(10)
            if !acceptsPrivate(privateLine.count, into: target) {
                // Its queue is over the share others may fill: write it to its socket first (a target that
                // reads drains into its socket buffer), and refuse only if it still does not fit.
                flushNow?(target)
                guard target.phase == .named else {  // the write found the connection gone
                    sendError("no-such-user", "nobody named \(to) is online", to: session)
                    return
                }
                if !acceptsPrivate(privateLine.count, into: target) {
                    privateRefused += 1
                    sendError("target-busy", "\(target.name ?? to) is not reading fast enough; your message was not delivered", to: session)
                    return
                }
            }
            privateLine.withUnsafeBytes { enqueue($0, to: target) }
        case .nick(let newName):
            if let problem = Names.validate(newName) {
                sendError("name-invalid", Names.explain(problem), to: session)
                return
            }
            let key = Names.key(newName)
            if let holder = sessionsByName[key], holder !== session {
                sendError("name-taken", "\(newName) is already online", to: session)
                return
            }
            // Looking like one's own name is fine (`/nick aIice` for alice); like someone else's is not.
            let lookAlikeKeys = Names.lookAlikeKeys(newName)
            if let holder = lookAlikeHolder(lookAlikeKeys, other: session) {
                sendError("name-taken", "\(newName) looks like \(holder.name ?? "?"), who is online", to: session)
                return
            }
            forgetName(session)
            sessionsByName[key] = session
            for lookAlike in lookAlikeKeys { sessionsByLookAlike[lookAlike] = session }
            session.name = newName
            session.nameKey = key
            for subscription in session.subscriptions where subscription.endOffset == nil {
                subscription.renderPrefix(name: newName)
                subscription.room.whoReply = nil
            }
            onEvent?(.renamed(session, from: name))
            // Nobody heard of a newcomer still unannounced: its `Online:` will carry the new name.
            if let room = session.current?.room, !session.presencePending { announce("Nick: \(name) -> \(newName)", in: room) }
        case .me(let textRange):
            announcePresence(session)
            guard let subscription = session.current else { return }
            let prefix = Array("ACT #\(subscription.room.name) \(name) ".utf8)
            prefix.withUnsafeBytes { prefix in
                publish(prefix, UnsafeRawBufferPointer(rebasing: line[textRange]), in: subscription.room, from: subscription)
            }
        case .quit(let reason):
            quit(session, reason: reason)
        case .help:
            sendHelp(to: session)
        case .usage(let usage):
            sendError("bad-arguments", "usage: \(usage)", to: session)
        case .unknown(let word):
            sendError("unknown-command", "\(EmbeddedText.quoted("/" + word, maxBytes: EmbeddedText.maxEchoBytes)) is not a command; /help lists them", to: session)
        }
    }

    /// `/quit [REASON]`. The reason is user text, so it reaches the room (`Offline:`) and the quitter (`Bye:`)
    /// only quoted and cleaned (`EmbeddedText`); a reason with nothing visible in it counts as none.
    private func quit(_ session: Session, reason raw: String) {
        let reason = EmbeddedText.clean(raw)
        if reason.isEmpty {
            beginClose(session, reason: "quit", finalLine: "SYS Bye: goodbye")
        } else {
            let quoted = EmbeddedText.quote(reason)
            beginClose(session, reason: "quit: \(quoted)", finalLine: "SYS Bye: \(quoted)")
        }
    }

    private func sendHelp(to session: Session) {
        let lines = [
            "SYS Help: lines not starting with / go to your room; start a message with // to send a leading /",
            "SYS Help: /join ROOM - leave this room for ROOM (created if new)",
            "SYS Help: /rooms - list rooms; /who - list this room's members",
            "SYS Help: /msg NAME TEXT - private message; /me TEXT - action",
            "SYS Help: /nick NEWNAME - rename; /quit [REASON] - leave",
        ]
        for line in lines { send(line, to: session) }
    }

    // MARK: Rooms

    private func enter(_ room: Room, session: Session, announcement: String?) {
        let subscription = Subscription(session: session, room: room)
        subscription.renderPrefix(name: session.name ?? "?")
        subscription.indexInRoom = room.members.count
        room.members.append(subscription)
        membershipChanged(room)
        session.subscriptions.append(subscription)
        session.current = subscription
        // Subscribed before announcing, so the newcomer sees its own `Online:`/`Joined:` line too.
        if let announcement { announce(announcement, in: room) }
    }

    /// Moves a subscription from member to draining: it still gets what was posted while it was a member.
    private func leave(_ subscription: Subscription, announcement: String?) {
        let room = subscription.room
        let session = subscription.session
        if session.current === subscription { session.current = nil }
        removeFromRoom(subscription, in: \.members)
        if let announcement { announce(announcement, in: room) }
        subscription.endOffset = room.ring.head
        subscription.endSeq = room.ring.headSeq
        if subscription.hasPending {
            subscription.indexInRoom = room.draining.count
            room.draining.append(subscription)
        } else {
            session.subscriptions.removeAll { $0 === subscription }
            retireIfUnused(room)
        }
    }

    private func detach(_ subscription: Subscription) {
        let room = subscription.room
        if subscription.endOffset == nil {
            removeFromRoom(subscription, in: \.members)
        } else {
            removeFromRoom(subscription, in: \.draining)
        }
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

    private func retireIfUnused(_ room: Room) {
        if room !== lobby && room.isUnused && rooms[room.key] === room {
            rooms[room.key] = nil
            if let index = sortedRooms.firstIndex(where: { $0 === room }) { sortedRooms.remove(at: index) }
            roomsReply = nil
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
        roomsReply = nil
    }

    /// A member came or went: the cached `/rooms` and `/who` replies are stale.
    private func membershipChanged(_ room: Room) {
        roomsReply = nil
        room.whoReply = nil
    }

    /// Gives back ring memory grown for readers that have caught up (see `Room.shrinkIfCaughtUp`); the engine
    /// calls it every tick. Only grown rings are looked at beyond a size check.
    public func shrinkCaughtUpRings() {
        for room in sortedRooms where room.ring.capacity > room.ring.initialCapacity { room.shrinkIfCaughtUp() }
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
    /// (flushing can close sessions, which can post `Offline:` lines, which make more sessions due).
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
                // Cleared after the flush: requests made during it (a missed-lines notice) are served by it.
                session.isQueuedForFlush = false
                index += 1
            }
            flushQueue.removeAll(keepingCapacity: true)
        }
    }

    /// Prepares `session` for a write: notes lines it missed if a ring overwrote its cursor. Call before
    /// `forEachPendingSpan`.
    public func prepareFlush(_ session: Session) {
        for subscription in session.subscriptions {
            let missed = subscription.recoverFromOverrun()
            if missed > 0 {
                session.missedLines += missed
                onEvent?(.missed(session, room: subscription.room.name, lines: missed))
                send("SYS Missed: \(missed) lines in #\(subscription.room.name); you were reading too slowly", to: session)
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
            retireIfUnused(subscription.room)
        }
        session.subscriptions.removeAll { $0.endOffset != nil && !$0.hasPending }
    }

    /// Queues a private line, as text (replies and errors are not on the hot path).
    public func send(_ line: String, to session: Session) {
        var line = line + "\n"
        line.withUTF8 { enqueue(UnsafeRawBufferPointer($0), to: session) }
    }

    public func sendError(_ code: String, _ explanation: String, to session: Session) {
        send("ERR \(code) \(explanation)", to: session)
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

    private func enqueue(_ bytes: UnsafeRawBufferPointer, to session: Session) {
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
        session.finalLine = Array("ERR queue-overflow \(reason)\n".utf8)
        terminated.append(session)
        onEvent?(.terminated(session, reason: reason))
    }

    // MARK: Helpers

    /// Up to `maxListedNames` online names, sorted. Stops early: a join must not cost O(users).
    private func listOnline() -> String {
        var names: [String] = []
        for session in sessionsByName.values {
            if names.count == limits.maxListedNames { break }
            if let name = session.name { names.append(name) }
        }
        return list(names.sorted(), total: sessionsByName.count)
    }

    private func listMembers(_ room: Room) -> String {
        list(room.members.prefix(limits.maxListedNames).map { $0.session.name ?? "?" }.sorted(), total: room.memberCount)
    }

    private func list(_ names: [String], total: Int) -> String {
        let shown = names.prefix(limits.maxListedNames).joined(separator: " ")
        return total > limits.maxListedNames ? shown + " ... and \(total - limits.maxListedNames) more" : shown
    }
}

extension Double {
    /// `20` rather than `20.0`, `0.5` as is: for rates and seconds in protocol and log text.
    public var compactDescription: String {
        // `Int(self)` traps outside ±2^63 (and for inf/NaN): only whole numbers well inside it print as integers.
        self == rounded() && abs(self) < 1e15 ? String(Int(self)) : String(self)
    }
}
