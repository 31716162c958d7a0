// The native front: chatd's own line protocol (docs/PROTOCOL.md). It parses a session's lines into hub
// operations through the command table, and writes every reply, error and room event as a tagged line.

import ChatCore

/// Renders room events as native lines: `MSG #room name: text`, `ACT #room name text`, `SYS #room ...`.
public final class NativeFormat: RoomFormat {
    public init() {}

    public func render(_ event: RoomEvent, into record: inout [UInt8]) {
        let room = event.room
        let actor = event.actor
        switch event.kind {
        case .message, .notice:
            record.append(contentsOf: Self.msgTag)
            record.append(contentsOf: room.nameBytes)
            record.append(UInt8(ascii: " "))
            record.append(contentsOf: actor.nameBytes)
            record.append(UInt8(ascii: ":"))
            record.append(UInt8(ascii: " "))
            NativeText.appendStrippingFormatting(event.text, to: &record)
        case .action:
            record.append(contentsOf: Self.actTag)
            record.append(contentsOf: room.nameBytes)
            record.append(UInt8(ascii: " "))
            record.append(contentsOf: actor.nameBytes)
            record.append(UInt8(ascii: " "))
            NativeText.appendStrippingFormatting(event.text, to: &record)
        case .online:
            system(room, "Online: \(actor.name ?? "?")", into: &record)
            return
        case .joined:
            system(room, "Joined: \(actor.name ?? "?")", into: &record)
            return
        case .left:
            if let other = event.otherRoom {
                system(room, "Left: \(actor.name ?? "?") (to #\(other.name))", into: &record)
            } else if event.text.isEmpty {
                system(room, "Left: \(actor.name ?? "?")", into: &record)
            } else {
                system(room, "Left: \(actor.name ?? "?") (part: \(NativeText.quotedUserText(event.text)))", into: &record)
            }
            return
        case .offline(let reason):
            system(room, "Offline: \(actor.name ?? "?") (\(ChatHub.describe(reason)))", into: &record)
            return
        case .renamed:
            system(room, "Nick: \(event.previousName) -> \(actor.name ?? "?")", into: &record)
            return
        case .topic:
            if event.text.isEmpty {
                system(room, "Topic: cleared by \(actor.name ?? "?")", into: &record)
            } else {
                system(room, "Topic: \(NativeText.quotedUserText(event.text)) (set by \(actor.name ?? "?"))", into: &record)
            }
            return
        case .kicked:
            let reason = event.text.isEmpty ? "" : " (\(NativeText.quotedUserText(event.text)))"
            system(room, "Kicked: \(event.target?.name ?? "?") by \(actor.name ?? "?")\(reason)", into: &record)
            return
        case .modeChanged:
            system(room, "Mode: \(actor.name ?? "?") sets \(String(decoding: event.text, as: UTF8.self))", into: &record)
            return
        }
        record.append(UInt8(ascii: "\n"))
    }

    private static let msgTag = Array("MSG #".utf8)
    private static let actTag = Array("ACT #".utf8)

    /// `SYS #room TEXT` (room events are not the hot path: they may build strings).
    private func system(_ room: Room, _ text: String, into record: inout [UInt8]) {
        record.append(contentsOf: "SYS #".utf8)
        record.append(contentsOf: room.nameBytes)
        record.append(UInt8(ascii: " "))
        record.append(contentsOf: text.utf8)
        record.append(UInt8(ascii: "\n"))
    }
}

