// The IRC front: RFC 2812 clients (irssi, weechat, bots) in the same rooms as native clients. It parses IRC
// lines into hub operations and renders room events as IRC lines (`IRCFormat`, one ring per variant).

import ChatCore

/// Renders room events as IRC lines. Three variants, so a message is rendered at most three times whatever
/// the number of IRC members: `.plain` carries no tags, `.time` `@time=…` (server-time alone), `.tags` time,
/// `msgid` and the sender's client-only tags (message-tags).
public final class IRCFormat: RoomFormat {
    public enum Variant: Sendable { case plain, time, tags }
    public let variant: Variant
    public init(_ variant: Variant) { self.variant = variant }

    func tags(of event: RoomEvent) -> IRCLineTags? {
        switch variant {
        case .plain: nil
        case .time: IRCLineTags(time: event.time)
        case .tags: IRCLineTags(time: event.time, id: event.id, client: event.clientTags)
        }
    }

    public func render(_ event: RoomEvent, into record: inout [UInt8]) {
        let room = event.room
        let actor = event.actor
        switch event.kind {
        case .message, .action, .notice:
            let verb: [UInt8] = event.kind.isNotice ? IRCWords.notice : IRCWords.privmsg
            IRCText.appendMessage(verb: verb, source: IRCIdentity.source(of: actor), target: room, text: event.text,
                                  action: event.kind.isAction, tags: tags(of: event), into: &record)
        case .online, .joined:
            line(event, source: IRCIdentity.source(of: actor), "JOIN #\(room.name)", into: &record)
        case .left:
            if let other = event.otherRoom {
                line(event, source: IRCIdentity.source(of: actor), "PART #\(room.name) :to #\(other.name)", into: &record)
            } else if event.text.isEmpty {
                line(event, source: IRCIdentity.source(of: actor), "PART #\(room.name)", into: &record)
            } else {
                line(event, source: IRCIdentity.source(of: actor), "PART #\(room.name) :" + IRCText.string(event.text), into: &record)
            }
        case .offline(let reason):
            let text: String
            switch reason {
            case .quit(nil): text = "Quit"
            case .quit(let message?): text = "Quit: " + message
            case .closed(let description): text = description
            }
            line(event, source: IRCIdentity.source(of: actor), "QUIT :" + text, into: &record)
        case .renamed:
            let old = IRCIdentity.source(name: event.previousName, of: actor)
            line(event, source: old, "NICK :\(actor.name ?? "?")", into: &record)
        case .topic:
            line(event, source: IRCIdentity.source(of: actor), "TOPIC #\(room.name) :" + IRCText.string(event.text), into: &record)
        case .kicked:
            line(event, source: IRCIdentity.source(of: actor),
                 "KICK #\(room.name) \(event.target?.name ?? "?") :" + IRCText.string(event.text), into: &record)
        case .modeChanged:
            line(event, source: IRCIdentity.source(of: actor), "MODE #\(room.name) " + IRCText.string(event.text), into: &record)
        }
    }

    private func line(_ event: RoomEvent, source: [UInt8], _ rest: String, into record: inout [UInt8]) {
        tags(of: event)?.append(piece: 1, into: &record)
        record.append(UInt8(ascii: ":"))
        record.append(contentsOf: source)
        record.append(UInt8(ascii: " "))
        record.append(contentsOf: rest.utf8)
        record.append(contentsOf: IRCWords.crlf)
    }
}

extension RoomEvent.Kind {
    var isNotice: Bool { if case .notice = self { return true } else { return false } }
    var isAction: Bool { if case .action = self { return true } else { return false } }
}

enum IRCWords {
    static let privmsg = Array("PRIVMSG".utf8)
    static let notice = Array("NOTICE".utf8)
    static let crlf: [UInt8] = [13, 10]
    static let actionStart = Array("\u{1}ACTION ".utf8)
}

/// How a session appears to IRC clients: `nick!user@host`.
public enum IRCIdentity {
    /// `nick!user@host`, cached in the session (cleared on rename).
    static func source(of session: Session) -> [UInt8] {
        if session.renderCache.isEmpty { session.renderCache = source(name: session.name ?? "*", of: session) }
        return session.renderCache
    }

    static func source(name: String, of session: Session) -> [UInt8] {
        Array("\(name)!\(user(of: session, name: name))@\(host(of: session))".utf8)
    }

    /// IRC users' username as they gave it in USER (`~` first: no ident); native users' is their name.
    static func user(of session: Session, name: String? = nil) -> String {
        if let state = session.frontState as? IRCSessionState { return "~" + state.user }
        return name ?? session.name ?? "*"
    }

    /// IRC users: their address; native users: `native` (they have no IRC host).
    static func host(of session: Session) -> String {
        if session.frontState is IRCSessionState { return IRCIdentity.address(session.peer) }
        return "native"
    }

    /// The address part of `HOST:PORT` or `[IPV6]:PORT`.
    static func address(_ peer: String) -> String {
        if peer.hasPrefix("["), let close = peer.firstIndex(of: "]") {
            let inner = peer[peer.index(after: peer.startIndex)..<close]
            // A host starting with `:` would read as a trailing parameter in WHO replies.
            return inner.hasPrefix(":") ? "0" + inner : String(inner)
        }
        if let colon = peer.lastIndex(of: ":") { return String(peer[..<colon]) }
        return peer
    }
}

/// Text helpers for IRC renderings.
enum IRCText {
    static func string(_ bytes: UnsafeRawBufferPointer) -> String { String(decoding: bytes, as: UTF8.self) }

    /// `epoch-serial` in decimal, and `.N` for the Nth line (N ≥ 2) of a message split over several.
    static func appendMessageID(_ id: MessageID, piece: Int, into record: inout [UInt8]) {
        appendDecimal(id.epoch, into: &record)
        record.append(UInt8(ascii: "-"))
        appendDecimal(id.serial, into: &record)
        if piece > 1 {
            record.append(UInt8(ascii: "."))
            appendDecimal(UInt64(piece), into: &record)
        }
    }

