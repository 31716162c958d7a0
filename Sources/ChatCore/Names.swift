// Names: what a user or room name may be, and the key that makes two names "the same".

/// Why a proposed name was refused.
public enum NameProblem: Equatable, Sendable {
    case empty
    case tooLong(limit: Int)
    case invalidCharacter(Character)
    case mixedScripts
    /// A default-ignorable code point (zero-width spaces and joiners, variation selectors, the combining
    /// grapheme joiner, bidi controls, ...) or a Hangul filler: invisible, so it could only make a name
    /// differ from another without looking different, or look blank.
    case invisibleCharacter(Character)
    /// Only `_`, `-`, `.` and modifier letters: nothing a reader can tell names apart by.
    case noLetterOrDigit
    /// More combining marks on one letter than `Names.maxMarksPerLetter`.
    case tooManyMarks(limit: Int)
}

public enum Names {
    /// Longest name, in characters (grapheme clusters).
    public static let maxCharacters = 32
    /// Longest name in UTF-8 bytes: stacked combining marks must not make a "32-character" name huge.
    public static let maxBytes = 128
    /// Most combining marks on one letter, counted in NFD (so `ệ` is e + 2 marks either way). Vietnamese
    /// needs 2, Tibetan stacks 3; more only serves to draw over neighbouring lines ("Zalgo" names).
    public static let maxMarksPerLetter = 4

    /// Validates a user name: 1–32 characters, each a letter (with at most 4 combining marks), an ASCII
    /// digit, `_`, `-` or `.`, and at least one letter or digit; nothing invisible (default-ignorable code
    /// points, Hangul fillers); all letters from one script (so a Latin `o` cannot hide inside a Cyrillic
    /// name); no compatibility look-alikes (full-width, mathematical or enclosed letters, other scripts'
    /// digits), which would let `ａlice`, `𝐚lice` or `bob１` pass for `alice` or `bob1`. Checked on the NFD
    /// form, so a precomposed letter and its decomposed spelling get the same verdict. Names that are
    /// valid but look like another name are caught by `lookAlikeKeys`. The bytes must be valid UTF-8.
    public static func validate(_ name: String) -> NameProblem? {
        if name.isEmpty { return .empty }
        // Length first: everything below is linear in it, and NFD must not run on unbounded input.
        if name.count > maxCharacters || name.utf8.count > maxBytes { return .tooLong(limit: maxCharacters) }
        var script: Script? = nil
        var previousWasLetter = false
        var marks = 0
        var hasLetterOrDigit = false
        for value in Skeleton.nfdValues(name.unicodeScalars) {
            let scalar = Unicode.Scalar(value)!
            if value < 0x80 {
                // ASCII, the commonest case, without the standard library's property lookups.
                switch value {
                case 0x41...0x5A, 0x61...0x7A:
                    if let script, script != .latin { return .mixedScripts }
                    script = .latin
                    hasLetterOrDigit = true
                    previousWasLetter = true
                    marks = 0
                case 0x30...0x39:
                    hasLetterOrDigit = true
                    previousWasLetter = false
                case 0x2D, 0x2E, 0x5F:  // - . _
                    previousWasLetter = false
                default:
                    return .invalidCharacter(Character(scalar))
                }
                continue
            }
            if isInvisible(scalar) { return .invisibleCharacter(Character(scalar)) }
            let properties = scalar.properties
            switch properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
                if Script.isCompatibilityLookAlike(scalar) { return .invalidCharacter(Character(scalar)) }
                let s = Script.of(scalar)
                if s != .common {
                    if let script, script != s { return .mixedScripts }
                    script = s
                }
                // Modifier letters (ʰ, ˈ, ー) alone are too slight to tell names apart.
                if properties.generalCategory != .modifierLetter { hasLetterOrDigit = true }
                previousWasLetter = true
                marks = 0
            case .nonspacingMark, .spacingMark, .enclosingMark:
                // Marks only as part of a letter: NFD spellings (e + U+0301) are allowed, a lone mark is not.
                if !previousWasLetter { return .invalidCharacter(Character(scalar)) }
                marks += 1
                if marks > maxMarksPerLetter { return .tooManyMarks(limit: maxMarksPerLetter) }
            case .decimalNumber:
                // Only 0-9: every script's digits look alike across scripts (bob1, bob١, bob１, bob𝟏).
                guard scalar.isASCII else { return .invalidCharacter(Character(scalar)) }
                previousWasLetter = false
                hasLetterOrDigit = true
            default:
                if scalar == "_" || scalar == "-" || scalar == "." {
                    previousWasLetter = false
                } else {
                    return .invalidCharacter(Character(scalar))
                }
            }
        }
        return hasLetterOrDigit ? nil : .noLetterOrDigit
    }

    /// Invisible code points: Default_Ignorable_Code_Point (U+034F, U+115F, U+1160, U+17B4, U+17B5,
    /// U+180B-U+180F, U+200B-U+200F, U+2060-U+206F, U+3164, U+FE00-U+FE0F, U+FFA0, U+E0000-U+E0FFF, ...)
    /// and, named explicitly in case a standard library lacks the property for them, the Hangul fillers,
    /// which are letters (Lo) that draw nothing.
    static func isInvisible(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x115F, 0x1160, 0x3164, 0xFFA0: return true
        default: return scalar.properties.isDefaultIgnorableCodePoint
        }
    }

    /// The identity of a name: case-folded. Swift's `String` compares and hashes by canonical equivalence,
    /// so NFC and NFD spellings of one name are one key. Upper- then lower-casing approximates full Unicode
    /// case folding without Foundation: `Олег`/`ОЛЕГ`, `straße`/`STRASSE` and final/medial sigma meet.
    public static func key(_ name: String) -> String {
        name.uppercased().lowercased()
    }

    /// The UTS #39 skeletons by which a name is compared with other names: two names look alike when
    /// they have a skeleton in common. The skeleton of one spelling is not enough, because identity is
    /// case-insensitive (`key`): whoever holds `KATE` may also appear as `kate`, so each name contributes
    /// the skeletons of three forms:
    /// - as spelled: `aIice` (capital I) looks like `alice`, which neither of its case forms shows
    ///   (`AIICE` and `aiice` do not look like `ALICE` and `alice`);
    /// - upper-cased: Greek `ΚΑΤΕ`, Cherokee `ᏦᎪᎢᎬ` and Latin `KATE` share the skeleton `KATE`, so with
    ///   `kate` online (upper-cased: `KATE`) all of them are taken, and lower-case Greek `κατε`, whose
    ///   capitals are `ΚΑΤΕ`, too;
    /// - case-folded (`key`): `Alice` (folded `alice`) meets `aIice` (spelled skeleton `alice`).
    /// Mixing cases inside the skeleton instead (lower-casing it) would merge `I` and `L`, and so `Ali`
    /// with `All`; comparing whole forms keeps each letter's shape. Order: spelled, upper, folded; no
    /// duplicates.
    public static func lookAlikeKeys(_ name: String) -> [String] {
        let upper = name.uppercased()
        let folded = upper.lowercased()  // = key(name), without upper-casing twice
        var keys = [Skeleton.of(name)]
        // A form equal to one already done has the same skeleton: skip the work (`alice` = its folded form).
        if upper != name {
            let skeleton = Skeleton.of(upper)
            if !keys.contains(skeleton) { keys.append(skeleton) }
        }
        if folded != name && folded != upper {
            let skeleton = Skeleton.of(folded)
            if !keys.contains(skeleton) { keys.append(skeleton) }
        }
        return keys
    }

    /// Room names follow user-name rules; a leading `#` is accepted and dropped.
    public static func roomName(_ raw: String) -> (name: String, problem: NameProblem?) {
        let name = raw.hasPrefix("#") ? String(raw.dropFirst()) : raw
        return (name, validate(name))
    }

    private static func code(_ c: Character) -> String {
        c.unicodeScalars.first.map { "U+" + String($0.value, radix: 16, uppercase: true) } ?? "?"
    }

    /// A human explanation of a name problem, for error lines.
    public static func explain(_ problem: NameProblem) -> String {
        switch problem {
        case .empty: return "a name cannot be empty"
        case .tooLong(let limit): return "a name has at most \(limit) characters"
        case .invalidCharacter(let c):
            return "character \(code(c)) is not allowed; use letters, digits, _ - ."
        case .mixedScripts: return "a name may not mix letters of different scripts"
        case .invisibleCharacter(let c):
            return "character \(code(c)) is invisible (a zero-width, default-ignorable or filler character); use letters, digits, _ - ."
        case .noLetterOrDigit: return "a name needs at least one letter or digit"
        case .tooManyMarks(let limit): return "at most \(limit) combining marks per letter"
        }
    }
}