/// Text helpers for native renderings of what may come from another front.
public enum NativeText {
    /// Appends `text`, leaving out IRC formatting codes (bold 0x02, colour 0x03 with its digits, hex colour
    /// 0x04 with its digits, monospace 0x11, reverse 0x16, strike 0x1E, italics 0x1D, underline 0x1F, reset
    /// 0x0F). Every other control is refused on input by every front, so no terminal escape reaches anyone.
    @inline(__always)
    public static func appendStrippingFormatting(_ text: UnsafeRawBufferPointer, to record: inout [UInt8]) {
        // The common case (no byte below 0x20) is one copy.
        if !text.contains(where: { $0 < 0x20 }) {
            record.append(contentsOf: text)
            return
        }
        var index = 0
        let n = text.count
        func isDigit(_ i: Int) -> Bool { i < n && text[i] >= UInt8(ascii: "0") && text[i] <= UInt8(ascii: "9") }
        func isHex(_ i: Int) -> Bool {
            guard i < n else { return false }
            let b = text[i] | 0x20
            return isDigit(i) || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "f"))
        }
        while index < n {
            let byte = text[index]
            switch byte {
            case 0x03:
                index += 1
                var digits = 0
                while digits < 2 && isDigit(index) { index += 1; digits += 1 }
                if digits > 0 && index + 1 < n && text[index] == UInt8(ascii: ","), isDigit(index + 1) {
                    index += 1
                    digits = 0
                    while digits < 2 && isDigit(index) { index += 1; digits += 1 }
                }
            case 0x04:
                index += 1
                var hex = 0
                while hex < 6 && isHex(index) { index += 1; hex += 1 }
                if hex == 6 && index + 1 < n && text[index] == UInt8(ascii: ","), isHex(index + 1) {
                    index += 1
                    hex = 0
                    while hex < 6 && isHex(index) { index += 1; hex += 1 }
                }
            case 0x02, 0x0F, 0x11, 0x16, 0x1D, 0x1E, 0x1F:
                index += 1
            default:
                record.append(byte)
                index += 1
            }
        }
    }

    /// User text for a system line: formatting stripped, cleaned and quoted (docs/PROTOCOL.md §3).
    public static func quotedUserText(_ text: UnsafeRawBufferPointer) -> String {
        var plain: [UInt8] = []
        appendStrippingFormatting(text, to: &plain)
        return EmbeddedText.quoted(String(decoding: plain, as: UTF8.self))
    }
}

/// The native protocol for one hub: parses lines, runs commands, renders replies and notices.
public final class NativeFront: Front {
    public unowned let hub: ChatHub
    /// The hub's index of `NativeFormat` (sessions of this front read that ring).
    public let format: Int
    /// When set, a client must send `/pass PASSWORD` before its name (`--password-file`).
    public var password: [UInt8]?
    /// The `/rooms` reply and the hub's `roomsVersion` it was rendered at (render once per change).
    private var roomsReply: (version: UInt64, bytes: [UInt8])?

    public init(hub: ChatHub, format: Int) {
        self.hub = hub
        self.format = format
    }

    /// Per-session state: whether the password was given.
    final class State {
        var passwordAccepted = false
    }

    // MARK: Front

    public func open(_ session: Session) {
        session.format = format
        session.returnsToLobby = true
        send(NativeVocabulary.hello, to: session)
    }

    public func receive(_ line: UnsafeRawBufferPointer, from session: Session, now: UInt64) {
        switch session.phase {
        case .closing: return
        case .awaitingName, .named: break
        }
        if line.isEmpty { return }
        if let problem = TextCheck.problem(in: line) {
            switch problem {
            case .invalidUTF8:
                sendError(.invalidUTF8, "line is not valid UTF-8; nothing was sent", to: session)
            case .controlCharacter:
                sendError(.controlCharacter, "line contains control characters (ESC, NUL, ...); nothing was sent", to: session)
            case .lineSeparator:
                sendError(.lineSeparator, "line contains U+2028 or U+2029 (line or paragraph separator); nothing was sent", to: session)
            case .unbalancedBidi:
                sendError(.unbalancedBidi, "line leaves a bidi override or isolate open, or closes one never opened; close each with U+202C (PDF) or U+2069 (PDI); nothing was sent", to: session)
            }
            return
        }
        if session.phase == .named && !session.bucket.take(now: now) {
            hub.onEvent?(.rateLimited(session))
            sendError(.rateLimited, "more than \(hub.limits.messageRate.compactDescription) lines per second; this line was not sent", to: session)
            return
        }
        let parsed = NativeCommands.parse(line)
        switch parsed {
        case .empty:
            return
        case .message(let range):
            if session.phase == .awaitingName {
                claimName(String(decoding: line, as: UTF8.self), for: session, now: now)
            } else {
                if !hub.post(.message, UnsafeRawBufferPointer(rebasing: line[range]), from: session) { notInRoom(session) }
            }
        case .command(let name, let arguments):
            let command = NativeCommands.command(named: name)!
            if session.phase == .awaitingName && !command.allowedBeforeName {
                sendError(.nameRequired, "send your name first", to: session)
                return
            }
            command.handler(self, session, arguments, line, now)
        case .usage(let name):
            if session.phase == .awaitingName && !(NativeCommands.command(named: name)?.allowedBeforeName ?? false) {
                sendError(.nameRequired, "send your name first", to: session)
                return
            }
            sendError(.badArguments, "usage: \(NativeCommands.command(named: name)?.usage ?? name)", to: session)
        case .unknown(let word):
            if session.phase == .awaitingName {
                sendError(.nameRequired, "send your name first", to: session)
                return
            }
            sendError(.unknownCommand, "\(EmbeddedText.quoted("/" + word, maxBytes: EmbeddedText.maxEchoBytes)) is not a command; /help lists them", to: session)
        }
    }