    static func appendDecimal(_ value: UInt64, into record: inout [UInt8]) {
        var divisor: UInt64 = 1
        while value / divisor >= 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            record.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    /// The text of `msgid` for `id` (tests, replies built as strings).
    public static func messageID(_ id: MessageID) -> String {
        var bytes: [UInt8] = []
        appendMessageID(id, piece: 1, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `[@time] :source VERB #room :text` as one or more lines of at most 512 bytes (tags aside): a long
    /// native message is split at UTF-8 boundaries (at a space near the end when there is one), each piece a
    /// line of its own, all one record.
    static func appendMessage(verb: [UInt8], source: [UInt8], target room: Room?, targetName: [UInt8] = [],
                              text: UnsafeRawBufferPointer, action: Bool, tags: IRCLineTags?, into record: inout [UInt8]) {
        // No array is made per message: the target is `#` and the room's cached name, or the nick given.
        let name = room?.nameBytes ?? targetName
        let hash = room != nil ? 1 : 0
        // ":" source " " verb " " target " :" [\x01ACTION ] text [\x01] "\r\n"
        let overhead = 1 + source.count + 1 + verb.count + 1 + hash + name.count + 2 + (action ? 9 : 0) + 2
        let space = max(16, IRCLimits.maxLineBytes - overhead)
        var start = 0
        var piece = 0
        repeat {
            piece += 1
            var end = min(text.count, start + space)
            if end < text.count {
                // Never inside a UTF-8 sequence; at a space in the last 40 bytes if there is one.
                while end > start + 1 && text[end] & 0xC0 == 0x80 { end -= 1 }
                var space = end
                while space > max(start + 1, end - 40) && text[space - 1] != UInt8(ascii: " ") { space -= 1 }
                if space > max(start + 1, end - 40) { end = space }
            }
            tags?.append(piece: piece, into: &record)
            record.append(UInt8(ascii: ":"))
            record.append(contentsOf: source)
            record.append(UInt8(ascii: " "))
            record.append(contentsOf: verb)
            record.append(UInt8(ascii: " "))
            if hash == 1 { record.append(UInt8(ascii: "#")) }
            record.append(contentsOf: name)
            record.append(contentsOf: " :".utf8)
            if action { record.append(contentsOf: IRCWords.actionStart) }
            record.append(contentsOf: UnsafeRawBufferPointer(rebasing: text[start..<end]))
            if action { record.append(1) }
            record.append(contentsOf: IRCWords.crlf)
            start = end
        } while start < text.count
    }
}

/// The tags of a line the server sends: `@time=…[;msgid=…][;client tags] `.
struct IRCLineTags {
    var time: UInt64
    var id: MessageID?
    var client = UnsafeRawBufferPointer(start: nil, count: 0)

    func append(piece: Int, into record: inout [UInt8]) {
        record.append(contentsOf: "@time=".utf8)
        IRCTime.write(milliseconds: time, into: &record)
        if let id {
            record.append(contentsOf: ";msgid=".utf8)
            IRCText.appendMessageID(id, piece: piece, into: &record)
        }
        if client.count > 0 {
            record.append(UInt8(ascii: ";"))
            record.append(contentsOf: client)
        }
        record.append(UInt8(ascii: " "))
    }
}

/// What the IRC front keeps per session.
final class IRCSessionState {
    var nick: String?
    var user = ""
    var realName = ""
    var gotUser = false
    var passwordGiven: [UInt8]?
    var negotiatingCaps = false
    var caps: Set<String> = []
    /// Wall-clock milliseconds of the last PRIVMSG/NOTICE (or registration): WHOIS idle time.
    var lastSpokeAt: UInt64 = 0
    /// Wall-clock milliseconds of registration (WHOIS signon time).
    var registeredAt: UInt64 = 0
    /// User mode +i: hidden from WHO masks, NAMES and WHOIS channels of users who share no channel with it.
    var invisible = false
    /// The room of the last channel PRIVMSG/NOTICE, for the fast path (weak: it may be retired).
    weak var lastTarget: Room?
    /// Monotonic time a PING was sent and not yet answered (0: none outstanding).
    var pingSentAt: UInt64 = 0
}

/// The IRC protocol for one hub.
public final class IRCFront: Front {
    public unowned let hub: ChatHub
    /// The hub's indexes of the plain, time-tagged and fully tagged `IRCFormat`s.
    public let plainFormat: Int
    public let timeFormat: Int
    public let tagsFormat: Int
    public var serverName = "chatd"
    public var networkName = "chatd"
    /// The server password (`password-file`), sent by clients with PASS.
    public var password: [UInt8]?
    /// IRC operators (`oper-file`): name key (`Names.key`) -> password.
    public var operators: [String: [UInt8]] = [:]
    /// A client quiet this long (ns) is sent a PING; one that does not answer within `pingTimeout` more is
    /// closed. The engine sets both from `irc-ping-interval` and `irc-ping-timeout` (at start and on SIGHUP).
    public var pingInterval: UInt64 = 120_000_000_000
    public var pingTimeout: UInt64 = 60_000_000_000
    public static let supportedCaps = ["server-time", "message-tags", "echo-message", "multi-prefix", "batch",
                                       "userhost-in-names", "away-notify", "cap-notify"]
    /// Most targets of one command (ISUPPORT TARGMAX); more get 407 and are not processed. JOIN and PART are
    /// bounded by the rooms a session may be in and the line length.
    static let maxTargets = 4

    public init(hub: ChatHub, plainFormat: Int, timeFormat: Int, tagsFormat: Int) {
        self.hub = hub
        self.plainFormat = plainFormat
        self.timeFormat = timeFormat
        self.tagsFormat = tagsFormat
    }

    /// The format a session with these caps reads: message-tags gets every tag, server-time alone the time.
    private func format(for caps: Set<String>) -> Int {
        caps.contains("message-tags") ? tagsFormat : caps.contains("server-time") ? timeFormat : plainFormat
    }

    /// The tags of a line rendered now for `session` (outside the rings: replies to it, private messages).
    private func lineTags(for session: Session, id: MessageID, time: UInt64, client: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) -> IRCLineTags? {
        switch session.format {
        case tagsFormat: IRCLineTags(time: time, id: id, client: client)
        case timeFormat: IRCLineTags(time: time)
        default: nil
        }
    }

    private func state(_ session: Session) -> IRCSessionState {
        if let state = session.frontState as? IRCSessionState { return state }
        let state = IRCSessionState()
        session.frontState = state
        return state
    }

    // MARK: Front

    public func open(_ session: Session) {
        session.format = plainFormat
        session.seesOwnQuit = false
        _ = state(session)
    }

    public func receive(_ line: UnsafeRawBufferPointer, from session: Session, now: UInt64) {
        guard session.phase != .closing else { return }
        let message: IRCMessage
        do {
            message = try IRCMessage(parsing: line)
        } catch {
            switch error {
            case .empty: return
            case .tooLong, .tagsTooLong: numeric(session, "417", ":Input line was too long")
            case .forbiddenByte, .invalidTagValue, .noCommand, .invalidCommand:
                send(session, "FAIL * INVALID_LINE :That line could not be parsed; nothing was done")
            }
            return
        }
        let command = message.command
        state(session).pingSentAt = 0  // any line shows the client is alive
        if session.phase == .named && !session.bucket.take(now: now) && command != .verb(.pong) && command != .verb(.ping) {
            hub.onEvent?(.rateLimited(session))
            send(session, ":\(serverName) NOTICE \(nick(session)) :*** Slow down: more than \(hub.limits.messageRate.compactDescription) lines per second; \(message.commandName) was not processed")
            return
        }
        // Dispatch on the verb the parser recognised, through the command table: no String per line.
        guard case .verb(let verb) = command, let spec = Self.commandTable[Int(verb.rawValue)] else {
            guard session.phase == .named else { return numeric(session, "451", ":You have not registered") }
            return numeric(session, "421", "\(message.commandName) :Unknown command")
        }
        guard spec.beforeRegistration || session.phase == .named else {
            return numeric(session, "451", ":You have not registered")
        }
        guard message.parameterCount >= spec.minimumParameters else {
            return numeric(session, "461", "\(spec.name) :Not enough parameters (usage: \(spec.usage))")
        }
        spec.handler(self, message, session, now)
    }

    public func lineTooLong(_ session: Session) {
        numeric(session, "417", ":Input line was too long")
    }

    public func render(_ notice: ServerNotice, for session: Session?) -> [UInt8] {
        let text: String
        switch notice {
        case .serverFull(let max): text = "ERROR :Server full: it has its maximum of \(max) clients; try again later"
        case .serverBusy: text = "ERROR :Server busy: out of file descriptors; try again later"
        case .throttled(let seconds): text = "ERROR :Too many new connections from your address; try again in \(seconds) s"
        case .tooManyConnections(let max): text = "ERROR :Too many connections: at most \(max) per address"
        case .shutdown: text = "ERROR :Server shutting down"
        case .nameTimeout(let seconds): text = "ERROR :Registration timeout: not registered within \(seconds) s"
        case .idleTimeout(let seconds): text = "ERROR :Idle timeout: no input for \(seconds) s"
        case .writeTimeout(let seconds): text = "ERROR :Write timeout: you accepted no data for \(seconds) s"
        case .killed(let oper, let reason): text = "ERROR :Closing link: Killed (\(oper) (\(reason)))"
        case .lineTimeout(let seconds, let dropped):
            text = ":\(serverName) NOTICE \(session.map(nick) ?? "*") :*** A line stayed incomplete for \(seconds) s; its \(dropped) bytes were discarded"
        }
        return Array((text + "\r\n").utf8)
    }

    public func renderPrivate(_ message: PrivateMessage, into bytes: inout [UInt8]) {
        IRCText.appendMessage(verb: message.kind == .notice ? IRCWords.notice : IRCWords.privmsg,
                              source: IRCIdentity.source(of: message.sender), target: nil,
                              targetName: message.recipient.nameBytes, text: message.text, action: message.kind == .action,
                              tags: lineTags(for: message.recipient, id: message.id, time: message.time, client: message.clientTags),
                              into: &bytes)
    }

    public func renderInvite(from inviter: Session, to room: Room, for session: Session, into bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: ":"))
        bytes.append(contentsOf: IRCIdentity.source(of: inviter))
        bytes.append(contentsOf: " INVITE \(session.name ?? "*") #\(room.name)\r\n".utf8)
    }

    public func renderMissed(_ count: Int, in room: Room, for session: Session, into bytes: inout [UInt8]) {
        bytes.append(contentsOf: ":\(serverName) NOTICE #\(room.name) :*** You missed \(count) messages in #\(room.name): you were reading too slowly\r\n".utf8)
    }

    public func renderDropped(reason: String, for session: Session, into bytes: inout [UInt8]) {
        bytes.append(contentsOf: "ERROR :Closing link: \(reason)\r\n".utf8)
    }

    public func tick(_ session: Session, idle: UInt64, now: UInt64) -> Bool {
        guard session.phase == .named else { return false }
        let state = state(session)
        if state.pingSentAt != 0 {
            if now &- state.pingSentAt >= pingTimeout {
                hub.beginClose(session, reason: .closed("ping timeout"),
                               finalLine: Array("ERROR :Ping timeout: no answer for \((Double(pingTimeout) / 1e9).compactDescription) s\r\n".utf8))
                return true
            }
        } else if idle >= pingInterval {
            state.pingSentAt = now
            send(session, "PING :\(serverName)")
            return true
        }
        return false
    }

    // MARK: Registration

    private func cap(_ message: IRCMessage, _ session: Session, now: UInt64) {
        let state = state(session)
        let sub = message.parameterString(0).uppercased()
        let target = state.nick ?? "*"
        switch sub {
        case "LS":
            if session.phase != .named { state.negotiatingCaps = true }
            send(session, ":\(serverName) CAP \(target) LS :\(Self.supportedCaps.joined(separator: " "))")
        case "LIST":
            send(session, ":\(serverName) CAP \(target) LIST :\(state.caps.sorted().joined(separator: " "))")
        case "REQ":
            if session.phase != .named { state.negotiatingCaps = true }
            let list = message.parameterCount >= 2 ? message.parameterString(1) : ""
            let requested = list.split(separator: " ").map(String.init)
            let known = requested.allSatisfy { Self.supportedCaps.contains($0.hasPrefix("-") ? String($0.dropFirst()) : $0) }
            if !known || requested.isEmpty {
                send(session, ":\(serverName) CAP \(target) NAK :\(list)")
                return
            }
            for cap in requested {
                if cap.hasPrefix("-") { state.caps.remove(String(cap.dropFirst())) } else { state.caps.insert(cap) }
            }
            session.echoesOwnMessages = state.caps.contains("echo-message")
            // Before registration the format is chosen at 001. After it, tags apply at once to private lines,
            // and to channel lines while the session is in no channel (a session reads one ring format).
            if session.phase == .named { _ = hub.setFormat(format(for: state.caps), of: session) }
            send(session, ":\(serverName) CAP \(target) ACK :\(list)")
        case "END":
            state.negotiatingCaps = false
            tryRegister(session, now: now)
        default:
            numeric(session, "410", "\(sub) :Invalid CAP command")
        }
    }

    private func pass(_ message: IRCMessage, _ session: Session) {
        guard session.phase == .awaitingName else { return numeric(session, "462", ":You may not reregister") }
        state(session).passwordGiven = Array(message.parameter(0))
    }

    private func nickCommand(_ message: IRCMessage, _ session: Session, now: UInt64) {
        guard message.parameterCount >= 1, message.parameter(0).count > 0 else {
            return numeric(session, "431", ":No nickname given")
        }
        let wanted = message.parameterString(0)
        if let problem = IRCNames.nickProblem(wanted) {
            return numeric(session, "432", "\(wanted) :Erroneous nickname: \(problem)")
        }
        if session.phase == .named {
            switch hub.rename(session, to: wanted) {
            case .renamed(let old):
                if session.rooms.isEmpty {
                    send(session, ":\(String(decoding: IRCIdentity.source(name: old, of: session), as: UTF8.self)) NICK :\(wanted)")
                }
            case .unchanged: break
            case .invalid(let problem): numeric(session, "432", "\(wanted) :Erroneous nickname: \(Names.explain(problem))")
            case .taken: numeric(session, "433", "\(wanted) :Nickname is already in use")
            }
            return
        }
        state(session).nick = wanted
        tryRegister(session, now: now)
    }

    private func user(_ message: IRCMessage, _ session: Session, now: UInt64) {
        guard session.phase == .awaitingName else { return numeric(session, "462", ":You may not reregister") }
        guard message.parameterCount >= 4, message.parameter(0).count > 0, message.parameter(3).count > 0 else {
            return numeric(session, "461", "USER :Not enough parameters")
        }
        let state = state(session)
        // The username becomes part of `nick!user@host`: letters and digits only, at most 10.
        let raw = message.parameterString(0).unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) }
        state.user = String(String.UnicodeScalarView(raw.prefix(10)))
        if state.user.isEmpty { state.user = "user" }
        // Shown in WHO and WHOIS: one that fails the text check (ESC, C1, ...) is replaced by the username.
        state.realName = IRCNames.textProblem(message.parameter(3)) == nil ? EmbeddedText.clean(message.parameterString(3)) : state.user
        if state.realName.isEmpty { state.realName = state.user }
        state.gotUser = true
        tryRegister(session, now: now)
    }

    private func tryRegister(_ session: Session, now: UInt64) {
        let state = state(session)
        guard session.phase == .awaitingName, let nick = state.nick, state.gotUser, !state.negotiatingCaps else { return }
        if let password {
            guard let given = state.passwordGiven, NativeFront.constantTimeEqual(given.withUnsafeBytes { $0 }, password) else {
                hub.beginClose(session, reason: .closed("wrong password"), finalLine: Array("ERROR :Password incorrect\r\n".utf8), announce: false)
                numeric(session, "464", ":Password incorrect")
                return
            }
        }
        switch hub.claimName(nick, for: session, now: now) {
        case .claimed: break
        case .rateLimited:
            return send(session, ":\(serverName) NOTICE * :*** Too many refused nicknames; wait a moment before the next")
        case .invalid(let problem): return numeric(session, "432", "\(nick) :Erroneous nickname: \(Names.explain(problem))")
        case .taken(nil): return numeric(session, "433", "\(nick) :Nickname is already in use")
        case .taken(let holder?): return numeric(session, "433", "\(nick) :Nickname is already in use (it looks like \(holder))")
        }
        session.format = format(for: state.caps)
        welcome(session)
    }

    private func welcome(_ session: Session) {
        state(session).lastSpokeAt = hub.wallClock
        state(session).registeredAt = hub.wallClock
        let nick = nick(session)
        numeric(session, "001", ":Welcome to the \(networkName) IRC network, \(nick)")
        numeric(session, "002", ":Your host is \(serverName), running chatd")
        numeric(session, "003", ":This server speaks IRC beside chatd's native protocol")
        numeric(session, "004", "\(serverName) chatd io ntmsiklov")
        // Names compare by Unicode case folding (`Names.key`), as PRECIS's case-mapped profile does (RFC 8265):
        // `rfc8265`, as Ergo advertises for Unicode nicknames; `ascii` would tell clients that `Олег` and `ОЛЕГ`
        // are two people.
        let tokens = ["CASEMAPPING=rfc8265", "CHANTYPES=#", "PREFIX=(ov)@+", "CHANMODES=,k,l,imnst",
                      "NICKLEN=\(Names.maxBytes)", "CHANNELLEN=\(Names.maxBytes + 1)", "TOPICLEN=\(EmbeddedText.maxBytes * 2)",
                      "NETWORK=\(networkName)", "LINELEN=\(IRCLimits.maxLineBytes)", "UTF8ONLY", "ELIST=MNU",
                      "TARGMAX=JOIN:,PART:,KICK:\(Self.maxTargets),NAMES:\(Self.maxTargets),PRIVMSG:\(Self.maxTargets),NOTICE:\(Self.maxTargets),TAGMSG:1,WHOIS:1",
                      "WHOX"]
        // As many 005 lines as it takes to keep each well within 512 bytes whatever the nick's length.
        var line: [String] = []
        for token in tokens {
            if !line.isEmpty && (line + [token]).joined(separator: " ").utf8.count > 200 {
                numeric(session, "005", line.joined(separator: " ") + " :are supported by this server")
                line = []
            }
            line.append(token)
        }
        if !line.isEmpty { numeric(session, "005", line.joined(separator: " ") + " :are supported by this server") }
        lusers(session, now: 0)
        numeric(session, "422", ":MOTD File is missing")
    }

    /// 251-255, 265, 266. Counting invisible users and operators scans every user: like a WHO mask, it costs
    /// the sender one more rate token per 1,000 users.
    private func lusers(_ session: Session, now: UInt64) {
        var invisible = 0
        var operators = 0
        hub.forEachNamed { member in
            if (member.frontState as? IRCSessionState)?.invisible == true { invisible += 1 }
            if member.isOperator { operators += 1 }
            return true
        }
        for _ in 0..<(hub.namedCount / 1000) { _ = session.bucket.take(now: now) }
        let total = hub.namedCount
        let peak = hub.peakNamedCount
        numeric(session, "251", ":There are \(total - invisible) users and \(invisible) invisible on 1 servers")
        if operators > 0 { numeric(session, "252", "\(operators) :operator(s) online") }
        numeric(session, "254", "\(hub.roomCount) :channels formed")
        numeric(session, "255", ":I have \(total) clients and 0 servers")
        numeric(session, "265", "\(total) \(peak) :Current local users \(total), max \(peak)")
        numeric(session, "266", "\(total) \(peak) :Current global users \(total), max \(peak)")
    }

    /// `@`, `+` (both with multi-prefix).
    private func prefix(_ privileges: MemberPrivileges, for session: Session) -> String {
        let all = state(session).caps.contains("multi-prefix")
        var text = ""
        if privileges.contains(.op) { text += "@" }
        if privileges.contains(.voice) && (all || text.isEmpty) { text += "+" }
        return text
    }

    private func whois(_ message: IRCMessage, _ session: Session) {
        guard message.parameterCount >= 1 else { return numeric(session, "431", ":No nickname given") }
        let target = message.parameterString(message.parameterCount - 1)
        guard let member = hub.session(named: target), member.phase == .named, let name = member.name else {
            numeric(session, "401", "\(target) :No such nick/channel")
            return numeric(session, "318", "\(target) :End of /WHOIS list")
        }
        numeric(session, "311", "\(name) \(IRCIdentity.user(of: member)) \(IRCIdentity.host(of: member)) * :\(realName(member))")
        // An invisible user's channels are shown only where the asker is a member too; a secret channel only to its members.
        let hidden = isInvisible(member) && member !== session
        let channels = member.rooms.filter { room in
            session.isMember(of: room) || (!hidden && !room.modes.secret)
        }.map { room in prefix(hub.privileges(of: member, in: room), for: session) + "#" + room.name }
        if !channels.isEmpty { numeric(session, "319", "\(name) :\(channels.joined(separator: " "))") }
        numeric(session, "312", "\(name) \(serverName) :chatd")
        if member.isOperator { numeric(session, "313", "\(name) :is an IRC operator") }
        if let state = member.frontState as? IRCSessionState {
            numeric(session, "317", "\(name) \(idleSeconds(member)) \(state.registeredAt / 1000) :seconds idle, signon time")
        }
        if let away = member.awayMessage { numeric(session, "301", "\(name) :\(away)") }
        numeric(session, "318", "\(name) :End of /WHOIS list")
    }

    /// `LIST [item{,item}]`: items are channel names, masks (`*`, `?`), `!mask` (not matching), `>N` and `<N`
    /// (more or fewer users): ISUPPORT ELIST=MNU. A channel is listed if it matches every condition and, when
    /// names or masks are given, one of them.
    private func list(_ message: IRCMessage, _ session: Session, now: UInt64) {
        numeric(session, "321", "Channel :Users  Name")
        var names: Set<String> = []
        var masks: [[UInt8]] = []
        var exclusions: [[UInt8]] = []
        var moreThan = -1
        var fewerThan = Int.max
        if message.parameterCount >= 1 {
            for item in message.parameterString(0).split(separator: ",") {
                if item.hasPrefix(">"), let count = Int(item.dropFirst()), count >= 0 { moreThan = max(moreThan, count) }
                else if item.hasPrefix("<"), let count = Int(item.dropFirst()), count >= 0 { fewerThan = min(fewerThan, count) }
                else if item.hasPrefix("!") { exclusions.append(Array(item.dropFirst().lowercased().utf8)) }
                else if item.contains("*") || item.contains("?") { masks.append(Array(item.lowercased().utf8)) }
                else { names.insert(Names.key(String(item.hasPrefix("#") ? item.dropFirst() : item))) }
            }
        }
        var scanned = 0
        defer { for _ in 0..<(scanned / 1000) { _ = session.bucket.take(now: now) } }
        for room in hub.sortedRooms where room.memberCount > 0 && (!room.modes.secret || session.isMember(of: room)) {
            scanned += 1
            guard room.memberCount > moreThan && room.memberCount < fewerThan else { continue }
            let shown = Array(("#" + room.name).lowercased().utf8)
            if !names.isEmpty || !masks.isEmpty {
                guard names.contains(Names.key(room.name)) || masks.contains(where: { IRCNames.glob($0, matches: shown) }) else { continue }
            }
            if exclusions.contains(where: { IRCNames.glob($0, matches: shown) }) { continue }
            numeric(session, "322", "#\(room.name) \(room.memberCount) :\(room.topic)")
        }
        numeric(session, "323", ":End of /LIST")
    }

    private func away(_ message: IRCMessage, _ session: Session) {
        if message.parameterCount >= 1, let problem = IRCNames.textProblem(message.parameter(0)) {
            return send(session, "FAIL AWAY INVALID_TEXT :Your away message was not set: \(problem)")
        }
        let text = message.parameterCount >= 1 ? EmbeddedText.clean(message.parameterString(0)) : ""
        session.awayMessage = text.isEmpty ? nil : text
        if text.isEmpty { numeric(session, "305", ":You are no longer marked as being away") }
        else { numeric(session, "306", ":You have been marked as being away") }
        notifyAway(session, text, in: session.rooms)
    }

    /// away-notify: every IRC client sharing one of `rooms` with the session and asking for it is told, once.
    private func notifyAway(_ session: Session, _ text: String, in rooms: [Room]) {
        var told = Set<ObjectIdentifier>([ObjectIdentifier(session)])
        let line = ":" + String(decoding: IRCIdentity.source(of: session), as: UTF8.self) + (text.isEmpty ? " AWAY" : " AWAY :" + text)
        for room in rooms {
            hub.forEachMember(of: room) { member, _ in
                guard told.insert(ObjectIdentifier(member)).inserted,
                      let memberState = member.frontState as? IRCSessionState, memberState.caps.contains("away-notify") else { return }
                send(member, line)
            }
        }
    }

    // MARK: Commands after registration

    private func namesCommand(_ message: IRCMessage, _ session: Session) {
        guard message.parameterCount >= 1 else { return numeric(session, "366", "* :End of /NAMES list") }
        let list = message.parameterString(0)
        let targets = list.split(separator: ",")
        for (index, name) in targets.enumerated() {
            guard index < Self.maxTargets else { numeric(session, "407", "\(name) :Too many targets: at most \(Self.maxTargets)"); continue }
            names(String(name), session, end: false)
        }
        numeric(session, "366", "\(list) :End of /NAMES list")
    }

    private func ping(_ message: IRCMessage, _ session: Session) {
        guard message.parameterCount >= 1 else { return numeric(session, "409", ":No origin specified") }
        send(session, ":\(serverName) PONG \(serverName) :\(message.parameterString(0))")
    }

    private func quitCommand(_ message: IRCMessage, _ session: Session) {
        // A message that fails the text check (ESC, C1, ...) is dropped, not relayed: the quit still happens.
        let usable = message.parameterCount >= 1 && IRCNames.textProblem(message.parameter(0)) == nil
        let text = usable ? EmbeddedText.clean(message.parameterString(0)) : ""
        quit(session, message: text.isEmpty ? nil : text)
    }

    /// `HELP [command]`: 704, 705 lines, 706 (as Ergo and InspIRCd answer it), from the command table.
    private func help(_ message: IRCMessage, _ session: Session) {
        guard message.parameterCount >= 1 else {
            numeric(session, "704", "index :chatd's IRC commands (HELP COMMAND for one):")
            var line = ""
            for spec in Self.commands {
                if line.utf8.count + spec.name.utf8.count > 60 { numeric(session, "705", "index :" + line); line = "" }
                line += (line.isEmpty ? "" : " ") + spec.name
            }
            if !line.isEmpty { numeric(session, "705", "index :" + line) }
            return numeric(session, "706", "index :End of /HELP")
        }
        let topic = message.parameterString(0).uppercased()
        guard let spec = Self.commands.first(where: { $0.name == topic }) else {
            return numeric(session, "524", "\(topic) :No help for that command")
        }
        numeric(session, "704", "\(spec.name) :\(spec.usage)")
        numeric(session, "705", "\(spec.name) :\(spec.help)")
        numeric(session, "706", "\(spec.name) :End of /HELP")
    }

    private func channelName(_ raw: Substring) -> String? {
        raw.hasPrefix("#") ? String(raw.dropFirst()) : nil
    }

    private func join(_ message: IRCMessage, _ session: Session) {
        let list = message.parameterString(0)
        if list == "0" {
            for room in session.rooms { _ = hub.part(session, from: room, message: UnsafeRawBufferPointer(start: nil, count: 0)) }
            return
        }
        let keys = message.parameterCount >= 2 ? message.parameterString(1).split(separator: ",", omittingEmptySubsequences: false).map(String.init) : []
        for (index, raw) in list.split(separator: ",").enumerated() {
            guard let name = channelName(raw) else { numeric(session, "403", "\(raw) :No such channel"); continue }
            let key = index < keys.count ? keys[index] : nil
            switch hub.join(session, roomNamed: name, leavingCurrent: false, key: key, actorSeesJoin: false) {
            case .joined(let room):
                // The joiner's own JOIN, then the topic and NAMES, in that order (private output goes first).
                var own: [UInt8] = []
                var event = RoomEvent(kind: .joined, room: room, actor: session, time: hub.wallClock)
                event.id = hub.takeMessageID()
                formatOf(session).render(event, into: &own)
                hub.enqueue(own, to: session)
                if !room.topic.isEmpty { topicReplies(room, session) }
                names("#" + room.name, session)
                if let away = session.awayMessage { notifyAway(session, away, in: [room]) }
            case .alreadyMember: continue
            case .invalid(let problem): numeric(session, "479", "\(raw) :Illegal channel name: \(Names.explain(problem))")
            case .tooManyRooms: numeric(session, "405", "\(raw) :The server holds its maximum of rooms")
            case .needsKey: numeric(session, "475", "\(raw) :Cannot join channel (+k)")
            case .full: numeric(session, "471", "\(raw) :Cannot join channel (+l)")
            case .inviteOnly: numeric(session, "473", "\(raw) :Cannot join channel (+i)")
            }
        }
    }

    private func formatOf(_ session: Session) -> any RoomFormat { hub.formats[session.format] }

    private func part(_ message: IRCMessage, _ session: Session) {
        let reason = message.parameterCount >= 2 ? message.parameter(1) : UnsafeRawBufferPointer(start: nil, count: 0)
        if let problem = IRCNames.textProblem(reason) { return send(session, "FAIL PART INVALID_TEXT :You did not leave: \(problem)") }
        for raw in message.parameterString(0).split(separator: ",") {
            guard let name = channelName(raw), let room = hub.room(named: name) else {
                numeric(session, "403", "\(raw) :No such channel")
                continue
            }
            if !hub.part(session, from: room, message: reason) { numeric(session, "442", "\(raw) :You're not on that channel") }
        }
    }

    private func privmsg(_ message: IRCMessage, _ session: Session, notice: Bool) {
        let verb = notice ? "NOTICE" : "PRIVMSG"
        guard message.parameterCount >= 1 else { return notice ? () : numeric(session, "411", ":No recipient given (\(verb))") }
        guard message.parameterCount >= 2, message.parameter(1).count > 0 else {
            return notice ? () : numeric(session, "412", ":No text to send")
        }
        var text = message.parameter(1)
        var kind: RoomEvent.Kind = notice ? .notice : .message
        var privateKind: PrivateKind = notice ? .notice : .message
        // CTCP ACTION (`/me`) becomes an action; other CTCP requests are not relayed.
        if text.first == 1 {
            let body = UnsafeRawBufferPointer(rebasing: text.dropFirst())
            let inner = body.last == 1 ? UnsafeRawBufferPointer(rebasing: body.dropLast()) : body
            if inner.starts(with: "ACTION ".utf8) {
                text = UnsafeRawBufferPointer(rebasing: inner.dropFirst(7))
                kind = .action
                privateKind = .action
            } else {
                return
            }
        }
        if let problem = IRCNames.textProblem(text) {
            let code = problem.hasSuffix("UTF-8") ? "INVALID_UTF8" : "INVALID_TEXT"
            if !notice { send(session, "FAIL \(verb) \(code) :Your message was not sent: \(problem)") }
            return
        }
        if message.hasTags {
            // Client-only tags go with the message to clients that negotiated message-tags (rare: built per message).
            var tags: [UInt8] = []
            if let problem = clientTags(of: message, into: &tags) {
                if !notice { send(session, "FAIL \(verb) INVALID_TEXT :Your message was not sent: \(problem)") }
                return
            }
            tags.withUnsafeBytes { deliver(message, kind: kind, privateKind: privateKind, text: text, clientTags: $0, session, notice: notice) }
            return
        }
        deliver(message, kind: kind, privateKind: privateKind, text: text,
                clientTags: UnsafeRawBufferPointer(start: nil, count: 0), session, notice: notice)
    }

    /// Whether `text` from `session` can be relayed as one line (`:nick!user@host PRIVMSG target :text` within
    /// 512 bytes). A PRIVMSG that cannot gets 417 and is not sent: never cut, never split into lines the sender
    /// did not write (IRC clients split long input themselves). A NOTICE, which gets no error reply, is sent
    /// split over several lines, as a long native message is.
    private func fitsOneLine(_ text: UnsafeRawBufferPointer, from session: Session, notice: Bool, action: Bool, targetBytes: Int) -> Bool {
        let overhead = 1 + IRCIdentity.source(of: session).count + 1 + 7 + 1 + targetBytes + 2 + (action ? 9 : 0) + 2
        if notice || overhead + text.count <= IRCLimits.maxLineBytes { return true }
        numeric(session, "417", ":Your message was not sent: with your nick!user@host it would be over \(IRCLimits.maxLineBytes) bytes; at most \(max(0, IRCLimits.maxLineBytes - overhead)) bytes of text fit")
        return false
    }

    /// The client-only tags of `message` (`+key[=value]` as sent, `;` between them) appended to `bytes`; a
    /// problem if one holds a control character (escaped CR and LF are fine: they stay escaped on the wire).
    private func clientTags(of message: IRCMessage, into bytes: inout [UInt8]) -> String? {
        for tag in message.tags where tag.isClientOnly {
            if TextCheck.problem(in: tag.escapedValue) != nil { return "the tag \(IRCText.string(tag.key)) holds a control character" }
            if !bytes.isEmpty { bytes.append(UInt8(ascii: ";")) }
            bytes.append(contentsOf: tag.key)
            if tag.escapedValue.count > 0 {
                bytes.append(UInt8(ascii: "="))
                bytes.append(contentsOf: tag.escapedValue)
            }
        }
        return nil
    }

    private func deliver(_ message: IRCMessage, kind: RoomEvent.Kind, privateKind: PrivateKind, text: UnsafeRawBufferPointer,
                         clientTags: UnsafeRawBufferPointer, _ session: Session, notice: Bool) {
        state(session).lastSpokeAt = hub.wallClock
        // The common case, one channel target the session is in: found through the session's last target,
        // compared byte for byte, so a steady PRIVMSG stream makes no String and no name lookup.
        let state = state(session)
        if let room = state.lastTarget, room.nameBytes.count + 1 == message.parameter(0).count,
           message.parameter(0).first == UInt8(ascii: "#"), message.parameter(0).dropFirst().elementsEqual(room.nameBytes),
           session.isMember(of: room) {
            guard fitsOneLine(text, from: session, notice: notice, action: kind.isAction, targetBytes: room.nameBytes.count + 1) else { return }
            if !hub.post(kind, text, from: session, in: room, clientTags: clientTags), !notice {
                numeric(session, "404", "#\(room.name) :Cannot send to channel")
            }
            return
        }
        for (index, target) in message.parameterString(0).split(separator: ",").enumerated() {
            guard index < Self.maxTargets else {
                if !notice { numeric(session, "407", "\(target) :Too many targets: at most \(Self.maxTargets); not sent there") }
                continue
            }
            if let name = channelName(target) {
                guard let room = hub.room(named: name) else { if !notice { numeric(session, "403", "\(target) :No such channel") }; continue }
                if session.isMember(of: room) { state.lastTarget = room }
                guard fitsOneLine(text, from: session, notice: notice, action: kind.isAction, targetBytes: room.nameBytes.count + 1) else { continue }
                if !hub.post(kind, text, from: session, in: room, clientTags: clientTags), !notice {
                    numeric(session, "404", "\(target) :Cannot send to channel")
                }
            } else {
                if let recipient = hub.session(named: String(target)), recipient.phase == .named,
                   !fitsOneLine(text, from: session, notice: notice, action: kind.isAction, targetBytes: recipient.nameBytes.count) { continue }
                switch hub.sendPrivate(privateKind, text, from: session, to: String(target), clientTags: clientTags) {
                case .delivered(let recipient, let id):
                    if !notice, let away = recipient.awayMessage { numeric(session, "301", "\(recipient.name ?? "?") :\(away)") }
                    if session.echoesOwnMessages {
                        var echo: [UInt8] = []
                        IRCText.appendMessage(verb: notice ? IRCWords.notice : IRCWords.privmsg, source: IRCIdentity.source(of: session),
                                              target: nil, targetName: recipient.nameBytes, text: text, action: kind.isAction,
                                              tags: lineTags(for: session, id: id, time: hub.wallClock, client: clientTags), into: &echo)
                        hub.enqueue(echo, to: session)
                    }
                case .noSuchUser: if !notice { numeric(session, "401", "\(target) :No such nick/channel") }
                case .targetBusy(let recipient):
                    if !notice { send(session, ":\(serverName) NOTICE \(nick(session)) :*** \(recipient.name ?? "?") is not reading fast enough; your message was not delivered") }
                }
            }
        }
    }

    /// `TAGMSG target`: client-only tags without text, for clients that negotiated message-tags (typing
    /// notifications, reactions). It goes outside the rings, rendered once, to the channel's members that read
    /// the tags format (a member whose queue is full is skipped: such tags are ephemeral), or to one user.
    private func tagmsg(_ message: IRCMessage, _ session: Session) {
        var tags: [UInt8] = []
        if let problem = clientTags(of: message, into: &tags) {
            return send(session, "FAIL TAGMSG INVALID_TEXT :Your tags were not sent: \(problem)")
        }
        guard !tags.isEmpty else { return }  // nothing a recipient may see
        let target = message.parameterString(0)
        let id = hub.takeMessageID()
        var line: [UInt8] = []
        tags.withUnsafeBytes { IRCLineTags(time: hub.wallClock, id: id, client: $0).append(piece: 1, into: &line) }
        line.append(UInt8(ascii: ":"))
        line.append(contentsOf: IRCIdentity.source(of: session))
        if let name = channelName(Substring(target)) {
            guard let room = hub.room(named: name) else { return numeric(session, "403", "\(target) :No such channel") }
            guard hub.maySpeak(session, in: room) else { return numeric(session, "404", "#\(room.name) :Cannot send to channel") }
            line.append(contentsOf: " TAGMSG #\(room.name)\r\n".utf8)
            line.withUnsafeBytes { _ = hub.sendOutsideRing($0, toMembersOf: room, reading: tagsFormat, from: session) }
        } else {
            guard let recipient = hub.session(named: target), recipient.phase == .named else {
                return numeric(session, "401", "\(target) :No such nick/channel")
            }
            line.append(contentsOf: " TAGMSG \(recipient.name ?? target)\r\n".utf8)
            if recipient.format == tagsFormat && recipient !== session { line.withUnsafeBytes { _ = hub.sendOutsideRing($0, to: recipient) } }
            if session.echoesOwnMessages && session.format == tagsFormat { hub.enqueue(line, to: session) }
        }
    }

    private func topicReplies(_ room: Room, _ session: Session) {
        numeric(session, "332", "#\(room.name) :\(room.topic)")
        numeric(session, "333", "#\(room.name) \(room.topicSetter) \(room.topicTime / 1000)")
    }

    private func topic(_ message: IRCMessage, _ session: Session) {
        let target = message.parameterString(0)
        guard let name = channelName(Substring(target)), let room = hub.room(named: name) else {
            return numeric(session, "403", "\(target) :No such channel")
        }
        if message.parameterCount < 2 {
            if room.topic.isEmpty { numeric(session, "331", "#\(room.name) :No topic is set") } else { topicReplies(room, session) }
            return
        }
        guard session.isMember(of: room) else { return numeric(session, "442", "\(target) :You're not on that channel") }
        if room.modes.topicLocked && !hub.privileges(of: session, in: room).contains(.op) {
            return numeric(session, "482", "#\(room.name) :You're not channel operator")
        }
        let text = message.parameter(1)
        if let problem = IRCNames.textProblem(text) {
            return send(session, "FAIL TOPIC INVALID_TEXT :The topic was not set: \(problem)")
        }
        hub.setTopic(text, by: session, in: room)
    }

    private func names(_ target: String, _ session: Session, end: Bool = true) {
        if let name = channelName(Substring(target)), let room = hub.room(named: name) {
            var names: [String] = []
            let userhost = state(session).caps.contains("userhost-in-names")
            let asMember = session.isMember(of: room)
            if room.modes.secret && !asMember { return end ? numeric(session, "366", "\(target) :End of /NAMES list") : () }
            hub.forEachMember(of: room) { member, privileges in
                if !asMember && self.isInvisible(member) { return }
                let shown = userhost ? String(decoding: IRCIdentity.source(of: member), as: UTF8.self) : (member.name ?? "?")
                names.append(self.prefix(privileges, for: session) + shown)
            }
            // 353 lines within 512 bytes.
            var line = ""
            let prefix = (room.modes.secret ? "@" : "=") + " #\(room.name) :"
            for name in names.sorted() {
                if !line.isEmpty && prefix.utf8.count + line.utf8.count + name.utf8.count + 80 > IRCLimits.maxLineBytes {
                    numeric(session, "353", prefix + line)
                    line = ""
                }
                line += line.isEmpty ? name : " " + name
            }
            if !line.isEmpty { numeric(session, "353", prefix + line) }
        }
        if end { numeric(session, "366", "\(target) :End of /NAMES list") }
    }

    /// WHOX (`WHO mask %fields[,token]`): which fields a 354 reply carries, and the client's token.
    struct WhoxRequest {
        var fields: Set<Character>
        var token: String
    }

    private func who(_ message: IRCMessage, _ session: Session, now: UInt64) {
        let mask = message.parameterCount >= 1 ? message.parameterString(0) : "*"
        var whox: WhoxRequest?
        if message.parameterCount >= 2, message.parameterString(1).hasPrefix("%") {
            let spec = message.parameterString(1).dropFirst()
            let parts = spec.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false)
            let token = parts.count > 1 ? String(parts[1].prefix(3)) : ""
            whox = WhoxRequest(fields: Set(parts.first ?? ""), token: token.allSatisfy(\.isNumber) ? token : "0")
        }
        func whoLine(_ member: Session, _ room: Room?, _ privileges: MemberPrivileges) {
            let flags = whoFlags(member) + (room == nil ? "" : prefix(privileges, for: session))
            let channel = room.map { "#" + $0.name } ?? "*"
            guard let whox else {
                return numeric(session, "352", "\(channel) \(IRCIdentity.user(of: member)) \(IRCIdentity.host(of: member)) \(serverName) \(member.name ?? "?") \(flags) :0 \(realName(member))")
            }
            // The fields in WHOX's fixed order, whatever order they were asked in; the real name last, as trailing.
            var fields: [String] = []
            for letter in "tcuihsnfdlao" where whox.fields.contains(letter) {
                switch letter {
                case "t": fields.append(whox.token.isEmpty ? "0" : whox.token)
                case "c": fields.append(channel)
                case "u": fields.append(IRCIdentity.user(of: member))
                case "i": fields.append(member.frontState is IRCSessionState ? IRCIdentity.host(of: member) : "255.255.255.255")
                case "h": fields.append(IRCIdentity.host(of: member))
                case "s": fields.append(serverName)
                case "n": fields.append(member.name ?? "?")
                case "f": fields.append(flags)
                case "d": fields.append("0")
                case "l": fields.append(String(idleSeconds(member)))
                case "a": fields.append("0")  // no accounts
                default: fields.append("n/a")  // "o": no op levels
                }
            }
            if whox.fields.contains("r") { fields.append(":" + realName(member)) }
            numeric(session, "354", fields.joined(separator: " "))
        }
        if let name = channelName(Substring(mask)), let room = hub.room(named: name) {
            hub.forEachMember(of: room) { member, privileges in whoLine(member, room, privileges) }
        } else if let member = hub.session(named: mask), member.phase == .named {
            whoLine(member, nil, [])
        } else if mask.contains("*") || mask.contains("?") {
            // A mask matches a nick, a host or a real name (case-insensitively); at most `maxListedNames` × 5 lines.
            // Scanning every user is the expensive WHO: it costs one more line of the sender's rate budget per
            // 1,000 users looked at, so a client cannot burn the server's CPU with masks that match nothing.
            let pattern = Array(mask.lowercased().utf8)
            var shown = 0
            var scanned = 0
            defer { for _ in 0..<(scanned / 1000) { _ = session.bucket.take(now: now) } }
            hub.forEachNamed { member in
                scanned += 1
                // Invisible users match a mask only for those who share a channel with them.
                if isInvisible(member) && member !== session && !sharesRoom(member, session) { return true }
                let fields = [member.name ?? "", IRCIdentity.host(of: member), realName(member)]
                if fields.contains(where: { IRCNames.glob(pattern, matches: Array($0.lowercased().utf8)) }) {
                    whoLine(member, nil, [])
                    shown += 1
                }
                return shown < hub.limits.maxListedNames * 5
            }
        }
        numeric(session, "315", "\(mask) :End of /WHO list")
    }

    /// `H` here or `G` gone, then `*` for a server operator.
    private func whoFlags(_ member: Session) -> String {
        (member.awayMessage == nil ? "H" : "G") + (member.isOperator ? "*" : "")
    }

    private func isInvisible(_ member: Session) -> Bool { (member.frontState as? IRCSessionState)?.invisible == true }

    private func sharesRoom(_ member: Session, _ session: Session) -> Bool {
        member.rooms.contains { session.isMember(of: $0) }
    }

    /// Seconds since the user last sent a message (or registered), for WHOX `l` and WHOIS 317.
    private func idleSeconds(_ member: Session) -> UInt64 {
        guard let state = member.frontState as? IRCSessionState else { return 0 }
        return hub.wallClock > state.lastSpokeAt ? (hub.wallClock - state.lastSpokeAt) / 1000 : 0
    }

    private func realName(_ session: Session) -> String {
        (session.frontState as? IRCSessionState)?.realName ?? "chatd native user"
    }

    private func modeString(_ modes: RoomModes, forMember: Bool) -> String {
        var letters = "+"
        var arguments: [String] = []
        if modes.inviteOnly { letters += "i" }
        if let key = modes.key { letters += "k"; arguments.append(forMember ? key : "*") }
        if modes.limit > 0 { letters += "l"; arguments.append(String(modes.limit)) }
        if modes.moderated { letters += "m" }
        if modes.noExternal { letters += "n" }
        if modes.secret { letters += "s" }
        if modes.topicLocked { letters += "t" }
        return ([letters] + arguments).joined(separator: " ")
    }

    private func mode(_ message: IRCMessage, _ session: Session) {
        let target = message.parameterString(0)
        guard let name = channelName(Substring(target)) else { return userMode(message, session) }
        guard let room = hub.room(named: name) else { return numeric(session, "403", "\(target) :No such channel") }
        if message.parameterCount == 1 {
            numeric(session, "324", "#\(room.name) " + modeString(room.modes, forMember: session.isMember(of: room)))
            numeric(session, "329", "#\(room.name) \(room.createdAt / 1000)")
            return
        }
        let changes = message.parameterString(1)
        if changes == "b" || changes == "+b" { return numeric(session, "368", "#\(room.name) :End of channel ban list") }
        guard hub.privileges(of: session, in: room).contains(.op) else {
            return numeric(session, "482", "#\(room.name) :You're not channel operator")
        }
        var modes = room.modes
        var adding = true
        var argument = 2
        var applied = ""
        var appliedArguments: [String] = []
        var lastSign: Character = " "
        func nextArgument() -> String? {
            guard argument < message.parameterCount else { return nil }
            defer { argument += 1 }
            return message.parameterString(argument)
        }
        func note(_ letter: Character, _ value: String? = nil) {
            let sign: Character = adding ? "+" : "-"
            if sign != lastSign { applied.append(sign); lastSign = sign }
            applied.append(letter)
            if let value { appliedArguments.append(value) }
        }
        for letter in changes {
            switch letter {
            case "+": adding = true
            case "-": adding = false
            case "i": modes.inviteOnly = adding; note(letter)
            case "m": modes.moderated = adding; note(letter)
            case "n": modes.noExternal = adding; note(letter)
            case "s": modes.secret = adding; note(letter)
            case "t": modes.topicLocked = adding; note(letter)
            case "k":
                if adding {
                    // A key is shown to members in 324: printable ASCII only, no comma (JOIN lists keys with them).
                    guard let key = nextArgument(), !key.isEmpty, key.utf8.count <= 64,
                          key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ",") }) else {
                        numeric(session, "696", "#\(room.name) k * :You must specify a parameter for the key mode"); continue
                    }
                    modes.key = key; note(letter, key)
                } else {
                    _ = nextArgument()
                    modes.key = nil; note(letter, "*")
                }
            case "l":
                if adding {
                    guard let text = nextArgument(), let limit = Int(text), limit > 0, limit <= 1_000_000 else {
                        numeric(session, "696", "#\(room.name) l * :You must specify a positive limit"); continue
                    }
                    modes.limit = limit; note(letter, String(limit))
                } else {
                    modes.limit = 0; note(letter)
                }
            case "o", "v":
                guard let nickName = nextArgument() else {
                    numeric(session, "461", "MODE :Not enough parameters"); continue
                }
                guard let member = hub.session(named: nickName), member.isMember(of: room) else {
                    numeric(session, "441", "\(nickName) #\(room.name) :They aren't on that channel"); continue
                }
                var privileges = hub.privileges(of: member, in: room)
                let bit: MemberPrivileges = letter == "o" ? .op : .voice
                if adding { privileges.insert(bit) } else { privileges.remove(bit) }
                _ = hub.setPrivileges(privileges, of: member, in: room,
                                      change: (adding ? "+" : "-") + String(letter) + " " + (member.name ?? nickName), by: session)
            default:
                numeric(session, "472", "\(letter) :is an unknown mode char to me")
            }
        }
        if applied.contains(where: { $0.isLetter }) {
            hub.setModes(modes, change: ([applied] + appliedArguments).joined(separator: " "), by: session, in: room)
        }
    }

    /// `MODE nick [changes]`: a user's own modes, `+i` (invisible) and `o` (operator: only `-o`, OPER gives it).
    private func userMode(_ message: IRCMessage, _ session: Session) {
        let target = message.parameterString(0)
        guard Names.key(target) == Names.key(nick(session)) else {
            let exists = hub.session(named: target) != nil
            return numeric(session, exists ? "502" : "401", exists ? ":Can't change mode for other users" : "\(target) :No such nick/channel")
        }
        let state = state(session)
        guard message.parameterCount >= 2 else {
            return numeric(session, "221", "+" + (state.invisible ? "i" : "") + (session.isOperator ? "o" : ""))
        }
        var adding = true
        var applied = ""
        var lastSign: Character = " "
        func note(_ letter: Character) {
            let sign: Character = adding ? "+" : "-"
            if sign != lastSign { applied.append(sign); lastSign = sign }
            applied.append(letter)
        }
        var unknown = false
        for letter in message.parameterString(1) {
            switch letter {
            case "+": adding = true
            case "-": adding = false
            case "i":
                if state.invisible != adding { state.invisible = adding; note(letter) }
            case "o":
                // Only OPER makes an operator; anyone may drop it.
                if !adding && session.isOperator { session.isOperator = false; note(letter) }
            default:
                unknown = true
            }
        }
        if unknown { numeric(session, "501", ":Unknown MODE flag") }
        if !applied.isEmpty { send(session, ":\(nick(session)) MODE \(nick(session)) :\(applied)") }
    }

    // MARK: Operators

    private func oper(_ message: IRCMessage, _ session: Session, now: UInt64) {
        guard !operators.isEmpty else { return numeric(session, "491", ":No operators are configured on this server") }
        if session.isOperator { return numeric(session, "381", ":You are now an IRC operator") }
        // One answer for an unknown name and a wrong password, and a failed attempt costs ten lines of the
        // sender's rate budget: guessing is slow, and it learns nothing about which names exist.
        guard let expected = operators[Names.key(message.parameterString(0))],
              Self.constantTimeEqual(expected, message.parameter(1)) else {
            for _ in 0..<10 { _ = session.bucket.take(now: now) }
            return numeric(session, "464", ":Password incorrect")
        }
        session.isOperator = true
        send(session, ":\(nick(session)) MODE \(nick(session)) :+o")
        numeric(session, "381", ":You are now an IRC operator")
    }

    /// `KILL nick [reason]`: an operator disconnects a user of either front, who is told who did it and why.
    private func kill(_ message: IRCMessage, _ session: Session) {
        guard session.isOperator else { return numeric(session, "481", ":Permission Denied- You're not an IRC operator") }
        let targetName = message.parameterString(0)
        guard let target = hub.session(named: targetName), target.phase == .named else {
            return numeric(session, "401", "\(targetName) :No such nick/channel")
        }
        var reason = "no reason given"
        if message.parameterCount >= 2, message.parameter(1).count > 0 {
            if let problem = IRCNames.textProblem(message.parameter(1)) {
                return send(session, "FAIL KILL INVALID_TEXT :Nobody was disconnected: \(problem)")
            }
            reason = EmbeddedText.clean(message.parameterString(1))
        }
        let oper = nick(session)
        hub.beginClose(target, reason: .closed("Killed (\(oper) (\(reason)))"),
                       finalLine: target.front.render(.killed(by: oper, reason: reason), for: target))
    }

    static func constantTimeEqual(_ expected: [UInt8], _ given: UnsafeRawBufferPointer) -> Bool {
        var difference = UInt(bitPattern: expected.count ^ given.count)
        for index in 0..<given.count { difference |= UInt(given[index] ^ (index < expected.count ? expected[index] : 0)) }
        return difference == 0
    }

    /// `KICK #chan nick[,nick…] [:reason]`, or `KICK #a,#b nick1,nick2` pairing channels and nicks (RFC 2812
    /// §3.2.8). Each removal is its own KICK line; at most `maxTargets` of them per command.
    private func kick(_ message: IRCMessage, _ session: Session) {
        let channels = message.parameterString(0).split(separator: ",")
        let nicks = message.parameterString(1).split(separator: ",")
        guard !channels.isEmpty, !nicks.isEmpty, channels.count == 1 || channels.count == nicks.count else {
            return numeric(session, "461", "KICK :Give one channel, or as many channels as nicks")
        }
        // Without a comment the kicker's nick is the comment, as RFC 2812 §3.2.8 says.
        let given = message.parameterCount >= 3 && message.parameter(2).count > 0
        let reason = given ? message.parameter(2) : UnsafeRawBufferPointer(start: nil, count: 0)
        if let problem = IRCNames.textProblem(reason) { return send(session, "FAIL KICK INVALID_TEXT :Nobody was kicked: \(problem)") }
        let defaultReason = Array(nick(session).utf8)
        for (index, nickName) in nicks.enumerated() {
            guard index < Self.maxTargets else { numeric(session, "407", "\(nickName) :Too many targets: at most \(Self.maxTargets)"); continue }
            let target = channels.count == 1 ? channels[0] : channels[index]
            guard let name = channelName(target), let room = hub.room(named: name) else {
                numeric(session, "403", "\(target) :No such channel"); continue
            }
            guard session.isMember(of: room) else { numeric(session, "442", "\(target) :You're not on that channel"); continue }
            guard hub.privileges(of: session, in: room).contains(.op) else {
                numeric(session, "482", "#\(room.name) :You're not channel operator"); continue
            }
            guard let member = hub.session(named: String(nickName)), member.phase == .named else {
                numeric(session, "401", "\(nickName) :No such nick/channel"); continue
            }
            let kicked = given ? hub.kick(member, from: room, by: session, reason: reason)
                : defaultReason.withUnsafeBytes { hub.kick(member, from: room, by: session, reason: $0) }
            if !kicked {
                numeric(session, "441", "\(nickName) #\(room.name) :They aren't on that channel")
            }
        }
    }

    private func invite(_ message: IRCMessage, _ session: Session) {
        if message.parameterCount == 0 {
            // The channels the session is invited to and has not joined yet.
            hub.forEachRoom(inviting: session) { room in numeric(session, "336", "#\(room.name)") }
            return numeric(session, "337", ":End of /INVITE list")
        }
        guard message.parameterCount >= 2 else { return numeric(session, "461", "INVITE :Not enough parameters") }
        let nickName = message.parameterString(0)
        let target = message.parameterString(1)
        guard let member = hub.session(named: nickName), member.phase == .named, let memberName = member.name else {
            return numeric(session, "401", "\(nickName) :No such nick/channel")
        }
        guard let name = channelName(Substring(target)), let room = hub.room(named: name) else {
            return numeric(session, "403", "\(target) :No such channel")
        }
        guard session.isMember(of: room) else { return numeric(session, "442", "\(target) :You're not on that channel") }
        if room.modes.inviteOnly && !hub.privileges(of: session, in: room).contains(.op) {
            return numeric(session, "482", "#\(room.name) :You're not channel operator")
        }
        if member.isMember(of: room) { return numeric(session, "443", "\(memberName) #\(room.name) :is already on channel") }
        hub.invite(member, to: room)
        numeric(session, "341", "\(memberName) #\(room.name)")
        var line: [UInt8] = []
        member.front.renderInvite(from: session, to: room, for: member, into: &line)
        if !line.withUnsafeBytes({ hub.sendOutsideRing($0, to: member) }) {
            send(session, ":\(serverName) NOTICE \(nick(session)) :*** \(memberName) is not reading fast enough: the invitation holds, but they were not told")
        }
    }

    // MARK: Leaving

    private func quit(_ session: Session, message: String?) {
        let shown = message.map { "Quit: " + $0 } ?? "Quit"
        hub.beginClose(session, reason: .quit(message),
                       finalLine: Array("ERROR :Closing link: \(IRCIdentity.address(session.peer)) (\(shown))\r\n".utf8))
    }

    // MARK: The command table

    /// One IRC command: its row in the front's one dispatch table, from which dispatch, the 451 and 461
    /// rules and HELP all come.
    struct CommandSpec: Sendable {
        let verb: IRCVerb
        /// Parameters required; fewer get `461` with the usage. Commands whose own numeric for a missing
        /// parameter is not 461 (PRIVMSG's 411/412, NICK's 431, PING's 409, …) check it themselves.
        let minimumParameters: Int
        /// Served before registration completes; the others get `451`.
        let beforeRegistration: Bool
        let usage: String
        let help: String
        let handler: @Sendable (IRCFront, IRCMessage, Session, UInt64) -> Void
        var name: String { verb.name.description }
    }

    static let commands: [CommandSpec] = [
        CommandSpec(verb: .cap, minimumParameters: 1, beforeRegistration: true, usage: "CAP LS [302] | LIST | REQ :caps | END",
                    help: "Capability negotiation: server-time, message-tags, echo-message, multi-prefix, batch, userhost-in-names, away-notify, cap-notify") { $0.cap($1, $2, now: $3) },
        CommandSpec(verb: .pass, minimumParameters: 1, beforeRegistration: true, usage: "PASS password",
                    help: "The server password (password-file), before NICK and USER") { f, m, s, _ in f.pass(m, s) },
        CommandSpec(verb: .nick, minimumParameters: 0, beforeRegistration: true, usage: "NICK nickname",
                    help: "Choose or change your nickname (the names native users follow too)") { $0.nickCommand($1, $2, now: $3) },
        CommandSpec(verb: .user, minimumParameters: 0, beforeRegistration: true, usage: "USER username 0 * :real name",
                    help: "Your username and real name, once, at registration") { $0.user($1, $2, now: $3) },
        CommandSpec(verb: .ping, minimumParameters: 0, beforeRegistration: true, usage: "PING token",
                    help: "Answered with PONG token") { f, m, s, _ in f.ping(m, s) },
        CommandSpec(verb: .pong, minimumParameters: 0, beforeRegistration: true, usage: "PONG token",
                    help: "The answer to the server's PING") { _, _, _, _ in },
        CommandSpec(verb: .quit, minimumParameters: 0, beforeRegistration: true, usage: "QUIT [:message]",
                    help: "Leave the server; others see your message") { f, m, s, _ in f.quitCommand(m, s) },
        CommandSpec(verb: .help, minimumParameters: 0, beforeRegistration: true, usage: "HELP [command]",
                    help: "This help") { f, m, s, _ in f.help(m, s) },
        CommandSpec(verb: .join, minimumParameters: 1, beforeRegistration: false, usage: "JOIN #a[,#b] [key[,key]] | JOIN 0",
                    help: "Join channels (made if new; the first member is operator); JOIN 0 leaves them all") { f, m, s, _ in f.join(m, s) },
        CommandSpec(verb: .part, minimumParameters: 1, beforeRegistration: false, usage: "PART #a[,#b] [:message]",
                    help: "Leave channels") { f, m, s, _ in f.part(m, s) },
        CommandSpec(verb: .privmsg, minimumParameters: 0, beforeRegistration: false, usage: "PRIVMSG target[,target] :text",
                    help: "A message to channels you are in or to users (native users too); at most 4 targets") { f, m, s, _ in f.privmsg(m, s, notice: false) },
        CommandSpec(verb: .notice, minimumParameters: 0, beforeRegistration: false, usage: "NOTICE target[,target] :text",
                    help: "Like PRIVMSG, but no error replies and no automatic answers") { f, m, s, _ in f.privmsg(m, s, notice: true) },
        CommandSpec(verb: .tagmsg, minimumParameters: 1, beforeRegistration: false, usage: "@+tag=value TAGMSG target",
                    help: "Client-only tags without text, for clients that negotiated message-tags") { f, m, s, _ in f.tagmsg(m, s) },
        CommandSpec(verb: .topic, minimumParameters: 1, beforeRegistration: false, usage: "TOPIC #chan [:text]",
                    help: "Show or set a channel's topic (+t: operators only)") { f, m, s, _ in f.topic(m, s) },
        CommandSpec(verb: .names, minimumParameters: 0, beforeRegistration: false, usage: "NAMES #a[,#b]",
                    help: "Who is in channels") { f, m, s, _ in f.namesCommand(m, s) },
        CommandSpec(verb: .who, minimumParameters: 0, beforeRegistration: false, usage: "WHO #chan | nick | mask [%fields[,token]]",
                    help: "Who is in a channel, or matches a mask; WHOX with %fields") { $0.who($1, $2, now: $3) },
        CommandSpec(verb: .whois, minimumParameters: 0, beforeRegistration: false, usage: "WHOIS nick",
                    help: "About one user: name, host, channels, idle time, away, operator") { f, m, s, _ in f.whois(m, s) },
        CommandSpec(verb: .list, minimumParameters: 0, beforeRegistration: false, usage: "LIST [#chan|mask|!mask|>N|<N][,...]",
                    help: "The channels, their member counts and topics") { $0.list($1, $2, now: $3) },
        CommandSpec(verb: .mode, minimumParameters: 1, beforeRegistration: false, usage: "MODE #chan [±imnst] [±k key] [+l n] [±o|±v nick] | MODE nick [±i] [-o]",
                    help: "Show or change channel modes (operators) or your own user modes") { f, m, s, _ in f.mode(m, s) },
        CommandSpec(verb: .kick, minimumParameters: 2, beforeRegistration: false, usage: "KICK #chan nick[,nick] [:reason]",
                    help: "Remove users from a channel (operators)") { f, m, s, _ in f.kick(m, s) },
        CommandSpec(verb: .invite, minimumParameters: 0, beforeRegistration: false, usage: "INVITE nick #chan | INVITE",
                    help: "Let a user past +i, +k and +l once; alone, list your invitations") { f, m, s, _ in f.invite(m, s) },
        CommandSpec(verb: .away, minimumParameters: 0, beforeRegistration: false, usage: "AWAY [:message]",
                    help: "Mark yourself away (with a message) or back (without)") { f, m, s, _ in f.away(m, s) },
        CommandSpec(verb: .lusers, minimumParameters: 0, beforeRegistration: false, usage: "LUSERS",
                    help: "How many users, invisible users, operators and channels") { f, _, s, now in f.lusers(s, now: now) },
        CommandSpec(verb: .motd, minimumParameters: 0, beforeRegistration: false, usage: "MOTD",
                    help: "The message of the day (chatd has none: 422)") { f, _, s, _ in f.numeric(s, "422", ":MOTD File is missing") },
        CommandSpec(verb: .time, minimumParameters: 0, beforeRegistration: false, usage: "TIME",
                    help: "The server's time") { f, _, s, _ in f.numeric(s, "391", "\(f.serverName) :\(IRCTime.string(milliseconds: f.hub.wallClock))") },
        CommandSpec(verb: .oper, minimumParameters: 2, beforeRegistration: false, usage: "OPER name password",
                    help: "Become a server operator (oper-file)") { $0.oper($1, $2, now: $3) },
        CommandSpec(verb: .kill, minimumParameters: 1, beforeRegistration: false, usage: "KILL nick [:reason]",
                    help: "Disconnect a user, telling them why (operators)") { f, m, s, _ in f.kill(m, s) },
    ]

    /// `commands` indexed by `IRCVerb.rawValue`: dispatch is an array lookup.
    static let commandTable: [CommandSpec?] = {
        var table = [CommandSpec?](repeating: nil, count: IRCVerb.allCases.count)
        for spec in commands {
            precondition(table[Int(spec.verb.rawValue)] == nil, "\(spec.name) is in the command table twice")
            table[Int(spec.verb.rawValue)] = spec
        }
        return table
    }()

    // MARK: Output

    private func nick(_ session: Session) -> String { session.name ?? state(session).nick ?? "*" }

    private func numeric(_ session: Session, _ code: String, _ rest: String) {
        send(session, ":\(serverName) \(code) \(nick(session)) \(rest)")
    }

    private func send(_ session: Session, _ line: String) {
        hub.enqueue(Array((line + "\r\n").utf8), to: session)
    }
}

