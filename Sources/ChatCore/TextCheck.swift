// TextCheck: decides whether a line's bytes may be relayed: valid UTF-8 and no terminal controls.

/// Why a line's bytes were refused.
public enum TextProblem: Equatable, Sendable {
    /// Not well-formed UTF-8 (overlong forms, surrogates, truncated sequences, bytes above U+10FFFF).
    case invalidUTF8
    /// A C0 control other than tab, DEL, or a C1 control (U+0080–U+009F). These drive terminals
    /// (`ESC [2J`, OSC 8 links, cursor moves), so a line carrying one is refused rather than relayed.
    case controlCharacter
}

public enum TextCheck {
    /// Checks `bytes` in one pass, without allocating. ASCII runs take the fast path.
    public static func problem(in bytes: UnsafeRawBufferPointer) -> TextProblem? {
        let n = bytes.count
        var i = 0
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
        return nil
    }

    @inline(__always)
    private static func isContinuation(_ byte: UInt8) -> Bool { byte & 0xC0 == 0x80 }
}
