// ServerLine: a line from chatd, classified by its first token as docs/PROTOCOL.md §3 prescribes, and
// DisplayLine: how the client shows it (and the user's own lines) to a person.

/// A parsed server line.
public enum ServerLine: Equatable, Sendable {
    /// `MSG #ROOM NAME: TEXT`
    case message(room: String, from: String, text: String)
    /// `ACT #ROOM NAME TEXT`
    case action(room: String, from: String, text: String)
    /// `PRIV NAME: TEXT`
    case privateMessage(from: String, text: String)
    /// `SYS ...`; `room` is set for room events (`SYS #ROOM Online: NAME`), `text` is the rest.
    case system(room: String?, text: String)
    /// `ERR CODE EXPLANATION`
    case error(code: String, text: String)
    /// Anything else (a newer server, or not chatd at all): shown as it is.
    case other(String)

    public init(parsing line: String) {
        guard let space = line.firstIndex(of: " ") else {
            self = .other(line)
            return
        }
        let tag = line[..<space]
        let rest = line[line.index(after: space)...]
        switch tag {
        case "MSG":
            guard let (room, afterRoom) = Self.word(rest), room.hasPrefix("#"),
                  let colon = afterRoom.firstRange(of: ": ") else { break }
            self = .message(room: String(room.dropFirst()), from: String(afterRoom[..<colon.lowerBound]),
                            text: String(afterRoom[colon.upperBound...]))
            return
        case "ACT":
            guard let (room, afterRoom) = Self.word(rest), room.hasPrefix("#"),
                  let (name, text) = Self.word(afterRoom) else { break }
            self = .action(room: String(room.dropFirst()), from: String(name), text: String(text))
            return
        case "PRIV":
            guard let colon = rest.firstRange(of: ": ") else { break }
            self = .privateMessage(from: String(rest[..<colon.lowerBound]), text: String(rest[colon.upperBound...]))
            return
        case "SYS":
            if rest.hasPrefix("#"), let (room, text) = Self.word(rest) {
                self = .system(room: String(room.dropFirst()), text: String(text))
            } else {
                self = .system(room: nil, text: String(rest))
            }
            return
        case "ERR":
            if let (code, text) = Self.word(rest) {
                self = .error(code: String(code), text: String(text))
            } else {
                self = .error(code: String(rest), text: "")
            }
            return
        default:
            break
        }
        self = .other(line)
    }

    /// The first space-separated word of `text` and everything after that one space.
    private static func word(_ text: Substring) -> (Substring, Substring)? {
        guard let space = text.firstIndex(of: " ") else { return nil }
        return (text[..<space], text[text.index(after: space)...])
    }
}

/// A line for the screen, with the kind that picks its colour.
public struct DisplayLine: Equatable, Sendable {
    public enum Kind: Equatable, Sendable, CaseIterable {
        /// What you said (echoed locally: the server never sends your own lines back).
        case own
        /// Someone else's message or action.
        case message
        /// A private message, to or from you.
        case privateMessage
        /// Server notices: welcome, joins and leaves, replies to commands.
        case system
        /// `ERR` lines and the client's own error reports.
        case error
    }

    public let kind: Kind
    public let text: String

    public init(_ kind: Kind, _ text: String) {
        self.kind = kind
        self.text = DisplayLine.sanitize(text)
    }

