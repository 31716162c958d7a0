// IRCMessage: one IRC line parsed in place. Grammar: RFC 1459 §2.3.1 as RFC 2812 and modern.ircdocs.horse
// state it, with IRCv3 message tags in front:
//
//     ['@' tags SPACE] [':' source SPACE] command *(SPACE+ middle) [SPACE+ ':' trailing]
//
// Learned from Ergo's ircmsg (irc-go `ircmsg/message.go`) and InspIRCd (`core_serialize_rfc.cpp`): runs of
// spaces separate parts, a line's terminator counts against the 512-byte limit whether or not the framer
// kept it, tags over the client's half of the tag space get 417. Unlike both, a body over 510 bytes is not
// cut and processed: it is refused, so that a message is relayed whole or not at all.

/// Why a line is not an IRC message.
public enum IRCParseError: Error, Equatable, Sendable {
    /// Nothing but spaces. RFC 1459 §2.3.1: empty messages are silently ignored.
    case empty
    /// NUL, CR or LF inside the line: no field may hold them, and relaying one would let the sender start a
    /// line of its own choosing for every reader.
    case forbiddenByte
    /// The tag data is longer than the parser's limit (`IRCLimits.maxClientTagDataBytes` from a client): 417.
    case tagsTooLong
    /// Prefix, command and parameters exceed `IRCLimits.maxBodyBytes` (512 with CR LF): 417 ERR_INPUTTOOLONG.
    case tooLong
    /// A tag value is not UTF-8 (IRCv3 message-tags requires it).
    case invalidTagValue
    /// Tags or a source, then nothing (or a source with no space after it).
    case noCommand
    /// The command is neither letters only nor exactly three digits.
    case invalidCommand
}

/// A run of bytes inside the parsed line. Lines are at most 8,191 + 512 bytes, so 16 bits are enough and the
/// message stays small enough to pass around by value.
@usableFromInline
struct IRCSpan: Equatable, Sendable {
    @usableFromInline var start: UInt16
    @usableFromInline var count: UInt16

    @inlinable init(_ start: Int, _ end: Int) {
        self.start = UInt16(truncatingIfNeeded: start)
        self.count = UInt16(truncatingIfNeeded: end - start)
    }

    static let none = IRCSpan(0, 0)

    @inlinable func bytes(in line: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: line[Int(start)..<Int(start) + Int(count)])
    }
}

/// One parsed message. It points into the line it was parsed from and is valid only while those bytes are:
/// like the framer's lines, use it inside the callback that delivered the line.
///
/// Allocation: none. The parameters are offsets in a fixed inline array of 15, the command is recognised by
/// a hash lookup of a packed integer, the tags are scanned lazily. What allocates is asked for by name:
/// `parameterString(_:)`, `commandName`, `IRCTag.value`, and the first `IRCCommand` recognition (which builds
/// the verb table once per process).
public struct IRCMessage {
    /// The line as given (without its terminator); every accessor below returns part of it.
    public let line: UnsafeRawBufferPointer
    /// The recognised command.
    public let command: IRCCommand
    /// How many parameters, 0 to `IRCLimits.maxParameters`.
    public let parameterCount: Int
    /// Whether the last parameter came after a `:` (it may then be empty or contain spaces).
    public let lastParameterIsTrailing: Bool
    @usableFromInline let tagSpan: IRCSpan
    @usableFromInline let sourceSpan: IRCSpan?
    @usableFromInline let commandSpan: IRCSpan
    @usableFromInline var parameterSpans: InlineArray<15, IRCSpan>