/// IRC's rules on top of chatd's names and text.
enum IRCNames {
    /// Whether `text` matches the IRC mask `pattern` (`*` any run, `?` one byte), both already lower-cased.
    /// Iterative with one backtrack point, so it is linear-ish and cannot blow up on `*a*a*a*…`.
    static func glob(_ pattern: [UInt8], matches text: [UInt8]) -> Bool {
        var p = 0, t = 0, star = -1, resume = 0
        while t < text.count {
            if p < pattern.count && (pattern[p] == UInt8(ascii: "?") || pattern[p] == text[t]) {
                p += 1; t += 1
            } else if p < pattern.count && pattern[p] == UInt8(ascii: "*") {
                star = p; resume = t; p += 1
            } else if star >= 0 {
                p = star + 1; resume += 1; t = resume
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }

    /// Why `nick` cannot be an IRC nickname even if chatd would take it as a name (nil: it can).
    static func nickProblem(_ nick: String) -> String? {
        guard let first = nick.unicodeScalars.first else { return "empty" }
        if ("0"..."9").contains(first) || first == "-" { return "a nickname cannot start with a digit or -" }
        return nil
    }

    /// Text as IRC clients send it may hold formatting codes and CTCP's 0x01; every other control (ESC, NUL,
    /// C1, ...) is refused as on the native front, and so are what TextCheck refuses (invalid UTF-8, line
    /// separators, open bidi controls).
    static func textProblem(_ text: UnsafeRawBufferPointer) -> String? {
        let formatting: Set<UInt8> = [0x01, 0x02, 0x03, 0x04, 0x0F, 0x11, 0x16, 0x1D, 0x1E, 0x1F]
        var checked = Array(text)
        for index in checked.indices where formatting.contains(checked[index]) { checked[index] = UInt8(ascii: " ") }
        let problem = checked.withUnsafeBytes { TextCheck.problem(in: $0) }
        switch problem {
        case nil: return nil
        case .invalidUTF8: return "it is not valid UTF-8"
        case .controlCharacter: return "it contains control characters (ESC, NUL, ...)"
        case .lineSeparator: return "it contains U+2028 or U+2029"
        case .unbalancedBidi: return "it leaves a bidi override or isolate open"
        }
    }
}
