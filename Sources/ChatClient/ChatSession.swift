// ChatSession: the client's side of the protocol as a pure state machine: which name it is asking for,
// whether it has been welcomed, which room it is in, and what a typed line means (send it, echo it,
// quit). The runtime feeds it server lines and typed lines and carries out what it returns.

import ChatFronts

public struct ChatSession: Sendable {
    public enum Phase: Equatable, Sendable {
        /// Connected (or connecting) without an accepted name.
        case naming
        /// Welcomed: lines are messages and commands.
        case chatting
        /// `/quit` sent: waiting for the server to close.
        case quitting
    }

    public private(set) var phase: Phase = .naming
    /// The name the server accepted (updated by `/nick`); what a reconnect asks for again.
    public private(set) var name: String?
    /// The name sent and not yet answered.
    public private(set) var requestedName: String?
    public private(set) var room: String?
    /// The last line the server sent: the reason shown when it closes the connection.
    public private(set) var lastLine: String?

    public init(name: String? = nil) {
        self.name = name
    }

    /// A new connection: the protocol starts over; the accepted name is kept for the rejoin.
    public mutating func connectionStarted() {
        if phase != .quitting { phase = .naming }
        requestedName = nil
        lastLine = nil
    }

    /// The name to send on connecting without asking: the accepted one (a rejoin) or `--name`.
    public var nameToRejoin: String? { name }

    /// Records that `candidate` was sent as the name.
    public mutating func sentName(_ candidate: String) {
        requestedName = candidate
    }

    /// What a server line did.
    public struct Reaction: Equatable, Sendable {
        public var display: DisplayLine
        /// The name was accepted (the first welcome or a rejoin).
        public var welcomed = false
        /// The name was refused (`name-taken`/`name-invalid` while naming): ask for another.
        public var nameRefused = false
        /// The server ended the session politely (`SYS Bye`).
        public var bye = false
    }

    public mutating func receive(_ line: String) -> Reaction {
        lastLine = line
        let parsed = ServerLine(parsing: line)
        var reaction = Reaction(display: DisplayLine.from(parsed, currentRoom: phase == .naming ? nil : room))
        switch parsed {
        case .system(nil, let text):
            if let welcome = Self.parseWelcome(text) {
                name = welcome.name
                room = welcome.room
                requestedName = nil
                if phase == .naming { phase = .chatting }
                reaction.welcomed = true
            } else if text.hasPrefix("Room: #") {
                let roomText = text.dropFirst("Room: #".count)
                room = String(roomText.prefix { $0 != ";" })
            } else if text.hasPrefix("Bye:") {
                reaction.bye = true
            }
        case .system(_, let text):
            // `Nick: OLD -> NEW` about us: our own `/nick` succeeded.
            if text.hasPrefix("Nick: "), let arrow = text.firstRange(of: " -> "),
               String(text.dropFirst("Nick: ".count)[..<arrow.lowerBound]) == name {
                name = String(text[arrow.upperBound...])
            }
        case .error(let code, _):
            if phase == .naming && (code == NativeVocabulary.ErrorCode.nameTaken.rawValue || code == NativeVocabulary.ErrorCode.nameInvalid.rawValue) {
                requestedName = nil
                reaction.nameRefused = true
            }
        default:
            break
        }
        return reaction
    }

    /// Parses `Welcome: NAME. You are in #ROOM; online ...` (the text after `SYS `), with the words the
    /// server writes (`NativeVocabulary`).
    static func parseWelcome(_ text: String) -> (name: String, room: String)? {
        NativeVocabulary.parseWelcome(Substring(NativeVocabulary.Tag.system + " " + text))
    }

    /// What a typed line becomes.
    public struct Submission: Equatable, Sendable {
        /// The line to send (without `\n`), or nil.
        public var send: String?
        /// What to show locally (your own message, or a private message you sent).
        public var echo: DisplayLine?
        /// The line was `/quit`: wait for the server to close, then end with success.
        public var quits = false
    }

    /// Interprets a line the user finished. Before a name is accepted, a line is the name (or a command
    /// the server allows then: `/help`, `/quit`).
    public mutating func submit(_ line: String) -> Submission {
        if line.isEmpty || phase == .quitting { return Submission() }
        var submission = Submission(send: line)
        let command = Self.commandWord(line)
        if command == "quit" {
            phase = .quitting
            submission.quits = true
            return submission
        }
        if phase == .naming {
            if command == nil { requestedName = line }
            return submission
        }
        let me = name ?? "me"
        switch command {
        case nil:
            submission.echo = DisplayLine(.own, "\(me): \(line)")
        case "":
            // `//text` sends `/text`: the server removes one slash.
            submission.echo = DisplayLine(.own, "\(me): \(line.dropFirst())")
        case "me":
            if let text = Self.argument(line) { submission.echo = DisplayLine(.own, "* \(me) \(text)") }
        case "msg":
            // `/msg NAME TEXT`: TEXT is everything after exactly one space following NAME.
            if let rest = Self.argument(line), let space = rest.firstIndex(of: " ") {
                let text = rest[rest.index(after: space)...]
                if !text.isEmpty {
                    submission.echo = DisplayLine(.privateMessage, "[to \(rest[..<space])] \(text)")
                }
            }
        default:
            break
        }
        return submission
    }

    /// The lowercased command word of `/word ...`, "" for `//...`, nil for a message.
    static func commandWord(_ line: String) -> String? {
        guard line.hasPrefix("/") else { return nil }
        let body = line.dropFirst()
        if body.hasPrefix("/") { return "" }
        return body.prefix { $0 != " " }.lowercased()
    }

    /// The arguments of a command: after the command word and the spaces following it; nil if none.
    static func argument(_ line: String) -> Substring? {
        let afterWord = line.drop { $0 != " " }
        let rest = afterWord.drop { $0 == " " }
        return rest.isEmpty ? nil : rest
    }
}
