// TextCheck: decides whether a line's bytes may be relayed: valid UTF-8, no terminal controls, nothing that
// starts a new line for some reader, and no bidi control left open. EmbeddedText: makes user text safe to
// put inside a line the server writes (`Offline:` and `Bye:` reasons, `ERR` echoes).

/// Why a line's bytes were refused.
public enum TextProblem: Equatable, Sendable {
    /// Not well-formed UTF-8 (overlong forms, surrogates, truncated sequences, bytes above U+10FFFF).
    case invalidUTF8
    /// A C0 control other than tab, DEL, or a C1 control (U+0080–U+009F). These drive terminals
    /// (`ESC [2J`, OSC 8 links, cursor moves), so a line carrying one is refused rather than relayed.
    /// U+0085 (NEXT LINE), which some readers treat as a line break, is one of them.
    case controlCharacter
    /// U+2028 LINE SEPARATOR or U+2029 PARAGRAPH SEPARATOR. Readers that split lines on them (JavaScript's
    /// line terminators, many editors and log viewers) would see a new line begin inside the text, one whose
    /// start the sender chose: `hi<U+2028>SYS #lobby Online: alice` would pass for a server line.
    case lineSeparator
    /// A bidi embedding, override or isolate (U+202A–U+202E, U+2066–U+2069) left open at the end of the text,
    /// a closer (PDF U+202C, PDI U+2069) with nothing of its kind open, openers and closers not properly
    /// nested, or nesting deeper than `TextCheck.maxBidiDepth`. An open override reorders everything after it
    /// on the displayed line (Trojan Source): the sender's name, or the fields of a server line that follow.
    case unbalancedBidi
}

public enum TextCheck {
    /// Deepest nesting of bidi embeddings, overrides and isolates a line may use (UAX #9 allows 125; real text
    /// needs a handful). It bounds the check's state to one machine word.
    public static let maxBidiDepth = 64

    /// Checks `bytes` in one pass, without allocating. ASCII runs take the fast path; only lead byte 0xE2
    /// (U+2000–U+2FFF) pays for the separator and bidi checks.
    public static func problem(in bytes: UnsafeRawBufferPointer) -> TextProblem? {
        let n = bytes.count
        var i = 0
        // The open bidi controls as a stack of bits (1 = isolate, 0 = embedding or override), `depth` deep.
        var bidiStack: UInt64 = 0
        var bidiDepth = 0
        while i < n {
            let b0 = bytes[i]
            if b0 < 0x80 {
                if b0 < 0x20 && b0 != 0x09 { return .controlCharacter }
                if b0 == 0x7F { return .controlCharacter }
                i += 1
                continue
            }
            if b0 < 0xC2 { return .invalidUTF8 }  // continuation byte or overlong 2-byte lead
            if b0 < 0xE0 {
                guard i + 1 < n, isContinuation(bytes[i + 1]) else { return .invalidUTF8 }
                if b0 == 0xC2 && bytes[i + 1] < 0xA0 { return .controlCharacter }  // U+0080–U+009F
                i += 2
                continue
            }
            if b0 < 0xF0 {
                guard i + 2 < n else { return .invalidUTF8 }
                let b1 = bytes[i + 1]
                let b2 = bytes[i + 2]
                guard isContinuation(b1), isContinuation(b2) else { return .invalidUTF8 }
                if b0 == 0xE0 && b1 < 0xA0 { return .invalidUTF8 }  // overlong
                if b0 == 0xED && b1 >= 0xA0 { return .invalidUTF8 }  // UTF-16 surrogates
                if b0 == 0xE2 && b1 <= 0x81 {
                    // U+2000–U+207F: E2 80 xx is U+2000–U+203F, E2 81 xx is U+2040–U+207F.
                    var opens = false
                    var isolate = false
                    var closes = false
                    if b1 == 0x80 {
                        switch b2 {
                        case 0xA8, 0xA9: return .lineSeparator        // U+2028, U+2029
                        case 0xAA, 0xAB, 0xAD, 0xAE: opens = true    // LRE, RLE, LRO, RLO
                        case 0xAC: closes = true                      // PDF
                        default: break
                        }
                    } else {
                        switch b2 {
                        case 0xA6, 0xA7, 0xA8: opens = true; isolate = true  // LRI, RLI, FSI
                        case 0xA9: closes = true; isolate = true              // PDI
                        default: break
                        }
                    }
                    if opens {
                        guard bidiDepth < maxBidiDepth else { return .unbalancedBidi }
                        let bit: UInt64 = 1 &<< UInt64(bidiDepth)
                        bidiStack = isolate ? bidiStack | bit : bidiStack & ~bit
                        bidiDepth += 1
                    } else if closes {
                        // The innermost open control must be of the closer's kind: PDF ends an embedding or
                        // override, PDI an isolate. Anything else is a stray closer or improper nesting.
                        guard bidiDepth > 0 else { return .unbalancedBidi }
                        let topIsIsolate = bidiStack & (1 &<< UInt64(bidiDepth - 1)) != 0
                        guard topIsIsolate == isolate else { return .unbalancedBidi }
                        bidiDepth -= 1
                    }
                }
                i += 3
                continue
            }
            if b0 < 0xF5 {
                guard i + 3 < n else { return .invalidUTF8 }
                let b1 = bytes[i + 1]
                guard isContinuation(b1), isContinuation(bytes[i + 2]), isContinuation(bytes[i + 3]) else {
                    return .invalidUTF8
                }
                if b0 == 0xF0 && b1 < 0x90 { return .invalidUTF8 }  // overlong
                if b0 == 0xF4 && b1 >= 0x90 { return .invalidUTF8 }  // above U+10FFFF
                i += 4
                continue
            }
            return .invalidUTF8
        }
        return bidiDepth == 0 ? nil : .unbalancedBidi
    }

