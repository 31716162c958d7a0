// Command: what one input line from a named client asks for.

/// A parsed input line. Message text stays as the caller's bytes (byte-exact, never re-encoded).
public enum ClientLine: Equatable {
    /// Nothing to do (an empty line).
    case empty
    /// Text for the current room: the line itself, or with one `/` removed for `//text`.
    case message(Range<Int>)
    case command(Command)
}

public enum Command: Equatable, Sendable {
    case join(room: String)
    case rooms
    case who
    case privateMessage(to: String, text: Range<Int>)
    case nick(String)
    case me(text: Range<Int>)
    case quit(reason: String)
    case help
    /// A known command with wrong arguments; carries its usage text.
    case usage(String)
    case unknown(String)
}

public enum CommandParser {
    public static let usages: [(name: String, usage: String)] = [
        ("join", "/join ROOM"),
        ("rooms", "/rooms"),
        ("who", "/who"),
        ("msg", "/msg NAME TEXT"),
        ("nick", "/nick NEWNAME"),
        ("me", "/me TEXT"),
        ("quit", "/quit [REASON]"),
        ("help", "/help"),
    ]

    /// Classifies a line (already known to be valid UTF-8 without controls). Ranges index into `line`.
    public static func parse(_ line: UnsafeRawBufferPointer) -> ClientLine {
        let n = line.count
        if n == 0 { return .empty }
        if line[0] != UInt8(ascii: "/") { return .message(0..<n) }
        if n >= 2 && line[1] == UInt8(ascii: "/") { return .message(1..<n) }  // "//text" sends "/text"

        // Command word: up to the first space.
        var wordEnd = 1
        while wordEnd < n && line[wordEnd] != 32 { wordEnd += 1 }
        let word = String(decoding: UnsafeRawBufferPointer(rebasing: line[1..<wordEnd]), as: UTF8.self).lowercased()
        var argStart = wordEnd
        while argStart < n && line[argStart] == 32 { argStart += 1 }
        let args = argStart..<n
        func argString() -> String {
            String(decoding: UnsafeRawBufferPointer(rebasing: line[args]), as: UTF8.self)
        }
        func trimmedArg() -> String {
            var s = Substring(argString())
            while s.last == " " || s.last == "\t" { s = s.dropLast() }
            return String(s)
        }

        switch word {
        case "join":
            let room = trimmedArg()
            if room.isEmpty || room.contains(" ") { return .command(.usage("/join ROOM")) }
            return .command(.join(room: room))
        case "rooms": return .command(.rooms)
        case "who": return .command(.who)
        case "msg":
            var nameEnd = argStart
            while nameEnd < n && line[nameEnd] != 32 { nameEnd += 1 }
            var textStart = nameEnd
            if textStart < n { textStart += 1 }  // exactly one separating space: the text is byte-exact after it
            if nameEnd == argStart || textStart >= n { return .command(.usage("/msg NAME TEXT")) }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: line[argStart..<nameEnd]), as: UTF8.self)
            return .command(.privateMessage(to: name, text: textStart..<n))
        case "nick":
            let name = trimmedArg()
            if name.isEmpty || name.contains(" ") { return .command(.usage("/nick NEWNAME")) }
            return .command(.nick(name))
        case "me":
            if args.isEmpty { return .command(.usage("/me TEXT")) }
            return .command(.me(text: args))
        case "quit": return .command(.quit(reason: trimmedArg()))
        case "help": return .command(.help)
        default: return .command(.unknown(word))
        }
    }
}
