// KeyDecoder: turns the bytes a terminal in raw mode sends into keys: UTF-8 text, control keys and the
// escape sequences of xterm-style terminals (CSI and SS3). Sequences and UTF-8 characters split across
// reads are held until the rest arrives.

/// One key press (or a run of typed or pasted text).
public enum Key: Equatable, Sendable {
    case text(String)
    case enter
    case backspace
    case delete
    case left, right, home, end, up, down
    case wordLeft, wordRight
    /// Ctrl-D: end of input on an empty line, delete under the cursor otherwise.
    case endOfInput
    /// Ctrl-C.
    case interrupt
    /// Ctrl-U, Ctrl-K, Ctrl-W.
    case killToStart, killToEnd, deleteWordBackward
    /// Ctrl-L.
    case redraw
    /// Anything else (Tab, function keys, unsupported sequences): ignored by the editor.
    case ignored
}

public struct KeyDecoder: Sendable {
    private var pending: [UInt8] = []

    public init() {}

    /// Decodes `bytes` (appended to anything held from before) into keys.
    public mutating func feed<S: Sequence>(_ bytes: S) -> [Key] where S.Element == UInt8 {
        pending.append(contentsOf: bytes)
        var keys: [Key] = []
        var text: [UInt8] = []
        var i = 0
        func flushText() {
            if !text.isEmpty {
                keys.append(.text(String(decoding: text, as: UTF8.self)))
                text.removeAll()
            }
        }
        let bytes = pending
        let n = bytes.count
        scan: while i < n {
            let byte = bytes[i]
            if byte == 0x1B {
                guard let (key, length) = Self.escapeSequence(bytes, at: i) else { break scan }  // incomplete: wait
                flushText()
                keys.append(key)
                i += length
                continue
            }
            if byte < 0x20 || byte == 0x7F {
                flushText()
                keys.append(Self.controlKey(byte))
                i += 1
                continue
            }
            if byte >= 0x80 {
                let length = Self.utf8Length(lead: byte)
                if i + length > n {
                    // Only hold a real lead byte that may still be completed; a stray byte is decoded (as U+FFFD).
                    if length > 1 && bytes[(i + 1)...].allSatisfy({ $0 & 0xC0 == 0x80 }) { break scan }
                    text.append(contentsOf: bytes[i...])
                    i = n
                    break scan
                }
                text.append(contentsOf: bytes[i..<(i + length)])
                i += length
                continue
            }
            text.append(byte)
            i += 1
        }
        flushText()
        pending = Array(bytes[i...])
        return keys
    }

    static func utf8Length(lead: UInt8) -> Int {
        switch lead {
        case 0xC2...0xDF: return 2
        case 0xE0...0xEF: return 3
        case 0xF0...0xF4: return 4
        default: return 1  // continuation or invalid lead: one byte, decoded as U+FFFD
        }
    }

    static func controlKey(_ byte: UInt8) -> Key {
        switch byte {
        case 0x0D, 0x0A: return .enter
        case 0x7F, 0x08: return .backspace
        case 0x01: return .home       // Ctrl-A
        case 0x05: return .end        // Ctrl-E
        case 0x02: return .left       // Ctrl-B
        case 0x06: return .right      // Ctrl-F
        case 0x10: return .up         // Ctrl-P
        case 0x0E: return .down       // Ctrl-N
        case 0x04: return .endOfInput // Ctrl-D
        case 0x03: return .interrupt  // Ctrl-C
        case 0x15: return .killToStart         // Ctrl-U
        case 0x0B: return .killToEnd           // Ctrl-K
        case 0x17: return .deleteWordBackward  // Ctrl-W
        case 0x0C: return .redraw              // Ctrl-L
        default: return .ignored
        }
    }

    /// The key for the escape sequence starting at `start` and its length, or nil if it is incomplete.
    static func escapeSequence(_ bytes: [UInt8], at start: Int) -> (Key, Int)? {
        let n = bytes.count
        guard start + 1 < n else { return nil }
        let second = bytes[start + 1]
        switch second {
        case UInt8(ascii: "["):
            // CSI: parameter and intermediate bytes 0x20-0x3F, then one final byte 0x40-0x7E.
            var j = start + 2
            while j < n, bytes[j] >= 0x20, bytes[j] <= 0x3F { j += 1 }
            guard j < n else { return nil }
            let final = bytes[j]
            guard final >= 0x40, final <= 0x7E else { return (.ignored, j - start) }  // malformed: drop up to here
            let parameters = String(decoding: bytes[(start + 2)..<j], as: UTF8.self)
            return (csiKey(parameters: parameters, final: final), j + 1 - start)
        case UInt8(ascii: "O"):
            guard start + 2 < n else { return nil }
            return (ss3Key(bytes[start + 2]), 3)
        case UInt8(ascii: "b"): return (.wordLeft, 2)   // Alt-B
        case UInt8(ascii: "f"): return (.wordRight, 2)  // Alt-F
        case 0x7F, 0x08: return (.deleteWordBackward, 2)  // Alt-Backspace
        case 0x1B: return (.ignored, 1)  // a lone Esc followed by another sequence
        default: return (.ignored, 2)    // Alt-something we do not bind
        }
    }

    static func csiKey(parameters: String, final: UInt8) -> Key {
        let fields = parameters.split(separator: ";", omittingEmptySubsequences: false)
        // xterm reports modifiers as the second field: 3 Alt, 5 Ctrl (e.g. ESC [1;5C is Ctrl-Right).
        let modifier = fields.count > 1 ? Int(fields[1]) ?? 1 : 1
        let wordwise = modifier == 3 || modifier == 5
        switch final {
        case UInt8(ascii: "A"): return .up
        case UInt8(ascii: "B"): return .down
        case UInt8(ascii: "C"): return wordwise ? .wordRight : .right
        case UInt8(ascii: "D"): return wordwise ? .wordLeft : .left
        case UInt8(ascii: "H"): return .home
        case UInt8(ascii: "F"): return .end
        case UInt8(ascii: "~"):
            switch fields.first.flatMap({ Int($0) }) {
            case 1, 7: return .home
            case 4, 8: return .end
            case 3: return .delete
            default: return .ignored  // Insert, PageUp/Down, F5+, bracketed-paste markers
            }
        default: return .ignored
        }
    }

    static func ss3Key(_ final: UInt8) -> Key {
        switch final {
        case UInt8(ascii: "A"): return .up
        case UInt8(ascii: "B"): return .down
        case UInt8(ascii: "C"): return .right
        case UInt8(ascii: "D"): return .left
        case UInt8(ascii: "H"): return .home
        case UInt8(ascii: "F"): return .end
        default: return .ignored
        }
    }
}
