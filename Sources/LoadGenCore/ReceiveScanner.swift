// ReceiveScanner: how chat-loadgen reads what a server sends to one of its clients. Pure (no syscalls, no
// allocation per byte or per message; from ChatSys only memchr), so that every way of miscounting can be
// tested byte by byte.
//
// Every message chat-loadgen sends carries a token `[[SENDER,SEQ,SENT_NS]]` (decimal numbers). Receivers find
// the tokens anywhere in the raw bytes, whatever the server puts around them (`alice: `, `:a!a@h PRIVMSG #r :`),
// and a read may end anywhere, inside a token or a line. Each line's first `headBytes` bytes are kept so the
// line can be classified (ready, `Online:`, `Missed: N`, `ERR`). Every "0 lost" in a benchmark is the count
// of tokens found here, so the rules are strict: a token has exactly three fields of at least one digit, each
// within UInt64; anything else (an empty field, overflow, a fourth field, a line break inside) is not a token.

import ChatSys

/// One message token: who sent it (sender index), its sequence number (from 1), and when (monotonic ns).
public struct MessageToken: Equatable, Sendable {
    public var sender: UInt64
    public var seq: UInt64
    public var sentAt: UInt64

    public init(sender: UInt64, seq: UInt64, sentAt: UInt64) {
        self.sender = sender
        self.seq = seq
        self.sentAt = sentAt
    }
}

/// Finds `[[SENDER,SEQ,SENT_NS]]` tokens in a stream of bytes fed in pieces, resuming a token split anywhere.
/// Call `endLine()` at each line break: a token never spans lines.
public struct TokenScanner: Sendable {
    // 0: outside a token; 1: after `[`; 2: in the fields, after `[[`; 3: after the closing `]`, wanting the second.
    @usableFromInline var state: UInt8 = 0
    @usableFromInline var field: UInt8 = 0
    /// Digits in the current field so far (a field needs at least one).
    @usableFromInline var digits: UInt8 = 0
    @usableFromInline var overflowed = false
    @usableFromInline var values = (UInt64(0), UInt64(0), UInt64(0))

    public init() {}

    /// Whether a token has begun and not ended (for tests: a line break must clear this).
    public var isInsideToken: Bool { state != 0 }

    /// A line ended: forget any token begun on it.
    @inlinable
    public mutating func endLine() {
        state = 0
    }

    @inlinable
    mutating func begin() {
        state = 2
        field = 0
        digits = 0
        overflowed = false
        values = (0, 0, 0)
    }

    @inlinable
    mutating func append(digit: UInt64) {
        func grow(_ value: inout UInt64, _ overflowed: inout Bool) {
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (plus, o2) = times.addingReportingOverflow(digit)
            value = plus
            if o1 || o2 { overflowed = true }
        }
        switch field {
        case 0: grow(&values.0, &overflowed)
        case 1: grow(&values.1, &overflowed)
        default: grow(&values.2, &overflowed)
        }
        if digits < 255 { digits += 1 }
    }

    /// Scans `base[from..<to]` (no line break inside) and calls `found` for each complete token.
    @inlinable
    public mutating func scan(_ base: UnsafePointer<UInt8>, from: Int, to: Int, _ found: (MessageToken) -> Void) {
        var j = from
        while j < to {
            if state == 0 {
                // Outside a token only `[` matters: skip to it.
                guard let bracket = Sys.firstIndex(of: 91, in: base, from: j, to: to) else { break }
                j = bracket + 1
                state = 1
                continue
            }
            let byte = base[j]
            j += 1
            switch state {
            case 1:
                if byte == 91 { begin() } else { state = 0 }
            case 2:
                if byte >= 48 && byte <= 57 {
                    append(digit: UInt64(byte - 48))
                } else if byte == 44 && field < 2 && digits > 0 {  // ","
                    field += 1
                    digits = 0
                } else if byte == 93 && field == 2 && digits > 0 {  // "]"
                    state = 3
                } else if byte == 91 {
                    // `[[[`: the last two brackets may open the token. Otherwise this `[` may start one.
                    if field == 0 && digits == 0 { begin() } else { state = 1 }
                } else {
                    state = 0
                }
            default:
                if byte == 93 {
                    state = 0
                    if !overflowed {
                        found(MessageToken(sender: values.0, seq: values.1, sentAt: values.2))
                    }
                } else {
                    state = byte == 91 ? 1 : 0
                }
            }
        }
    }
}

/// The start of a completed line, as kept by `ReceiveScanner`.
public struct LineHead {
    /// The line's first bytes (at most `ReceiveScanner.headBytes`), without the `\n`.
    public let bytes: UnsafeBufferPointer<UInt8>
    /// Whether `bytes` is the whole line (false when the line was longer than the head).
    public let isWholeLine: Bool

    public init(bytes: UnsafeBufferPointer<UInt8>, isWholeLine: Bool) {
        self.bytes = bytes
        self.isWholeLine = isWholeLine
    }
}

/// One client's receive side: splits the bytes it is fed into lines (`\n`), keeps each line's head, and finds
/// tokens. The head storage (`headBytes` bytes) belongs to the caller, so thousands of clients share one
/// allocation.
public struct ReceiveScanner: Sendable {
    /// Head storage per client. A run that counts join lines by a marker (`LineClassifier.onlineMarker`, as
    /// IRC's `:nick!user@host JOIN #room`, whose source can be 30-odd bytes) keeps all of it; others keep
    /// `shortHead` (fan-out then copies less per line).
    public static let headBytes = 64
    public static let shortHead = 32