/// A coarse script classification, enough to refuse mixed-script look-alike names.
/// The stdlib exposes no Unicode Script property, so this groups the scripts by their code-point blocks.
enum Script: Equatable {
    /// Letters that are formatting variants of other letters (NFKC would fold them): letterlike symbols,
    /// enclosed alphanumerics, full- and half-width forms, mathematical alphanumerics, small capitals.
    static func isCompatibilityLookAlike(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x2070...0x209F, 0x2100...0x214F, 0x2460...0x24FF, 0x1D00...0x1DBF, 0xFF00...0xFFEF,
             0x1D400...0x1D7FF, 0x1F100...0x1F1FF, 0xFB00...0xFB4F:
            return true
        default:
            return false
        }
    }

    case common, latin, greek, cyrillic, armenian, hebrew, arabic, cjk, hangul, other(UInt32)

    static func of(_ scalar: Unicode.Scalar) -> Script {
        let v = scalar.value
        switch v {
        case 0x41...0x5A, 0x61...0x7A, 0xAA, 0xBA, 0xC0...0x24F, 0x1E00...0x1EFF, 0x2C60...0x2C7F, 0xA720...0xA7FF,
             0xFF21...0xFF3A, 0xFF41...0xFF5A:
            return .latin
        case 0x370...0x3FF, 0x1F00...0x1FFF: return .greek
        case 0x400...0x52F, 0x1C80...0x1C8F, 0x2DE0...0x2DFF, 0xA640...0xA69F: return .cyrillic
        case 0x530...0x58F: return .armenian
        case 0x590...0x5FF: return .hebrew
        case 0x600...0x6FF, 0x750...0x77F, 0x8A0...0x8FF: return .arabic
        case 0x3040...0x30FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xF900...0xFAFF, 0x20000...0x2FA1F: return .cjk
        case 0x1100...0x11FF, 0xAC00...0xD7AF, 0x3130...0x318F: return .hangul
        case 0x2B0...0x2FF: return .common  // modifier letters shared by scripts
        default: return .other(v >> 7)  // same 128-code-point block: same script, as a fallback
        }
    }
}
