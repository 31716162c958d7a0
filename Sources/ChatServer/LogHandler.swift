// ChatLogHandler: chatd's swift-log handler. One line per event, one write(2) to stderr; journald-aware.

import ChatSys
import Logging

/// Writes each log event as one line to stderr (fd 2) with a single `write(2)`, so lines from different
/// threads never interleave and nothing sits in a buffer when the process dies.
///
/// Two formats:
/// - **journal** (stderr is connected to journald, see `stderrIsJournal`): `<N>message key=value …`,
///   where `<N>` is the syslog priority that journald strips and stores as `PRIORITY=`. No timestamp
///   (the journal has its own) and no colours.
/// - **text** (a terminal, a pipe, a file): `2025-01-31T12:00:00.123+0100 notice chatd: message key=value …`,
///   with the level coloured only when stderr is a terminal and `NO_COLOR` is unset.
///
/// Newlines inside a message or value are written as `\n`, so one event is always one line (one journal
/// entry). Metadata keys are sorted; values containing spaces, quotes or `=` are quoted.
public struct ChatLogHandler: LogHandler {
    public enum Format: Sendable, Equatable {
        case journal
        case text(colour: Bool)
    }

    public let label: String
    public let format: Format
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    /// Where lines go; a parameter only so that tests can capture them.
    private let sink: @Sendable ([UInt8]) -> Void

    /// A handler that writes to fd 2 in the format stderr calls for (`ChatLogHandler.detectFormat()`).
    public init(label: String) {
        self.init(label: label, format: Self.detectFormat(), sink: Self.writeToStderr)
    }

    public init(label: String, format: Format, sink: @escaping @Sendable ([UInt8]) -> Void) {
        self.label = label
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        if let error = event.error { merged["error"] = "\(error)" }
        sink(Array(render(level: event.level, message: event.message.description, metadata: merged).utf8))
    }

    /// The line for one event, newline included.
    public func render(level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var line: String
        switch format {
        case .journal:
            line = "<\(Self.syslogPriority(level))>"
        case .text(let colour):
            let name = colour ? Self.colour(level) + level.rawValue + "\u{1B}[0m" : level.rawValue
            line = "\(Sys.localTimestampWithMilliseconds()) \(name) \(label): "
        }
        line += Self.escapeNewlines(message)
        for key in metadata.keys.sorted() {
            line += " \(key)=\(Self.quoteIfNeeded(Self.escapeNewlines("\(metadata[key]!)")))"
        }
        line += "\n"
        return line
    }

    // MARK: Format pieces

    /// swift-log's levels as syslog priorities (RFC 5424): what journald stores as `PRIORITY=`.
    public static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    private static func colour(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: "\u{1B}[2m"
        case .info: "\u{1B}[0m"
        case .notice: "\u{1B}[1m"
        case .warning: "\u{1B}[33m"
        case .error, .critical: "\u{1B}[1;31m"
        }
    }

    private static func escapeNewlines(_ text: String) -> String {
        guard text.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return text }
        var escaped = ""
        for character in text {
            switch character {
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\r\n": escaped += "\\r\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    private static func quoteIfNeeded(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\t" }) else {
            return value
        }
        var quoted = "\""
        for character in value {
            if character == "\"" || character == "\\" { quoted.append("\\") }
            quoted.append(character)
        }
        return quoted + "\""
    }

    // MARK: Where stderr goes

    /// The format for fd 2: journal when `stderrIsJournal()`, else text, coloured on a terminal.
    public static func detectFormat() -> Format {
        if stderrIsJournal() { return .journal }
        return .text(colour: Sys.isTerminal(2) && Sys.environmentValue("NO_COLOR") == nil)
    }

    /// Whether stderr is connected to journald: systemd sets `JOURNAL_STREAM=DEVICE:INODE` for the stream it
    /// connected, and only if fd 2 is still that stream (not redirected by a shell in between) do we use the
    /// journal's conventions.
    public static func stderrIsJournal(environment value: String? = Sys.environmentValue("JOURNAL_STREAM")) -> Bool {
        guard let value else { return false }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        guard let stream = Sys.deviceAndInode(of: 2) else { return false }
        return stream.device == device && stream.inode == inode
    }

    /// One `write(2)` per line (retried only for a partial write or EINTR). Writes of up to PIPE_BUF bytes to a
    /// pipe or socket are atomic, so concurrent lines never interleave.
    @Sendable public static func writeToStderr(_ bytes: [UInt8]) {
        // Stderr gone or full: logging must never stop the server, so this gives up rather than waits.
        _ = bytes.withUnsafeBytes { Sys.writeOrGiveUp(2, $0) }
    }
}