    public func lineTooLong(_ session: Session) {
        guard session.phase != .closing else { return }
        sendError(.lineTooLong, "line longer than \(hub.limits.maxLineBytes) bytes; it was discarded", to: session)
    }

    public func render(_ notice: ServerNotice, for session: Session?) -> [UInt8] {
        let line: String
        switch notice {
        case .serverFull(let max):
            line = NativeVocabulary.errorLine(.serverFull, "the server has its maximum of \(max) clients; try again later")
        case .serverBusy:
            line = NativeVocabulary.errorLine(.serverBusy, "the server is out of file descriptors; try again later")
        case .throttled(let seconds):
            line = NativeVocabulary.errorLine(.throttled, "too many new connections from your address; try again in \(seconds) s")
        case .tooManyConnections(let max):
            line = NativeVocabulary.errorLine(.tooManyConnections, "at most \(max) connections per address")
        case .shutdown:
            line = "SYS Shutdown: the server is shutting down"
        case .nameTimeout(let seconds):
            line = NativeVocabulary.errorLine(.nameTimeout, "no valid name within \(seconds) s; disconnecting")
        case .idleTimeout(let seconds):
            line = NativeVocabulary.errorLine(.idleTimeout, "no input for \(seconds) s; disconnecting")
        case .writeTimeout(let seconds):
            line = NativeVocabulary.errorLine(.writeTimeout, "you accepted no data for \(seconds) s; disconnecting")
        case .killed(let oper, let reason):
            line = NativeVocabulary.errorLine(.killed, "disconnected by server operator \(oper): \(reason)")
        case .lineTimeout(let seconds, let dropped):
            line = NativeVocabulary.errorLine(.lineTimeout, "a line stayed incomplete for \(seconds) s; its \(dropped) bytes and the rest up to its newline were discarded")
        }
        return Array((line + "\n").utf8)
    }

    public func renderPrivate(_ message: PrivateMessage, into bytes: inout [UInt8]) {
        switch message.kind {
        case .message, .notice:
            bytes.append(contentsOf: "PRIV ".utf8)
            bytes.append(contentsOf: message.sender.nameBytes)
            bytes.append(contentsOf: ": ".utf8)
        case .action:
            // A private CTCP ACTION from IRC: `PRIV name: * name text`, so a native reader sees who acts.
            bytes.append(contentsOf: "PRIV ".utf8)
            bytes.append(contentsOf: message.sender.nameBytes)
            bytes.append(contentsOf: ": * ".utf8)
            bytes.append(contentsOf: message.sender.nameBytes)
            bytes.append(UInt8(ascii: " "))
        }
        NativeText.appendStrippingFormatting(message.text, to: &bytes)
        bytes.append(UInt8(ascii: "\n"))
    }

    public func renderMissed(_ count: Int, in room: Room, for session: Session, into bytes: inout [UInt8]) {
        bytes.append(contentsOf: "SYS Missed: \(count) lines in #\(room.name); you were reading too slowly\n".utf8)
    }

    public func renderInvite(from inviter: Session, to room: Room, for session: Session, into bytes: inout [UInt8]) {
        bytes.append(contentsOf: "SYS Invite: \(inviter.name ?? "?") invites you to #\(room.name); /join #\(room.name)\n".utf8)
    }

