// The IRC front: RFC 2812 clients (irssi, weechat, bots) in the same rooms as native clients. It parses IRC
// lines into hub operations and renders room events as IRC lines (`IRCFormat`, one ring per variant).

import ChatCore

/// Renders room events as IRC lines. Two variants, so a message is rendered at most twice whatever the
/// number of IRC members: `tagged` carries `@time=…` (server-time, message-tags), the plain one nothing.
public final class IRCFormat: RoomFormat {
    public let tagged: Bool
    public init(tagged: Bool) { self.tagged = tagged }

    public func render(_ event: RoomEvent, into record: inout [UInt8]) {
        let room = event.room
        let actor = event.actor
        switch event.kind {
        case .message, .action, .notice:
            let verb: [UInt8] = event.kind.isNotice ? IRCWords.notice : IRCWords.privmsg
            IRCText.appendMessage(verb: verb, source: IRCIdentity.source(of: actor), target: room, text: event.text,
                                  action: event.kind.isAction, time: tagged ? event.time : nil, into: &record)
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
        if tagged { IRCText.appendTimeTag(event.time, into: &record) }
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

    static func appendTimeTag(_ time: UInt64, into record: inout [UInt8]) {
        record.append(contentsOf: "@time=".utf8)
        IRCTime.write(milliseconds: time, into: &record)
        record.append(UInt8(ascii: " "))
    }

    /// Appends `[@time] :source VERB #room :text` as one or more lines of at most 512 bytes (tags aside): a long
    /// native message is split at UTF-8 boundaries (at a space near the end when there is one), each piece a
    /// line of its own, all one record.
    static func appendMessage(verb: [UInt8], source: [UInt8], target room: Room?, targetName: [UInt8] = [],
                              text: UnsafeRawBufferPointer, action: Bool, time: UInt64?, into record: inout [UInt8]) {
        // No array is made per message: the target is `#` and the room's cached name, or the nick given.
        let name = room?.nameBytes ?? targetName
        let hash = room != nil ? 1 : 0
        // ":" source " " verb " " target " :" [\x01ACTION ] text [\x01] "\r\n"
        let overhead = 1 + source.count + 1 + verb.count + 1 + hash + name.count + 2 + (action ? 9 : 0) + 2
        let space = max(16, IRCLimits.maxLineBytes - overhead)
        var start = 0
        repeat {
            var end = min(text.count, start + space)
            if end < text.count {
                // Never inside a UTF-8 sequence; at a space in the last 40 bytes if there is one.
                while end > start + 1 && text[end] & 0xC0 == 0x80 { end -= 1 }
                var space = end
                while space > max(start + 1, end - 40) && text[space - 1] != UInt8(ascii: " ") { space -= 1 }
                if space > max(start + 1, end - 40) { end = space }
            }
            if let time { appendTimeTag(time, into: &record) }
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

/// What the IRC front keeps per session.
final class IRCSessionState {
    var nick: String?
    var user = ""
    var realName = ""
    var gotUser = false
    var passwordGiven: [UInt8]?
    var negotiatingCaps = false
    var caps: Set<String> = []
    /// The room of the last channel PRIVMSG/NOTICE, for the fast path (weak: it may be retired).
    weak var lastTarget: Room?
    /// Monotonic time a PING was sent and not yet answered (0: none outstanding).
    var pingSentAt: UInt64 = 0
}

/// The IRC protocol for one hub.
public final class IRCFront: Front {
    public unowned let hub: ChatHub
    /// The hub's indexes of the plain and the tagged `IRCFormat`.
    public let plainFormat: Int
    public let taggedFormat: Int
    public var serverName = "chatd"
    public var networkName = "chatd"
    /// The server password (`password-file`), sent by clients with PASS.
    public var password: [UInt8]?
    /// A client quiet this long (ns) is sent a PING; one that does not answer within `pingTimeout` more is
    /// closed. The engine sets both from `irc-ping-interval` and `irc-ping-timeout` (at start and on SIGHUP).
    public var pingInterval: UInt64 = 120_000_000_000
    public var pingTimeout: UInt64 = 60_000_000_000
    public static let supportedCaps = ["server-time", "message-tags", "echo-message", "multi-prefix",
                                       "userhost-in-names", "away-notify", "cap-notify"]

    public init(hub: ChatHub, plainFormat: Int, taggedFormat: Int) {
        self.hub = hub
        self.plainFormat = plainFormat
        self.taggedFormat = taggedFormat
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
        // Dispatch on the verb the parser recognised: no String per line.
        switch command {
        case .verb(.cap): cap(message, session, now: now)
        case .verb(.pass): pass(message, session)
        case .verb(.nick): nickCommand(message, session, now: now)
        case .verb(.user): user(message, session, now: now)
        case .verb(.ping):
            guard message.parameterCount >= 1 else { return numeric(session, "409", ":No origin specified") }
            send(session, ":\(serverName) PONG \(serverName) :\(message.parameterString(0))")
        case .verb(.pong): return
        case .verb(.quit):
            // A message that fails the text check (ESC, C1, ...) is dropped, not relayed: the quit still happens.
            let usable = message.parameterCount >= 1 && IRCNames.textProblem(message.parameter(0)) == nil
            let text = usable ? EmbeddedText.clean(message.parameterString(0)) : ""
            quit(session, message: text.isEmpty ? nil : text)
        default:
            guard session.phase == .named else {
                return numeric(session, "451", ":You have not registered")
            }
            registered(command, message, session, now: now)
        }
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
        case .lineTimeout(let seconds, let dropped):
            text = ":\(serverName) NOTICE \(session.map(nick) ?? "*") :*** A line stayed incomplete for \(seconds) s; its \(dropped) bytes were discarded"
        }
        return Array((text + "\r\n").utf8)
    }

    public func renderPrivate(_ message: PrivateMessage, into bytes: inout [UInt8]) {
        let tagged = message.recipient.format == taggedFormat
        IRCText.appendMessage(verb: message.kind == .notice ? IRCWords.notice : IRCWords.privmsg,
                              source: IRCIdentity.source(of: message.sender), target: nil,
                              targetName: message.recipient.nameBytes, text: message.text,
                              action: message.kind == .action, time: tagged ? message.time : nil, into: &bytes)
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
        guard message.parameterCount >= 1 else { return numeric(session, "461", "CAP :Not enough parameters") }
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
        guard message.parameterCount >= 1 else { return numeric(session, "461", "PASS :Not enough parameters") }
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
        session.format = state.caps.contains("server-time") || state.caps.contains("message-tags") ? taggedFormat : plainFormat
        welcome(session)
    }

    private func welcome(_ session: Session) {
        let nick = nick(session)
        numeric(session, "001", ":Welcome to the \(networkName) IRC network, \(nick)")
        numeric(session, "002", ":Your host is \(serverName), running chatd")
        numeric(session, "003", ":This server speaks IRC beside chatd's native protocol")
        numeric(session, "004", "\(serverName) chatd io ntmsikl")
        let tokens = ["CASEMAPPING=ascii", "CHANTYPES=#", "PREFIX=(ov)@+", "CHANMODES=,k,l,imnst",
                      "NICKLEN=\(Names.maxBytes)", "CHANNELLEN=\(Names.maxBytes + 1)", "TOPICLEN=\(EmbeddedText.maxBytes * 2)",
                      "NETWORK=\(networkName)", "LINELEN=\(IRCLimits.maxLineBytes)", "UTF8ONLY"]
        numeric(session, "005", tokens.joined(separator: " ") + " :are supported by this server")
        lusers(session)
        numeric(session, "422", ":MOTD File is missing")
    }

    private func lusers(_ session: Session) {
        numeric(session, "251", ":There are \(hub.namedCount) users and 0 invisible on 1 servers")
        numeric(session, "254", "\(hub.roomCount) :channels formed")
        numeric(session, "255", ":I have \(hub.namedCount) clients and 0 servers")
        numeric(session, "265", "\(hub.namedCount) \(hub.namedCount) :Current local users \(hub.namedCount), max \(hub.namedCount)")
        numeric(session, "266", "\(hub.namedCount) \(hub.namedCount) :Current global users \(hub.namedCount), max \(hub.namedCount)")
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
        let channels = member.rooms.map { room in prefix(hub.privileges(of: member, in: room), for: session) + "#" + room.name }
        if !channels.isEmpty { numeric(session, "319", "\(name) :\(channels.joined(separator: " "))") }
        numeric(session, "312", "\(name) \(serverName) :chatd")
        if let away = member.awayMessage { numeric(session, "301", "\(name) :\(away)") }
        numeric(session, "318", "\(name) :End of /WHOIS list")
    }

    private func list(_ message: IRCMessage, _ session: Session) {
        numeric(session, "321", "Channel :Users  Name")
        let wanted = message.parameterCount >= 1 ? Set(message.parameterString(0).split(separator: ",").map { Names.key(String($0.dropFirst())) }) : nil
        for room in hub.sortedRooms where (wanted == nil || wanted!.contains(Names.key(room.name)))
            && room.memberCount > 0 && (!room.modes.secret || session.isMember(of: room)) {
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

    private func registered(_ command: IRCCommand, _ message: IRCMessage, _ session: Session, now: UInt64) {
        switch command {
        case .verb(.join): join(message, session)
        case .verb(.part): part(message, session)
        case .verb(.privmsg): privmsg(message, session, notice: false)
        case .verb(.notice): privmsg(message, session, notice: true)
        case .verb(.topic): topic(message, session)
        case .verb(.names):
            guard message.parameterCount >= 1 else { return numeric(session, "366", "* :End of /NAMES list") }
            for name in message.parameterString(0).split(separator: ",") { names(String(name), session) }
        case .verb(.who): who(message, session, now: now)
        case .verb(.mode): mode(message, session)
        case .verb(.whois): whois(message, session)
        case .verb(.kick): kick(message, session)
        case .verb(.invite): invite(message, session)
        case .verb(.list): list(message, session)
        case .verb(.away): away(message, session)
        case .verb(.lusers): lusers(session)
        case .verb(.time): numeric(session, "391", "\(serverName) :\(IRCTime.string(milliseconds: hub.wallClock))")
        case .verb(.motd): numeric(session, "422", ":MOTD File is missing")
        default: numeric(session, "421", "\(message.commandName) :Unknown command")
        }
    }

    private func channelName(_ raw: Substring) -> String? {
        raw.hasPrefix("#") ? String(raw.dropFirst()) : nil
    }

    private func join(_ message: IRCMessage, _ session: Session) {
        guard message.parameterCount >= 1 else { return numeric(session, "461", "JOIN :Not enough parameters") }
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
                formatOf(session).render(RoomEvent(kind: .joined, room: room, actor: session, time: hub.wallClock), into: &own)
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
        guard message.parameterCount >= 1 else { return numeric(session, "461", "PART :Not enough parameters") }
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
        // The common case, one channel target the session is in: found through the session's last target,
        // compared byte for byte, so a steady PRIVMSG stream makes no String and no name lookup.
        let state = state(session)
        if let room = state.lastTarget, room.nameBytes.count + 1 == message.parameter(0).count,
           message.parameter(0).first == UInt8(ascii: "#"), message.parameter(0).dropFirst().elementsEqual(room.nameBytes),
           session.isMember(of: room) {
            if !hub.post(kind, text, from: session, in: room), !notice {
                numeric(session, "404", "#\(room.name) :Cannot send to channel")
            }
            return
        }
        for target in message.parameterString(0).split(separator: ",") {
            if let name = channelName(target) {
                guard let room = hub.room(named: name) else { if !notice { numeric(session, "403", "\(target) :No such channel") }; continue }
                if session.isMember(of: room) { state.lastTarget = room }
                if !hub.post(kind, text, from: session, in: room), !notice {
                    numeric(session, "404", "\(target) :Cannot send to channel")
                }
            } else {
                switch hub.sendPrivate(privateKind, text, from: session, to: String(target)) {
                case .delivered(let recipient):
                    if !notice, let away = recipient.awayMessage { numeric(session, "301", "\(recipient.name ?? "?") :\(away)") }
                    if session.echoesOwnMessages {
                        var echo: [UInt8] = []
                        let tagged = session.format == taggedFormat
                        IRCText.appendMessage(verb: notice ? IRCWords.notice : IRCWords.privmsg, source: IRCIdentity.source(of: session),
                                              target: nil, targetName: recipient.nameBytes, text: text, action: kind.isAction,
                                              time: tagged ? hub.wallClock : nil, into: &echo)
                        hub.enqueue(echo, to: session)
                    }
                case .noSuchUser: if !notice { numeric(session, "401", "\(target) :No such nick/channel") }
                case .targetBusy(let recipient):
                    if !notice { send(session, ":\(serverName) NOTICE \(nick(session)) :*** \(recipient.name ?? "?") is not reading fast enough; your message was not delivered") }
                }
            }
        }
    }

    private func topicReplies(_ room: Room, _ session: Session) {
        numeric(session, "332", "#\(room.name) :\(room.topic)")
        numeric(session, "333", "#\(room.name) \(room.topicSetter) \(room.topicTime / 1000)")
    }

    private func topic(_ message: IRCMessage, _ session: Session) {
        guard message.parameterCount >= 1 else { return numeric(session, "461", "TOPIC :Not enough parameters") }
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

    private func names(_ target: String, _ session: Session) {
        if let name = channelName(Substring(target)), let room = hub.room(named: name) {
            var names: [String] = []
            let userhost = state(session).caps.contains("userhost-in-names")
            hub.forEachMember(of: room) { member, privileges in
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
        numeric(session, "366", "\(target) :End of /NAMES list")
    }

    private func who(_ message: IRCMessage, _ session: Session, now: UInt64) {
        let mask = message.parameterCount >= 1 ? message.parameterString(0) : "*"
        if let name = channelName(Substring(mask)), let room = hub.room(named: name) {
            hub.forEachMember(of: room) { member, privileges in
                let flags = (member.awayMessage == nil ? "H" : "G") + prefix(privileges, for: session)
                numeric(session, "352", "#\(room.name) \(IRCIdentity.user(of: member)) \(IRCIdentity.host(of: member)) \(serverName) \(member.name ?? "?") \(flags) :0 \(realName(member))")
            }
        } else if let member = hub.session(named: mask), member.phase == .named {
            whoLine(member, session)
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
                let fields = [member.name ?? "", IRCIdentity.host(of: member), realName(member)]
                if fields.contains(where: { IRCNames.glob(pattern, matches: Array($0.lowercased().utf8)) }) {
                    whoLine(member, session)
                    shown += 1
                }
                return shown < hub.limits.maxListedNames * 5
            }
        }
        numeric(session, "315", "\(mask) :End of /WHO list")
    }

    private func whoLine(_ member: Session, _ session: Session) {
        let flags = member.awayMessage == nil ? "H" : "G"
        numeric(session, "352", "* \(IRCIdentity.user(of: member)) \(IRCIdentity.host(of: member)) \(serverName) \(member.name ?? "?") \(flags) :0 \(realName(member))")
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
        guard message.parameterCount >= 1 else { return numeric(session, "461", "MODE :Not enough parameters") }
        let target = message.parameterString(0)
        guard let name = channelName(Substring(target)) else {
            guard Names.key(target) == Names.key(nick(session)) else {
                return numeric(session, hub.session(named: target) == nil ? "401" : "502",
                               hub.session(named: target) == nil ? "\(target) :No such nick/channel" : ":Can't change mode for other users")
            }
            return numeric(session, "221", "+i")
        }
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

    private func kick(_ message: IRCMessage, _ session: Session) {
        guard message.parameterCount >= 2 else { return numeric(session, "461", "KICK :Not enough parameters") }
        let target = message.parameterString(0)
        guard let name = channelName(Substring(target)), let room = hub.room(named: name) else {
            return numeric(session, "403", "\(target) :No such channel")
        }
        guard session.isMember(of: room) else { return numeric(session, "442", "\(target) :You're not on that channel") }
        guard hub.privileges(of: session, in: room).contains(.op) else {
            return numeric(session, "482", "#\(room.name) :You're not channel operator")
        }
        // Without a comment the kicker's nick is the comment, as RFC 2812 §3.2.8 says.
        let given = message.parameterCount >= 3 && message.parameter(2).count > 0
        let reason = given ? message.parameter(2) : UnsafeRawBufferPointer(start: nil, count: 0)
        if let problem = IRCNames.textProblem(reason) { return send(session, "FAIL KICK INVALID_TEXT :Nobody was kicked: \(problem)") }
        let defaultReason = Array(nick(session).utf8)
        for nickName in message.parameterString(1).split(separator: ",") {
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
        if member.frontState is IRCSessionState {
            send(member, ":" + String(decoding: IRCIdentity.source(of: session), as: UTF8.self) + " INVITE \(memberName) #\(room.name)")
        } else {
            hub.enqueue(Array("SYS Invite: \(nick(session)) invites you to #\(room.name); /join #\(room.name)\n".utf8), to: member)
        }
    }

    // MARK: Leaving

    private func quit(_ session: Session, message: String?) {
        let shown = message.map { "Quit: " + $0 } ?? "Quit"
        hub.beginClose(session, reason: .quit(message),
                       finalLine: Array("ERROR :Closing link: \(IRCIdentity.address(session.peer)) (\(shown))\r\n".utf8))
    }

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