    /// Parses one framed line: bytes without their `\n` (a `\r` left at the end is dropped, for framers that
    /// split on bare LF). `maxTagDataBytes` is the tag data allowed between `@` and the space: a server takes
    /// `IRCLimits.maxClientTagDataBytes` from clients.
    public init(parsing input: UnsafeRawBufferPointer,
                maxTagDataBytes: Int = IRCLimits.maxClientTagDataBytes) throws(IRCParseError) {
        precondition(maxTagDataBytes >= 0 && maxTagDataBytes <= IRCLimits.maxTagDataBytes, "tag limit out of range")
        var end = input.count
        if end > 0 && input[end - 1] == ASCII.carriageReturn { end -= 1 }
        let line = UnsafeRawBufferPointer(rebasing: input[0..<end])
        self.line = line

        var i = 0
        var tags = IRCSpan.none
        var bodyStart = 0
        if end > 0 && line[0] == ASCII.at {
            var space = 1
            let limit = min(end, 1 + maxTagDataBytes + 1)  // never scan past what could be allowed
            while space < limit && line[space] != ASCII.space { space += 1 }
            // `space < limit`, not `< end`: a space found just past the scan would let one byte too many in.
            guard space < limit, line[space] == ASCII.space else {
                throw space - 1 > maxTagDataBytes ? .tagsTooLong : .noCommand
            }
            tags = IRCSpan(1, space)
            bodyStart = space + 1
            i = bodyStart
        }
        // Lengths before contents: everything below is linear in them, and a too-long line gets 417 whatever
        // else is wrong with it.
        if end - bodyStart > IRCLimits.maxBodyBytes { throw .tooLong }
        if Self.containsForbiddenByte(line) { throw .forbiddenByte }
        if tags.count > 0, !Self.tagValuesAreUTF8(tags.bytes(in: line)) { throw .invalidTagValue }
        self.tagSpan = tags

        while i < end && line[i] == ASCII.space { i += 1 }
        if i == end { throw tags.count > 0 || bodyStart > 0 ? .noCommand : .empty }

        if line[i] == ASCII.colon {
            let sourceStart = i + 1
            while i < end && line[i] != ASCII.space { i += 1 }
            guard i < end else { throw .noCommand }
            sourceSpan = IRCSpan(sourceStart, i)
            while i < end && line[i] == ASCII.space { i += 1 }
            if i == end { throw .noCommand }
        } else {
            sourceSpan = nil
        }

        let commandStart = i
        var letters = 0
        var digits = 0
        while i < end && line[i] != ASCII.space {
            let b = line[i]
            if ASCII.isLetter(b) {
                letters += 1
            } else if ASCII.isDigit(b) {
                digits += 1
            } else {
                throw .invalidCommand
            }
            i += 1
        }
        commandSpan = IRCSpan(commandStart, i)
        let word = commandSpan.bytes(in: line)
        if digits == 0 {
            command = IRCCommand.recognise(letters: word)
        } else if letters == 0 && digits == 3 {
            command = .numeric(UInt16(word[0] &- 0x30) * 100 + UInt16(word[1] &- 0x30) * 10 + UInt16(word[2] &- 0x30))
        } else {
            throw .invalidCommand
        }

        var spans = InlineArray<15, IRCSpan>(repeating: .none)
        var count = 0
        var trailing = false
        while true {
            while i < end && line[i] == ASCII.space { i += 1 }
            if i == end { break }
            if line[i] == ASCII.colon || count == IRCLimits.maxParameters - 1 {
                // The trailing parameter, or the 15th, which RFC 2812 makes the rest of the line either way.
                let colon = line[i] == ASCII.colon
                spans[count] = IRCSpan(colon ? i + 1 : i, end)
                count += 1
                trailing = colon
                break
            }
            let start = i
            while i < end && line[i] != ASCII.space { i += 1 }
            spans[count] = IRCSpan(start, i)
            count += 1
        }
        parameterSpans = spans
        parameterCount = count
        lastParameterIsTrailing = trailing
    }

    // MARK: Reading it

    /// The `:source` sent before the command, without the colon (clients may send one; servers ignore it).
    public var source: UnsafeRawBufferPointer? { sourceSpan.map { $0.bytes(in: line) } }

    /// The command word as sent (any case).
    public var commandBytes: UnsafeRawBufferPointer { commandSpan.bytes(in: line) }

    /// The command word upper-cased, for replies such as 421 (allocates).
    public var commandName: String {
        String(decoding: commandBytes.map { ASCII.isLetter($0) ? $0 & 0xDF : $0 }, as: UTF8.self)
    }

    /// Parameter `index` (0-based), without a trailing parameter's colon.
    @inlinable
    public func parameter(_ index: Int) -> UnsafeRawBufferPointer {
        precondition(index >= 0 && index < parameterCount, "parameter index out of range")
        return parameterSpans[index].bytes(in: line)
    }

    /// Parameter `index` decoded as UTF-8 (allocates; invalid sequences become U+FFFD).
    public func parameterString(_ index: Int) -> String {
        String(decoding: parameter(index), as: UTF8.self)
    }

    /// The parameters as a collection of byte buffers (no allocation).
    public var parameters: IRCParameters { IRCParameters(message: self) }

    /// Whether the line had a tag section (even an empty one).
    public var hasTags: Bool { line.count > 0 && line[0] == ASCII.at }

    /// The tags in the order sent, keys that are not valid tag names skipped (IRCv3: such tags must not make a
    /// message invalid, so they are ignored rather than refused).
    public var tags: IRCTags { IRCTags(section: tagSpan.bytes(in: line)) }