    @inline(__always)
    private static func isContinuation(_ byte: UInt8) -> Bool { byte & 0xC0 == 0x80 }
}

/// User text inside a server line. The server's own lines have fixed shapes (docs/PROTOCOL.md §3); user text
/// enters one only as a QUOTED string: `"`, then the text with `\` and `"` escaped as `\\` and `\"`, then `"`.
/// Before quoting, `clean` removes what could reshape the display: every run of blanks (spaces, tabs, other
/// Unicode spaces, Hangul fillers, ...) becomes one space and blanks at either end go, bidi embeddings,
/// overrides and isolates are dropped (a cut could leave one open), a character keeps at most
/// `maxMarksPerCharacter` combining marks, and the result is cut to `maxBytes`. Not on the hot path: this
/// runs for `/quit` and for error replies only.
public enum EmbeddedText {
    /// Most bytes of user text inside one server line, escapes included; a cut text ends with `…`. Small
    /// enough that a line carrying it (with a 128-byte name and room) fits the smallest ring allowed.
    public static let maxBytes = 160
    /// Most bytes of a user's word echoed in an error reply (a `/msg` target, an unknown command): a name
    /// or command word is short, and the reply only has to show which one was meant.
    public static let maxEchoBytes = 64
    /// Most combining marks kept on one character: enough for every script's clusters and emoji keycaps,
    /// not for a "Zalgo" tower that spills over the rows above and below.
    public static let maxMarksPerCharacter = 8

    /// `text` collapsed, trimmed, stripped and bounded as described above; empty if nothing visible is left.
    /// Bounded by its escaped size, so `quote(clean(text))` is at most `maxBytes` + 5 bytes.
    public static func clean<S: StringProtocol>(_ text: S, maxBytes: Int = maxBytes) -> String {
        var out = String.UnicodeScalarView()
        var escapedBytes = 0
        var pendingSpace = false
        var cut = false
        for character in text {
            var piece = String.UnicodeScalarView()
            var pieceBytes = 0
            var marks = 0
            var hadBlank = false
            for scalar in character.unicodeScalars {
                if isBlank(scalar) {
                    hadBlank = true
                    continue
                }
                if isBidiControl(scalar) { continue }
                if isMark(scalar) {
                    marks += 1
                    if marks > maxMarksPerCharacter { continue }
                }
                piece.append(scalar)
                pieceBytes += escapedLength(scalar)
            }
            // What is left of a blank (a space with marks on it) or a lone mark (after a control or at the start)
            // would join whatever comes before it in the output: gone, and a blank counts as one.
            guard let first = piece.first, !attaches(first) else {
                if hadBlank { pendingSpace = true }
                continue
            }
            let space = pendingSpace && !out.isEmpty ? 1 : 0
            if escapedBytes + space + pieceBytes > maxBytes {
                cut = true
                break
            }
            if space == 1 { out.append(" ") }
            pendingSpace = false
            out.append(contentsOf: piece)
            escapedBytes += space + pieceBytes
        }
        if cut { out.append("\u{2026}") }
        return String(out)
    }

    /// `"content"` with `\` and `"` escaped, as the protocol's QUOTED.
    public static func quote<S: StringProtocol>(_ content: S) -> String {
        var out = "\""
        for scalar in content.unicodeScalars {
            if scalar == "\"" || scalar == "\\" { out.unicodeScalars.append("\\") }
            out.unicodeScalars.append(scalar)
        }
        out += "\""
        return out
    }

    /// `quote(clean(text))`: the usual way to embed user text.
    public static func quoted<S: StringProtocol>(_ text: S, maxBytes: Int = maxBytes) -> String {
        quote(clean(text, maxBytes: maxBytes))
    }

    /// Characters that show as empty space (or nothing) and so can pad a line until the terminal wraps a
    /// forged text onto a row of its own: tab, the Unicode spaces (category Zs: U+0020, U+00A0, U+1680,
    /// U+2000–U+200A, U+202F, U+205F, U+3000), the zero-width space, the Hangul fillers, the Braille blank,
    /// and (never expected here, since lines carrying them are refused) controls and line separators.
    public static func isBlank(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if v < 0x20 || (v >= 0x7F && v < 0xA0) { return true }
        switch v {
        case 0x20, 0xA0, 0x1680, 0x2000...0x200B, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
             0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800:
            return true
        default:
            return false
        }
    }

    /// The bidi embeddings, overrides and isolates and their closers (U+202A–U+202E, U+2066–U+2069).
    public static func isBidiControl(_ scalar: Unicode.Scalar) -> Bool {
        (0x202A...0x202E).contains(scalar.value) || (0x2066...0x2069).contains(scalar.value)
    }

    private static func isMark(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    /// Scalars that join the character before them (combining marks, joiners, emoji modifiers and tags).
    private static func attaches(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x200C, 0x200D, 0x1F3FB...0x1F3FF, 0xE0020...0xE007F: return true
        default: return isMark(scalar)
        }
    }

    private static func escapedLength(_ scalar: Unicode.Scalar) -> Int {
        (scalar == "\"" || scalar == "\\") ? 2 : UTF8.width(scalar)
    }
}