    /// Bytes of the current line's head kept so far.
    @usableFromInline var headCount = 0
    /// Bytes of the current line seen so far (saturating), to tell whether the head is the whole line.
    @usableFromInline var lineLength = 0
    @usableFromInline var tokens = TokenScanner()

    public init() {}

    /// Feeds one read's bytes. `headLimit` (at most `headBytes`): how much of each line to keep. `findTokens`:
    /// whether this client counts messages. `token` is called for each token in order, `line` at the end of
    /// each line (with its head, valid only during the call).
    @inlinable
    public mutating func consume(_ base: UnsafePointer<UInt8>, count n: Int, head: UnsafeMutablePointer<UInt8>,
                                 headLimit: Int = ReceiveScanner.headBytes,
                                 findTokens: Bool, token: (MessageToken) -> Void, line: (LineHead) -> Void) {
        let headLimit = min(max(headLimit, 0), Self.headBytes)
        var i = 0
        while i < n {
            let lineEnd = Sys.firstIndex(of: 10, in: base, from: i, to: n) ?? n
            if headCount < headLimit {
                let take = min(headLimit - headCount, lineEnd - i)
                (head + headCount).update(from: base + i, count: take)
                headCount += take
            }
            let (length, overflow) = lineLength.addingReportingOverflow(lineEnd - i)
            lineLength = overflow ? Int.max : length
            if findTokens { tokens.scan(base, from: i, to: lineEnd, token) }
            if lineEnd == n { return }
            line(LineHead(bytes: UnsafeBufferPointer(start: head, count: headCount), isWholeLine: lineLength == headCount))
            headCount = 0
            lineLength = 0
            tokens.endLine()
            i = lineEnd + 1
        }
    }
}

/// What a line from the server means to the load generator.
public enum LineKind: Equatable, Sendable {
    /// The line that makes a waiting client ready (a welcome, the end of NAMES, ...).
    case ready
    /// A room's `Online:` announcement.
    case online
    /// The slow-reader notice: how many messages the server says it did not deliver. nil when the number
    /// cannot be read safely (absent, beyond Int, or possibly cut off by the head): counting nothing then is
    /// the safe side, since a missed count larger than the truth would hide lost messages.
    case missed(Int?)
    /// An error line (`ERR CODE ...`, or RESP's `-ERR ...`): the code, for the report.
    case error(code: String)
    case other
}

/// Tells the kinds of line apart by their starts.
public struct LineClassifier: Sendable {
    public let readyPrefix: [UInt8]
    public let onlinePrefix: [UInt8]
    public let missedPrefix: [UInt8]
    /// Like `onlinePrefix`, for announcements whose start varies (IRC's `:nick!user@host JOIN #room`): a line
    /// whose head contains this is `online`.
    public let onlineMarker: [UInt8]

    /// Empty prefixes and markers never match.
    public init(readyPrefix: String, onlinePrefix: String?, onlineMarker: String? = nil, missedPrefix: String?) {
        self.readyPrefix = Array(readyPrefix.utf8)
        self.onlinePrefix = Array((onlinePrefix ?? "").utf8)
        self.onlineMarker = Array((onlineMarker ?? "").utf8)
        self.missedPrefix = Array((missedPrefix ?? "").utf8)
    }

    /// How much of each line the scanner must keep for this classifier.
    public var headLimit: Int { onlineMarker.isEmpty ? ReceiveScanner.shortHead : ReceiveScanner.headBytes }

    /// The kind of the line whose head is `line`. `awaitingReady`: only a client waiting to become ready
    /// takes a line as `ready` (a ready client treats it like any other line).
    public func classify(_ line: LineHead, awaitingReady: Bool) -> LineKind {
        let head = line.bytes
        let count = head.count
        func starts(with prefix: [UInt8]) -> Bool {
            guard !prefix.isEmpty, count >= prefix.count else { return false }
            for k in 0..<prefix.count where head[k] != prefix[k] { return false }
            return true
        }
        func contains(_ marker: [UInt8]) -> Bool {
            guard !marker.isEmpty, count >= marker.count else { return false }
            var k = 0
            while k + marker.count <= count {
                if head[k] == marker[0] {
                    var m = 1
                    while m < marker.count && head[k + m] == marker[m] { m += 1 }
                    if m == marker.count { return true }
                }
                k += 1
            }
            return false
        }
        if awaitingReady && starts(with: readyPrefix) { return .ready }
        if starts(with: onlinePrefix) || contains(onlineMarker) { return .online }
        if starts(with: missedPrefix) {
            var value = 0
            var k = missedPrefix.count
            var overflow = false
            while k < count, head[k] >= 48, head[k] <= 57 {
                let (times, o1) = value.multipliedReportingOverflow(by: 10)
                let (plus, o2) = times.addingReportingOverflow(Int(head[k] - 48))
                value = plus
                overflow = overflow || o1 || o2
                k += 1
            }
            let mayBeCut = k == count && !line.isWholeLine
            return .missed(k == missedPrefix.count || overflow || mayBeCut ? nil : value)
        }
        if count >= 4 && (head[0] == 69 && head[1] == 82 && head[2] == 82 && head[3] == 32  // "ERR "
                          || head[0] == 45 && head[1] == 69 && head[2] == 82 && head[3] == 82) {  // "-ERR"
            var end = 4
            while end < count && head[end] != 32 && head[end] != 13 { end += 1 }
            return .error(code: String(decoding: UnsafeBufferPointer(rebasing: head[0..<end]), as: UTF8.self))
        }
        return .other
    }
}