    public func renderDropped(reason: String, for session: Session, into bytes: inout [UInt8]) {
        bytes.append(contentsOf: (NativeVocabulary.errorLine(.queueOverflow, reason) + "\n").utf8)
    }

    // MARK: Registration

    private func claimName(_ name: String, for session: Session, now: UInt64) {
        if let password, !((session.frontState as? State)?.passwordAccepted ?? false) {
            sendError(.passwordRequired, "this server needs a password: send /pass PASSWORD, then your name", to: session)
            return
        }
        switch hub.claimName(name, for: session, now: now) {
        case .claimed:
            break
        case .rateLimited:
            sendError(.rateLimited, "more than \(hub.limits.messageRate.compactDescription) refused names per second; this one was not considered", to: session)
            return
        case .invalid(let problem):
            sendError(.nameInvalid, Names.explain(problem) + "; send another name", to: session)
            return
        case .taken(nil):
            sendError(.nameTaken, "\(name) is already online; send another name", to: session)
            return
        case .taken(let holder?):
            sendError(.nameTaken, "\(name) looks like \(holder), who is online; send another name", to: session)
            return
        }
        let (names, total) = hub.onlineNames(limit: hub.limits.maxListedNames)
        send("\(NativeVocabulary.welcomePrefix)\(name)\(NativeVocabulary.welcomeRoomSeparator)\(hub.lobby.name); online (\(total)): \(list(names, total: total)). Type /help for commands.", to: session)
        hub.arrive(session, now: now)
    }

    func password(_ session: Session, _ arguments: NativeArguments, _ line: UnsafeRawBufferPointer) {
        guard session.phase == .awaitingName else {
            sendError(.badArguments, "/pass is for before your name", to: session)
            return
        }
        guard let password else {
            // No password set: accepted, so a client configured with one still works.
            return
        }
        let given = UnsafeRawBufferPointer(rebasing: line[arguments.text])
        if Self.constantTimeEqual(given, password) {
            let state = (session.frontState as? State) ?? State()
            state.passwordAccepted = true
            session.frontState = state
        } else {
            hub.beginClose(session, reason: .closed("wrong password"),
                           finalLine: Array((NativeVocabulary.errorLine(.passwordIncorrect, "wrong password; disconnecting") + "\n").utf8),
                           announce: false)
        }
    }

    /// Compares without an early exit, so the time taken does not tell how much of a guess was right.
    static func constantTimeEqual(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }

    // MARK: Commands (called from the table)

    func join(_ session: Session, _ arguments: NativeArguments, _ line: UnsafeRawBufferPointer) {
        let raw = String(decoding: UnsafeRawBufferPointer(rebasing: line[arguments.word]), as: UTF8.self)
        switch hub.join(session, roomNamed: raw, leavingCurrent: true) {
        case .joined(let room):
            send("SYS Room: #\(room.name); members (\(room.memberCount)): \(list(hub.memberNames(of: room, limit: hub.limits.maxListedNames), total: room.memberCount))", to: session)
        case .invalid(let problem):
            sendError(.roomInvalid, "room names follow name rules: " + Names.explain(problem), to: session)
        case .alreadyMember(let room):
            sendError(.alreadyInRoom, "you are already in #\(room.name)", to: session)
        case .tooManyRooms(let max):
            sendError(.tooManyRooms, "the server holds its maximum of \(max) rooms; join an existing one (/rooms)", to: session)
        case .needsKey(let room), .full(let room), .inviteOnly(let room):
            // Native rooms have no key, limit or invite list; IRC operators can set them.
            sendError(.roomInvalid, "#\(room.name) is closed to you (an IRC operator set a key, a limit or invite-only)", to: session)
        }
    }

    func rooms(_ session: Session) {
        if roomsReply?.version != hub.roomsVersion {
            let shown = hub.sortedRooms.prefix(hub.limits.maxListedNames).map { "#\($0.name)(\($0.memberCount))" }
            let total = hub.sortedRooms.count
            roomsReply = (hub.roomsVersion, Array("SYS Rooms (\(total)): \(list(Array(shown), total: total))\n".utf8))
        }
        hub.enqueue(roomsReply!.bytes, to: session)
    }