    /// Makes a line safe to print. chatd refuses all of this in user text, but a client must not trust that
    /// the peer is chatd:
    /// - terminal controls (C0 but tab, DEL, C1) become U+FFFD: an escape sequence could rewrite the screen;
    /// - so do U+2028 and U+2029: whatever reads our output line by line could split there;
    /// - a bidi embedding, override or isolate (U+202A–U+202E, U+2066–U+2069) left open is closed at the end
    ///   of the line, and a closer with nothing of its kind open is dropped, so no reordering reaches the
    ///   next line or what the client prints after the text.
    public static func sanitize(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { isControl($0) || isBidi($0) }) else { return text }
        var clean = String.UnicodeScalarView()
        var open: [Unicode.Scalar] = []  // the closer each open control needs, innermost last
        for scalar in text.unicodeScalars {
            if isControl(scalar) {
                clean.append("\u{FFFD}")
                continue
            }
            switch scalar.value {
            case 0x202A, 0x202B, 0x202D, 0x202E:
                open.append("\u{202C}")
            case 0x2066, 0x2067, 0x2068:
                open.append("\u{2069}")
            case 0x202C, 0x2069:
                // UAX #9: a PDI also closes the embeddings opened inside its isolate; an unmatched closer is dropped.
                if scalar == "\u{2069}", let isolate = open.lastIndex(of: "\u{2069}") {
                    for closer in open[(isolate + 1)...].reversed() { clean.append(closer) }
                    open.removeSubrange(isolate...)
                } else if scalar == "\u{202C}", open.last == "\u{202C}" {
                    open.removeLast()
                } else {
                    continue
                }
            default:
                break
            }
            clean.append(scalar)
        }
        for closer in open.reversed() { clean.append(closer) }
        return String(clean)
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return (v < 0x20 && v != 0x09) || (v >= 0x7F && v < 0xA0) || v == 0x2028 || v == 0x2029
    }

    private static func isBidi(_ scalar: Unicode.Scalar) -> Bool {
        (0x202A...0x202E).contains(scalar.value) || (0x2066...0x2069).contains(scalar.value)
    }

    /// How a server line is shown; `currentRoom` is left out of lines about it, to keep them short.
    public static func from(_ line: ServerLine, currentRoom: String?) -> DisplayLine {
        func roomPrefix(_ room: String) -> String { room == currentRoom ? "" : "#\(room) " }
        switch line {
        case .message(let room, let from, let text):
            return DisplayLine(.message, "\(roomPrefix(room))\(from): \(text)")
        case .action(let room, let from, let text):
            return DisplayLine(.message, "\(roomPrefix(room))* \(from) \(text)")
        case .privateMessage(let from, let text):
            return DisplayLine(.privateMessage, "[from \(from)] \(text)")
        case .system(let room, let text):
            return DisplayLine(.system, "-- " + (room.map { "#\($0) " } ?? "") + text)
        case .error(let code, let text):
            return DisplayLine(.error, "!! \(text.isEmpty ? code : text) [\(code)]")
        case .other(let text):
            return DisplayLine(.system, text)
        }
    }
}

/// ANSI colours per kind (SGR), or none.
public struct Palette: Sendable {
    public let enabled: Bool

    public init(enabled: Bool) { self.enabled = enabled }

    /// Colours are on only for a terminal, and never when `NO_COLOR` is set to anything non-empty (no-color.org).
    public static func wanted(stdoutIsTerminal: Bool, environment: [String: String]) -> Bool {
        guard stdoutIsTerminal else { return false }
        if let value = environment["NO_COLOR"], !value.isEmpty { return false }
        if environment["TERM"] == "dumb" { return false }
        return true
    }

    public static func sgr(for kind: DisplayLine.Kind) -> String {
        switch kind {
        case .own: return "32"             // green
        case .message: return "0"          // default
        case .privateMessage: return "1;35"  // bold magenta
        case .system: return "2;36"        // dim cyan
        case .error: return "1;31"         // bold red
        }
    }

    public func paint(_ text: String, _ kind: DisplayLine.Kind) -> String {
        guard enabled, kind != .message else { return text }
        return "\u{1B}[\(Self.sgr(for: kind))m\(text)\u{1B}[0m"
    }

    /// A bold prompt, so it stands apart from the text after it.
    public func prompt(_ text: String) -> String {
        enabled ? "\u{1B}[1m\(text)\u{1B}[0m" : text
    }
}

/// `HH:MM:SS ` for `--timestamps`.
public func timestampPrefix(hour: Int, minute: Int, second: Int) -> String {
    func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
    return "\(two(hour)):\(two(minute)):\(two(second)) "
}
