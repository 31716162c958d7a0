// DisplayWidth: how many terminal cells a grapheme cluster occupies, so the line editor can place the
// cursor under CJK text and emoji. Terminals decide width per code point (wcwidth), not per grapheme,
// so this follows the common case: the first scalar decides, an emoji presentation makes it 2.

public enum DisplayWidth {
    /// Cells taken by one grapheme cluster: 0 (lone combining marks, format characters, controls), 1 or 2.
    public static func of(_ character: Character) -> Int {
        let scalars = character.unicodeScalars
        guard let first = scalars.first else { return 0 }
        let value = first.value
        if value < 0x20 || (value >= 0x7F && value < 0xA0) { return 0 }
        if value < 0x7F { return 1 }  // ASCII fast path
        let properties = first.properties
        if properties.isEmojiPresentation { return 2 }
        // A text-default emoji (☺, ❤, a keycap digit) turns wide when VS16 (U+FE0F) asks for emoji style.
        if properties.isEmoji && scalars.contains(where: { $0.value == 0xFE0F }) { return 2 }
        if isEastAsianWide(value) { return 2 }
        switch properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format: return 0
        default: return 1
        }
    }

    /// Cells taken by `text`.
    public static func of<S: StringProtocol>(_ text: S) -> Int {
        var total = 0
        for character in text { total += of(character) }
        return total
    }

    /// Cells taken by `characters[range]`.
    public static func of(_ characters: ArraySlice<Character>) -> Int {
        var total = 0
        for character in characters { total += of(character) }
        return total
    }

    /// East Asian Wide and Fullwidth blocks (UAX #11), the ranges terminals draw two cells wide.
    /// Emoji are handled by their presentation property above.
    static func isEastAsianWide(_ value: UInt32) -> Bool {
        switch value {
        case 0x1100...0x115F,  // Hangul Jamo initial consonants
             0x2E80...0x303E,  // CJK radicals, Kangxi, CJK symbols and punctuation
             0x3041...0x33FF,  // Hiragana, Katakana, Bopomofo, Hangul compatibility Jamo, CJK compatibility
             0x3400...0x4DBF,  // CJK extension A
             0x4E00...0x9FFF,  // CJK unified ideographs
             0xA000...0xA4CF,  // Yi
             0xA960...0xA97F,  // Hangul Jamo extended A
             0xAC00...0xD7A3,  // Hangul syllables
             0xF900...0xFAFF,  // CJK compatibility ideographs
             0xFE10...0xFE19,  // vertical forms
             0xFE30...0xFE6F,  // CJK compatibility forms, small form variants
             0xFF00...0xFF60,  // fullwidth forms
             0xFFE0...0xFFE6,
             0x1B000...0x1B2FF,  // Kana supplement and extensions
             0x20000...0x2FFFD,  // CJK extensions B-F
             0x30000...0x3FFFD:
            return true
        default:
            return false
        }
    }
}