    /// The tag named `key` (the last occurrence, as IRCv3 asks when a client repeats a key), if present.
    public func tag(_ key: some IRCBytes) -> IRCTag? {
        key.withIRCBytes { wanted in
            var found: IRCTag? = nil
            for tag in tags where tag.key.elementsEqual(wanted) { found = tag }
            return found
        }
    }

    // MARK: Parsing helpers

    private static func containsForbiddenByte(_ line: UnsafeRawBufferPointer) -> Bool {
        // One pass with no early exit, so the optimiser can vectorise it: forbidden bytes are rare.
        var seen = false
        for b in line { seen = seen || b == ASCII.nul || b == ASCII.lineFeed || b == ASCII.carriageReturn }
        return seen
    }

    private static func tagValuesAreUTF8(_ section: UnsafeRawBufferPointer) -> Bool {
        // An escape is ASCII, so the escaped and unescaped values are UTF-8 alike: check the section as sent.
        UTF8Bytes.isValid(section)
    }
}

/// A message's parameters, as a random-access collection of byte buffers.
public struct IRCParameters: RandomAccessCollection {
    let message: IRCMessage
    public var startIndex: Int { 0 }
    public var endIndex: Int { message.parameterCount }
    public subscript(position: Int) -> UnsafeRawBufferPointer { message.parameter(position) }
}

/// One message tag as sent: its key and its escaped value (empty when it has none: IRCv3 treats `key=` and
/// `key` alike).
public struct IRCTag {
    public let key: UnsafeRawBufferPointer
    public let escapedValue: UnsafeRawBufferPointer

    /// Client-only tags (`+key`) are the ones a server relays between clients that negotiated message-tags.
    public var isClientOnly: Bool { key.count > 0 && key[0] == ASCII.plus }

    /// Appends the unescaped value to `bytes`: `\:` `;`, `\s` space, `\\` backslash, `\r` CR, `\n` LF, a
    /// backslash before any other character is dropped, and a lone backslash at the end is dropped.
    public func value(into bytes: inout [UInt8]) {
        var i = 0
        let n = escapedValue.count
        while i < n {
            let b = escapedValue[i]
            i += 1
            guard b == ASCII.backslash else { bytes.append(b); continue }
            guard i < n else { break }
            let escaped = escapedValue[i]
            i += 1
            switch escaped {
            case 0x3A: bytes.append(ASCII.semicolon)  // \:
            case 0x73: bytes.append(ASCII.space)      // \s
            case 0x72: bytes.append(ASCII.carriageReturn)  // \r
            case 0x6E: bytes.append(ASCII.lineFeed)   // \n
            default: bytes.append(escaped)             // \\ and any other: the character itself
            }
        }
    }

    /// The unescaped value as a String (allocates).
    public var value: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(escapedValue.count)
        value(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// IRCv3 key names: an optional `+`, an optional vendor (a host name) and `/`, then letters, digits and
    /// hyphens. Like Ergo, `-`, `.` and `/` are accepted anywhere: the check exists to keep out keys that would
    /// break a reader, not to police vendors.
    static func isValidKey(_ key: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        if key.count > 0 && key[0] == ASCII.plus { i = 1 }
        guard i < key.count else { return false }
        while i < key.count {
            let c = key[i]
            guard ASCII.isLetter(c) || ASCII.isDigit(c) || (c >= 0x2D && c <= 0x2F) else { return false }
            i += 1
        }
        return true
    }
}

/// The tags of a message, scanned as they are iterated (no allocation).
public struct IRCTags: Sequence {
    let section: UnsafeRawBufferPointer

    public var isEmpty: Bool { var iterator = makeIterator(); return iterator.next() == nil }

    public func makeIterator() -> Iterator { Iterator(section: section) }

    public struct Iterator: IteratorProtocol {
        let section: UnsafeRawBufferPointer
        var position = 0

        public mutating func next() -> IRCTag? {
            while position < section.count {
                let start = position
                var equals = -1
                while position < section.count && section[position] != ASCII.semicolon {
                    if equals < 0 && section[position] == ASCII.equals { equals = position }
                    position += 1
                }
                let end = position
                position += 1  // past the `;`
                let keyEnd = equals < 0 ? end : equals
                let key = UnsafeRawBufferPointer(rebasing: section[start..<keyEnd])
                guard IRCTag.isValidKey(key) else { continue }
                let value = equals < 0 ? UnsafeRawBufferPointer(rebasing: section[end..<end])
                    : UnsafeRawBufferPointer(rebasing: section[(equals + 1)..<end])
                return IRCTag(key: key, escapedValue: value)
            }
            return nil
        }
    }
}
