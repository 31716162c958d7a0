// SettingText: the pure half of chatd's configuration — the file's `key = value` grammar, the strict syntax
// of every numeric value, closed ranges, and the seconds → nanoseconds conversion. It lives in ChatCore
// (no syscalls, no Foundation) so that the libFuzzer build, which compiles ChatCore's sources only, covers
// it; ChatServer's table of settings and its file reader are built on it.

/// The configuration file's text: one `key = value` per line, `#` starts a comment, blank lines are ignored.
/// The text must be UTF-8 (a byte-order mark at the very start is skipped, as editors on some systems write
/// one) without control characters other than tab; lines may end in CRLF.
public enum ConfigText {
    /// The largest configuration file accepted, in bytes. A real file is a few KiB; the limit keeps a wrong
    /// path (a log, a disk image) from stalling the event loop on SIGHUP or exhausting memory.
    public static let maxFileBytes = 1 << 20

    public struct Entry: Equatable, Sendable {
        public let key: String
        public let value: String
        public let line: Int

        public init(key: String, value: String, line: Int) {
            self.key = key
            self.value = value
            self.line = line
        }
    }

    /// A line that cannot be read, by number (1-based).
    public struct Failure: Error, Equatable, Sendable, CustomStringConvertible {
        public let line: Int
        public let message: String
        public var description: String { "line \(line): \(message)" }

        public init(line: Int, message: String) {
            self.line = line
            self.message = message
        }
    }

    public static func parse(_ text: String) throws(Failure) -> [Entry] {
        try parse(bytes: Array(text.utf8))
    }

    public static func parse(bytes input: [UInt8]) throws(Failure) -> [Entry] {
        var bytes = input[...]
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        var entries: [Entry] = []
        var lineNumber = 0
        for var rawLine in bytes.split(separator: 10, omittingEmptySubsequences: false) {
            lineNumber += 1
            if rawLine.last == 13 { rawLine = rawLine.dropLast() }  // CRLF, from an editor on Windows
            guard let text = String(validating: rawLine, as: UTF8.self) else {
                throw Failure(line: lineNumber, message: "not valid UTF-8")
            }
            if let control = text.unicodeScalars.first(where: { ($0.value < 0x20 && $0 != "\t") || (0x7F...0x9F).contains($0.value) }) {
                throw Failure(line: lineNumber, message: "control character U+\(hex(control.value)) is not allowed")
            }
            var line = Substring(text)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let trimmed = line.trimmingSettingSpaces()
            if trimmed.isEmpty { continue }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw Failure(line: lineNumber, message: "expected key = value, got \(quoted(trimmed))")
            }
            let key = trimmed[..<equals].trimmingSettingSpaces()
            var value = trimmed[trimmed.index(after: equals)...].trimmingSettingSpaces()
            if value.count >= 2 && value.hasPrefix("\"") && value.hasSuffix("\"") { value = value.dropFirst().dropLast() }
            guard !key.isEmpty else { throw Failure(line: lineNumber, message: "missing key before =") }
            entries.append(Entry(key: String(key), value: String(value), line: lineNumber))
        }
        return entries
    }

    /// `text` in quotes for an error message: at most 60 characters, so that one error stays one short line.
    public static func quoted(_ text: some StringProtocol) -> String {
        let shown = text.count > 60 ? String(text.prefix(57)) + "..." : String(text)
        return "\"" + shown + "\""
    }

    static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

extension Substring {
    /// Without leading and trailing spaces, tabs and CRs (a file written on Windows ends its lines in CRLF).
    public func trimmingSettingSpaces() -> Substring {
        var s = self
        while let first = s.first, first == " " || first == "\t" || first == "\r" { s = s.dropFirst() }
        while let last = s.last, last == " " || last == "\t" || last == "\r" { s = s.dropLast() }
        return s
    }
}

/// The strict syntax of numeric setting values. Only plain decimal notation is accepted: no sign (every
/// setting is 0 or more, and `-0` would be a second spelling of 0), no exponent (`1e11` hides its size), no
/// hex, no `nan`/`inf`, no surrounding junk. Being strict keeps every accepted value easy to read and check.
public enum SettingNumber {
    public enum Parsed<Value: Sendable & Equatable>: Sendable, Equatable {
        case value(Value)
        /// Not in the accepted syntax.
        case malformed
        /// Well-formed, but too large to represent (so certainly outside every range).
        case tooLarge
    }

