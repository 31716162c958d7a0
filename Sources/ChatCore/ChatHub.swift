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
    public var limits: ChatLimits
    public static let lobbyName = "lobby"
    public private(set) var lobby: Room
    private var rooms: [String: Room] = [:]
    private var sessionsByName: [String: Session] = [:]
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
        let lobby = Room(name: Self.lobbyName, key: Names.key(Self.lobbyName), limits: limits)
        self.lobby = lobby
        rooms[lobby.key] = lobby
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
    /// is pending, then `finalLine`, after which `isFinished` is set. Idempotent.
    public func beginClose(_ session: Session, reason: String, finalLine: String?, announce: Bool = true) {
        guard session.phase != .closing else { return }
        let wasNamed = session.phase == .named
        session.phase = .closing
        session.closeReason = reason
        session.finalLine = finalLine.map { Array(($0 + "\n").utf8) }
        if let current = session.current {
            leave(current, announcement: wasNamed && announce ? "Offline: \(session.name ?? "?") (\(reason))" : nil)
        }
        forgetName(session)
        requestFlush(session)
    }

    /// The connection is gone (reset, write timeout, engine shutdown): drop every trace of the session now.
    public func remove(_ session: Session, reason: String) {
        if session.phase == .named, let current = session.current {
            leave(current, announcement: "Offline: \(session.name ?? "?") (\(reason))")
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
                beginClose(session, reason: reason.isEmpty ? "quit" : "quit: \(reason)", finalLine: "SYS Bye: \(reason.isEmpty ? "goodbye" : reason)")
            case .command(.help): sendHelp(to: session)
            case .command:
                sendError("name-required", "send your name first", to: session)
            case .message:
                claimName(String(decoding: line, as: UTF8.self), for: session)
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

    private func claimName(_ name: String, for session: Session) {
        if let problem = Names.validate(name) {
            sendError("name-invalid", Names.explain(problem) + "; send another name", to: session)
            return
        }
        let key = Names.key(name)
        if sessionsByName[key] != nil {
            sendError("name-taken", "\(name) is already online; send another name", to: session)
            return
        }
        sessionsByName[key] = session
        session.name = name
        session.nameKey = key
        session.phase = .named
        onEvent?(.named(session))
        send("SYS Welcome: \(name). You are in #\(lobby.name); online (\(sessionsByName.count)): \(listOnline()). Type /help for commands.", to: session)
        enter(lobby, session: session, announcement: "Online: \(name)")
    }

    private func post(_ text: UnsafeRawBufferPointer, from session: Session) {
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

    private func announce(_ event: String, in room: Room) {
        var line = "SYS #\(room.name) \(event)"
        line.withUTF8 { utf8 in
            publish(UnsafeRawBufferPointer(start: nil, count: 0), UnsafeRawBufferPointer(utf8), in: room, from: nil)
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
            if session.current?.room.key == key {
                sendError("already-in-room", "you are already in #\(session.current!.room.name)", to: session)
                return
            }
            let room: Room
            if let existing = rooms[key] {
                room = existing
            } else {
                guard rooms.count < limits.maxRooms else {
                    sendError("too-many-rooms", "the server holds its maximum of \(limits.maxRooms) rooms; join an existing one (/rooms)", to: session)
                    return
                }
                room = Room(name: roomName, key: key, limits: limits)
                rooms[key] = room
            }
            if let current = session.current {
                leave(current, announcement: "Left: \(name) (to #\(room.name))")
            }
            enter(room, session: session, announcement: "Joined: \(name)")
            send("SYS Room: #\(room.name); members (\(room.memberCount)): \(listMembers(room))", to: session)
            onEvent?(.joined(session, room: room.name))
        case .rooms:
            let sorted = rooms.values.sorted { $0.name < $1.name }
            send("SYS Rooms (\(sorted.count)): " + list(sorted.map { "#\($0.name)(\($0.memberCount))" }, total: sorted.count), to: session)
        case .who:
            guard let room = session.current?.room else { return }
            send("SYS Who #\(room.name) (\(room.memberCount)): " + listMembers(room), to: session)
        case .privateMessage(let to, let textRange):
            guard let target = sessionsByName[Names.key(to)], target.phase == .named else {
                sendError("no-such-user", "nobody named \(to) is online", to: session)
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
            if let oldKey = session.nameKey { sessionsByName[oldKey] = nil }
            sessionsByName[key] = session
            session.name = newName
            session.nameKey = key
            for subscription in session.subscriptions where subscription.endOffset == nil {
                subscription.renderPrefix(name: newName)
            }
            onEvent?(.renamed(session, from: name))
            if let room = session.current?.room { announce("Nick: \(name) -> \(newName)", in: room) }
        case .me(let textRange):
            guard let subscription = session.current else { return }
            let prefix = Array("ACT #\(subscription.room.name) \(name) ".utf8)
            prefix.withUnsafeBytes { prefix in
                publish(prefix, UnsafeRawBufferPointer(rebasing: line[textRange]), in: subscription.room, from: subscription)
            }
        case .quit(let reason):
            beginClose(session, reason: reason.isEmpty ? "quit" : "quit: \(reason)", finalLine: "SYS Bye: \(reason.isEmpty ? "goodbye" : reason)")
        case .help:
            sendHelp(to: session)
        case .usage(let usage):
            sendError("bad-arguments", "usage: \(usage)", to: session)
        case .unknown(let word):
            sendError("unknown-command", "/\(word) is not a command; /help lists them", to: session)
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

    private func enter(_ room: Room, session: Session, announcement: String) {
        let subscription = Subscription(session: session, room: room)
        subscription.renderPrefix(name: session.name ?? "?")
        subscription.indexInRoom = room.members.count
        room.members.append(subscription)
        session.subscriptions.append(subscription)
        session.current = subscription
        // Subscribed before announcing, so the newcomer sees its own `Online:`/`Joined:` line too.
        announce(announcement, in: room)
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
        let last = room[keyPath: list].removeLast()
        if last !== subscription {
            room[keyPath: list][index] = last
            last.indexInRoom = index
        }
    }

    private func retireIfUnused(_ room: Room) {
        if room !== lobby && room.isUnused && rooms[room.key] === room {
            rooms[room.key] = nil
        }
    }

    private func forgetName(_ session: Session) {
        if let key = session.nameKey, sessionsByName[key] === session {
            sessionsByName[key] = nil
        }
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
        self == rounded() ? String(Int(self)) : String(self)
    }
}