    func who(_ session: Session) {
        guard let room = session.currentRoom else { return }
        if room.listingCache?.version != room.version {
            let names = hub.memberNames(of: room, limit: hub.limits.maxListedNames)
            room.listingCache = (room.version, Array("SYS Who #\(room.name) (\(room.memberCount)): \(list(names, total: room.memberCount))\n".utf8))
        }
        hub.enqueue(room.listingCache!.bytes, to: session)
    }

    func privateMessage(_ session: Session, _ arguments: NativeArguments, _ line: UnsafeRawBufferPointer) {
        let to = String(decoding: UnsafeRawBufferPointer(rebasing: line[arguments.word]), as: UTF8.self)
        switch hub.sendPrivate(.message, UnsafeRawBufferPointer(rebasing: line[arguments.text]), from: session, to: to) {
        case .delivered:
            break
        case .noSuchUser:
            // `to` is whatever the sender typed (not a validated name): quoted, like all user text in server lines.
            sendError(.noSuchUser, "nobody named \(EmbeddedText.quoted(to, maxBytes: EmbeddedText.maxEchoBytes)) is online", to: session)
        case .targetBusy(let target):
            sendError(.targetBusy, "\(target.name ?? to) is not reading fast enough; your message was not delivered", to: session)
        }
    }

    func action(_ session: Session, _ arguments: NativeArguments, _ line: UnsafeRawBufferPointer) {
        if !hub.post(.action, UnsafeRawBufferPointer(rebasing: line[arguments.text]), from: session) { notInRoom(session) }
    }

    /// A message with no room to go to (kicked from the lobby by an IRC operator), or a moderated room.
    private func notInRoom(_ session: Session) {
        if let room = session.currentRoom {
            sendError(.moderated, "#\(room.name) is moderated: only its operators and voiced members speak; nothing was sent", to: session)
        } else {
            sendError(.notInRoom, "you are in no room; /join one (nothing was sent)", to: session)
        }
    }

    func nick(_ session: Session, _ arguments: NativeArguments, _ line: UnsafeRawBufferPointer) {
        let newName = String(decoding: UnsafeRawBufferPointer(rebasing: line[arguments.word]), as: UTF8.self)
        switch hub.rename(session, to: newName) {
        case .renamed, .unchanged:
            break
        case .invalid(let problem):
            sendError(.nameInvalid, Names.explain(problem), to: session)
        case .taken(nil):
            sendError(.nameTaken, "\(newName) is already online", to: session)
        case .taken(let holder?):
            sendError(.nameTaken, "\(newName) looks like \(holder), who is online", to: session)
        }
    }

    /// `/quit [REASON]`. The reason is user text, so it reaches the room (`Offline:`) and the quitter (`Bye:`)
    /// only quoted and cleaned (`EmbeddedText`); a reason with nothing visible in it counts as none.
    func quit(_ session: Session, _ arguments: NativeArguments, _ line: UnsafeRawBufferPointer) {
        let reason = EmbeddedText.clean(String(decoding: UnsafeRawBufferPointer(rebasing: line[arguments.text]), as: UTF8.self))
        if reason.isEmpty {
            hub.beginClose(session, reason: .quit(nil), finalLine: Array("SYS Bye: goodbye\n".utf8))
        } else {
            hub.beginClose(session, reason: .quit(reason), finalLine: Array("SYS Bye: \(EmbeddedText.quote(reason))\n".utf8))
        }
    }

    func help(_ session: Session) {
        for text in NativeCommands.helpTexts { send("SYS Help: " + text, to: session) }
    }

    // MARK: Output

    private func send(_ line: String, to session: Session) {
        hub.enqueue(Array((line + "\n").utf8), to: session)
    }

    private func sendError(_ code: NativeVocabulary.ErrorCode, _ explanation: String, to session: Session) {
        send(NativeVocabulary.errorLine(code, explanation), to: session)
    }

    private func list(_ names: [String], total: Int) -> String {
        let limit = hub.limits.maxListedNames
        let shown = names.prefix(limit).joined(separator: " ")
        return total > limit ? shown + " ... and \(total - limit) more" : shown
    }
}