    /// ASCII digits, optionally grouped by single `_` between digits (`10_000`).
    public static func integer(_ text: some StringProtocol) -> Parsed<Int> {
        var result = 0
        var sawDigit = false
        var previousWasUnderscore = false
        var overflow = false
        for byte in text.utf8 {
            if byte == UInt8(ascii: "_") {
                guard sawDigit, !previousWasUnderscore else { return .malformed }
                previousWasUnderscore = true
                continue
            }
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return .malformed }
            sawDigit = true
            previousWasUnderscore = false
            if overflow { continue }  // keep checking the syntax of the rest
            let (times10, o1) = result.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            if o1 || o2 { overflow = true } else { result = sum }
        }
        guard sawDigit, !previousWasUnderscore else { return .malformed }
        return overflow ? .tooLarge : .value(result)
    }

    /// Digits with an optional fraction: `10`, `0.25`, `1_000.5`. At most 30 digits in all: more than
    /// that is never a sensible setting, and it bounds the work of converting the text.
    public static func decimal(_ text: some StringProtocol) -> Parsed<Double> {
        var digits = 0
        var sawPoint = false
        var digitsAfterPoint = 0
        var previousWasUnderscore = false
        var plain = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                digits += 1
                if sawPoint { digitsAfterPoint += 1 }
                previousWasUnderscore = false
                plain.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "_"):
                guard digits > 0, !previousWasUnderscore, !sawPoint || digitsAfterPoint > 0 else { return .malformed }
                previousWasUnderscore = true
            case UInt8(ascii: "."):
                guard digits > 0, !sawPoint, !previousWasUnderscore else { return .malformed }
                sawPoint = true
                plain.append(".")
            default:
                return .malformed
            }
        }
        guard digits > 0, !previousWasUnderscore, !sawPoint || digitsAfterPoint > 0 else { return .malformed }
        if digits > 30 { return .tooLarge }
        guard let value = Double(plain), value.isFinite else { return .tooLarge }
        return .value(value)
    }
}

/// A closed range of accepted values, optionally with 0 accepted outside it as "off" (or "unlimited").
public struct SettingRange: Sendable, Equatable {
    public let lowerBound: Double
    public let upperBound: Double
    /// What 0 means when it is accepted below `lowerBound` ("off", "unlimited"); nil when it is not.
    public let zeroMeans: String?

    public init(_ range: ClosedRange<Double>, zeroMeans: String? = nil) {
        precondition(range.lowerBound.isFinite && range.upperBound.isFinite)
        lowerBound = range.lowerBound
        upperBound = range.upperBound
        zeroMeans.map { _ in precondition(range.lowerBound > 0) }
        self.zeroMeans = zeroMeans
    }

    /// False for NaN and the infinities whatever the bounds.
    public func contains(_ value: Double) -> Bool {
        guard value.isFinite else { return false }
        if zeroMeans != nil && value == 0 { return true }
        return value >= lowerBound && value <= upperBound
    }

    public func contains(_ value: Int) -> Bool {
        // Every bound is far below 2^53, so a value outside ±2^53 is outside the range, and one inside
        // converts to Double exactly.
        guard value.magnitude <= 1 << 53 else { return false }
        return contains(Double(value))
    }

    /// `0 (off) or 1 to 3600`, `16 to 1048576`.
    public var description: String {
        let span = "\(Self.format(lowerBound)) to \(Self.format(upperBound))"
        guard let zeroMeans else { return span }
        return "0 (\(zeroMeans)) or \(span)"
    }

    /// `20` rather than `20.0`, without trapping for any value (unlike `Int(x)` on a huge or non-finite x).
    public static func format(_ value: Double) -> String {
        if value.isFinite && value.magnitude < 1e15 && value == value.rounded() { return String(Int(value)) }
        return String(value)
    }
}

public enum Nanoseconds {
    /// The largest duration any conversion returns: about 146 years. Added to a monotonic clock reading
    /// (time since boot) it cannot overflow a UInt64 for as long as any machine runs.
    public static let maximum: UInt64 = 1 << 62

    /// `seconds` in nanoseconds, saturating: NaN and anything ≤ 0 give 0, anything above `maximum` gives
    /// `maximum`. `UInt64(seconds * 1e9)` traps instead for values ≥ 2^64 ns (18,446,744,074 s) and NaN.
    public static func saturating(seconds: Double) -> UInt64 {
        guard seconds > 0 else { return 0 }  // false for NaN too
        let ns = seconds * 1e9
        guard ns < Double(maximum) else { return maximum }
        return UInt64(ns)
    }
}
