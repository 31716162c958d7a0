// The native protocol's commands: one table gives each command's name, usage, help, arguments, whether it
// is allowed before a name, and its handler. The parser, `/help`, the usage errors and the before-a-name
// rule all read this table, so they cannot disagree.

import ChatCore

/// What a command takes after its word.
public enum NativeArity: Equatable, Sendable {
    /// Nothing (extra words are ignored).
    case none
    /// One word, spaces and tabs around it trimmed (`/join ROOM`).
    case word
    /// A word, then everything after exactly one space, byte-exact and non-empty (`/msg NAME TEXT`).
    case wordAndText
    /// Everything after the spaces that follow the command word, byte-exact and non-empty (`/me TEXT`).
    case text
    /// Like `text`, but optional, with trailing spaces and tabs trimmed (`/quit [REASON]`).
    case optionalText
}

/// A parsed command's arguments: ranges into the line, so message text stays the caller's bytes.
public struct NativeArguments: Equatable, Sendable {
    public var word: Range<Int>
    public var text: Range<Int>
    public init(word: Range<Int> = 0..<0, text: Range<Int> = 0..<0) {
        self.word = word
        self.text = text
    }
}

/// One row of the command table.
public struct NativeCommand: Sendable {
    public let name: String
    public let usage: String
    /// What `/help` says of it (nil: not listed).
    public let summary: String?
    /// Which `/help` line it is listed on (commands on one line are joined with `; `).
    public let helpLine: Int
    public let arity: NativeArity
    public let allowedBeforeName: Bool
    let handler: @Sendable (NativeFront, Session, NativeArguments, UnsafeRawBufferPointer, UInt64) -> Void
}

/// A classified input line. Ranges index into the line.
public enum NativeLine: Equatable {
    /// Nothing to do (an empty line).
    case empty
    /// Text for the current room: the line itself, or with one `/` removed for `//text`.
    case message(Range<Int>)
    /// A command of the table (by name) with its arguments.
    case command(String, NativeArguments)
    /// A known command with wrong arguments (by name; its usage is in the table).
    case usage(String)
    /// `/word` is not a command (the word, lowercased).
    case unknown(String)
}

public enum NativeCommands {
    public static let table: [NativeCommand] = [
        NativeCommand(name: "join", usage: "/join ROOM", summary: "leave this room for ROOM (created if new)", helpLine: 1,
                      arity: .word, allowedBeforeName: false) { front, session, arguments, line, _ in front.join(session, arguments, line) },
        NativeCommand(name: "rooms", usage: "/rooms", summary: "list rooms", helpLine: 2,
                      arity: .none, allowedBeforeName: false) { front, session, _, _, _ in front.rooms(session) },
        NativeCommand(name: "who", usage: "/who", summary: "list this room's members", helpLine: 2,
                      arity: .none, allowedBeforeName: false) { front, session, _, _, _ in front.who(session) },
        NativeCommand(name: "msg", usage: "/msg NAME TEXT", summary: "private message", helpLine: 3,
                      arity: .wordAndText, allowedBeforeName: false) { front, session, arguments, line, _ in front.privateMessage(session, arguments, line) },
        NativeCommand(name: "me", usage: "/me TEXT", summary: "action", helpLine: 3,
                      arity: .text, allowedBeforeName: false) { front, session, arguments, line, _ in
                          front.action(session, arguments, line)
                      },
        NativeCommand(name: "nick", usage: "/nick NEWNAME", summary: "rename", helpLine: 4,
                      arity: .word, allowedBeforeName: false) { front, session, arguments, line, _ in front.nick(session, arguments, line) },
        NativeCommand(name: "quit", usage: "/quit [REASON]", summary: "leave", helpLine: 4,
                      arity: .optionalText, allowedBeforeName: true) { front, session, arguments, line, _ in
                          front.quit(session, arguments, line)
                      },
        NativeCommand(name: "pass", usage: "/pass PASSWORD", summary: nil, helpLine: 0,
                      arity: .optionalText, allowedBeforeName: true) { front, session, arguments, line, _ in
                          front.password(session, arguments, line)
                      },
        NativeCommand(name: "help", usage: "/help", summary: nil, helpLine: 0,
                      arity: .none, allowedBeforeName: true) { front, session, _, _, _ in front.help(session) },
    ]

    /// The command named `name`, if any.
    public static func command(named name: String) -> NativeCommand? { table.first { $0.name == name } }

    /// The `/help` reply's texts (without the `SYS Help: ` tag), from the table.
    public static let helpTexts: [String] = {
        var lines = ["lines not starting with / go to your room; start a message with // to send a leading /"]
        let listed = table.filter { $0.summary != nil }
        for line in Set(listed.map(\.helpLine)).sorted() {
            lines.append(listed.filter { $0.helpLine == line }.map { "\($0.usage) - \($0.summary!)" }.joined(separator: "; "))
        }
        return lines
    }()

    /// Classifies a line (already known to be valid UTF-8 without controls).
    public static func parse(_ line: UnsafeRawBufferPointer) -> NativeLine {
        let n = line.count
        if n == 0 { return .empty }
        if line[0] != UInt8(ascii: "/") { return .message(0..<n) }
        if n >= 2 && line[1] == UInt8(ascii: "/") { return .message(1..<n) }  // "//text" sends "/text"

        // Command word: up to the first space.
        var wordEnd = 1
        while wordEnd < n && line[wordEnd] != UInt8(ascii: " ") { wordEnd += 1 }
        let word = String(decoding: UnsafeRawBufferPointer(rebasing: line[1..<wordEnd]), as: UTF8.self).lowercased()
        guard let command = command(named: word) else { return .unknown(word) }
        var argStart = wordEnd
        while argStart < n && line[argStart] == UInt8(ascii: " ") { argStart += 1 }
        func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var trimmedEnd = n
        while trimmedEnd > argStart && isBlank(line[trimmedEnd - 1]) { trimmedEnd -= 1 }

        switch command.arity {
        case .none:
            return .command(word, NativeArguments())
        case .word:
            let range = argStart..<trimmedEnd
            if range.isEmpty || line[range].contains(UInt8(ascii: " ")) { return .usage(word) }
            return .command(word, NativeArguments(word: range))
        case .wordAndText:
            var nameEnd = argStart
            while nameEnd < n && line[nameEnd] != UInt8(ascii: " ") { nameEnd += 1 }
            var textStart = nameEnd
            if textStart < n { textStart += 1 }  // exactly one separating space: the text is byte-exact after it
            if nameEnd == argStart || textStart >= n { return .usage(word) }
            return .command(word, NativeArguments(word: argStart..<nameEnd, text: textStart..<n))
        case .text:
            if argStart >= n { return .usage(word) }
            return .command(word, NativeArguments(text: argStart..<n))
        case .optionalText:
            return .command(word, NativeArguments(text: argStart..<max(argStart, trimmedEnd)))
        }
    }
}
