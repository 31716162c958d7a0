// The native protocol's words, in one place: the front writes them, and the client and the load generator
// read them from here instead of re-parsing prose (docs/PROTOCOL.md is their contract).

public enum NativeVocabulary {
    /// Every server line starts with one of these tags and a space.
    public enum Tag {
        public static let system = "SYS"
        public static let message = "MSG"
        public static let action = "ACT"
        public static let privateMessage = "PRIV"
        public static let error = "ERR"
    }

    /// The first line on every connection.
    public static let hello = "SYS Hello: chatd protocol 1. Send your name: 1-32 letters, digits, _ - ."
    /// A line starting with this says the name was accepted: `SYS Welcome: NAME. You are in #ROOM; online (N): ...`.
    public static let welcomePrefix = "SYS Welcome: "
    /// `SYS Welcome: ` is followed by the name and this, then the room.
    public static let welcomeRoomSeparator = ". You are in #"
    /// `SYS Missed: N lines in #ROOM; ...`: a slow reader's notice.
    public static let missedPrefix = "SYS Missed: "
    /// `SYS #ROOM Online: NAME`.
    public static func onlinePrefix(room: String) -> String { "SYS #\(room) Online: " }

    /// The stable error codes (`ERR CODE EXPLANATION`), as docs/PROTOCOL.md §5 lists them.
    public enum ErrorCode: String, CaseIterable, Sendable {
        case invalidUTF8 = "invalid-utf8"
        case controlCharacter = "control-character"
        case lineSeparator = "line-separator"
        case unbalancedBidi = "unbalanced-bidi"
        case lineTooLong = "line-too-long"
        case rateLimited = "rate-limited"
        case nameRequired = "name-required"
        case nameInvalid = "name-invalid"
        case nameTaken = "name-taken"
        case passwordRequired = "password-required"
        case passwordIncorrect = "password-incorrect"
        case roomInvalid = "room-invalid"
        case alreadyInRoom = "already-in-room"
        case tooManyRooms = "too-many-rooms"
        case notInRoom = "not-in-room"
        case moderated = "moderated"
        case noSuchUser = "no-such-user"
        case targetBusy = "target-busy"
        case lineTimeout = "line-timeout"
        case badArguments = "bad-arguments"
        case unknownCommand = "unknown-command"
        case nameTimeout = "name-timeout"
        case idleTimeout = "idle-timeout"
        case queueOverflow = "queue-overflow"
        case writeTimeout = "write-timeout"
        case killed = "killed"
        case serverFull = "server-full"
        case tooManyConnections = "too-many-connections"
        case throttled = "throttled"
        case serverBusy = "server-busy"
    }

    /// `ERR CODE EXPLANATION`.
    public static func errorLine(_ code: ErrorCode, _ explanation: String) -> String {
        "\(Tag.error) \(code.rawValue) \(explanation)"
    }

    /// The name and room of a welcome line, or nil if `line` is not one.
    public static func parseWelcome(_ line: Substring) -> (name: String, room: String)? {
        guard line.hasPrefix(welcomePrefix) else { return nil }
        let body = line.dropFirst(welcomePrefix.count)
        guard let separator = body.firstRange(of: welcomeRoomSeparator) else { return nil }
        let name = String(body[..<separator.lowerBound])
        let afterHash = body[separator.upperBound...]
        guard let end = afterHash.firstIndex(of: ";") else { return nil }
        let room = String(afterHash[..<end])
        guard !name.isEmpty, !room.isEmpty else { return nil }
        return (name, room)
    }
}
