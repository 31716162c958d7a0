// IRCCommand: the command word of a message, recognised without building a String, so that the front can
// dispatch with a switch on the hot path.

/// The commands the IRC front knows by name (client to server and server to client). A command word that is
/// none of them is `IRCCommand.other`: the front answers it with 421 ERR_UNKNOWNCOMMAND.
public enum IRCVerb: UInt8, CaseIterable, Sendable {
    case authenticate, away, batch, cap, chathistory, error, help, info, invite, ison, join, kick, kill, list, lusers,
         mode, motd, names, nick, notice, oper, part, pass, ping, pong, privmsg, quit, setname, tagmsg, time,
         topic, user, userhost, version, who, whois, whowas

    /// The word as it goes on the wire (upper case).
    public var name: StaticString {
        switch self {
        case .authenticate: "AUTHENTICATE"
        case .away: "AWAY"
        case .batch: "BATCH"
        case .cap: "CAP"
        case .chathistory: "CHATHISTORY"
        case .error: "ERROR"
        case .help: "HELP"
        case .info: "INFO"
        case .invite: "INVITE"
        case .ison: "ISON"
        case .join: "JOIN"
        case .kick: "KICK"
        case .kill: "KILL"
        case .list: "LIST"
        case .lusers: "LUSERS"
        case .mode: "MODE"
        case .motd: "MOTD"
        case .names: "NAMES"
        case .nick: "NICK"
        case .notice: "NOTICE"
        case .oper: "OPER"
        case .part: "PART"
        case .pass: "PASS"
        case .ping: "PING"
        case .pong: "PONG"
        case .privmsg: "PRIVMSG"
        case .quit: "QUIT"
        case .setname: "SETNAME"
        case .tagmsg: "TAGMSG"
        case .time: "TIME"
        case .topic: "TOPIC"
        case .user: "USER"
        case .userhost: "USERHOST"
        case .version: "VERSION"
        case .who: "WHO"
        case .whois: "WHOIS"
        case .whowas: "WHOWAS"
        }
    }
}

/// A message's command: a known verb, a three-digit numeric, or another word (see `IRCMessage.commandName`).
public enum IRCCommand: Hashable, Sendable {
    case verb(IRCVerb)
    case numeric(UInt16)
    case other

    /// Recognises a command word already checked to be letters only, in any case.
    static func recognise(letters word: UnsafeRawBufferPointer) -> IRCCommand {
        guard let key = CommandKey(upperCasing: word), let verb = CommandKey.verbs[key] else { return .other }
        return .verb(verb)
    }
}

/// A command word of up to 16 letters, upper-cased and packed into two integers: a dictionary key that costs
/// no allocation to build, so recognising a command is a hash lookup.
struct CommandKey: Hashable {
    var low: UInt64 = 0
    var high: UInt64 = 0

    init?(upperCasing word: UnsafeRawBufferPointer) {
        guard word.count <= 16 else { return nil }
        for (index, byte) in word.enumerated() {
            let upper = UInt64(byte & 0xDF)  // ASCII letters only, as the parser checked
            if index < 8 {
                low |= upper << (8 * UInt64(index))
            } else {
                high |= upper << (8 * UInt64(index - 8))
            }
        }
    }

    static let verbs: [CommandKey: IRCVerb] = {
        var table: [CommandKey: IRCVerb] = [:]
        for verb in IRCVerb.allCases {
            let name = verb.name
            let key = CommandKey(upperCasing: UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))!
            table[key] = verb
        }
        return table
    }()
}
