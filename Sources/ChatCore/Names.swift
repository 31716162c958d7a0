// Names: what a user or room name may be, and the key that makes two names "the same".

/// Why a proposed name was refused.
public enum NameProblem: Equatable, Sendable {
    case empty
    case tooLong(limit: Int)
    case invalidCharacter(Character)
    case mixedScripts
}

public enum Names {
    /// Longest name, in characters (grapheme clusters).
    public static let maxCharacters = 32
    /// Longest name in UTF-8 bytes: stacked combining marks must not make a "32-character" name huge.
    public static let maxBytes = 128

    /// Validates a user name: 1–32 characters, each a letter (with its combining marks), an ASCII digit, `_`, `-`
    /// or `.`; all letters from one script (so a Latin `o` cannot hide inside a Cyrillic name); no compatibility
    /// look-alikes (full-width, mathematical or enclosed letters, other scripts' digits), which would let
    /// `ａlice`, `𝐚lice` or `bob１` pass for `alice` or `bob1`. The bytes must already be valid UTF-8.
    public static func validate(_ name: String) -> NameProblem? {
        if name.isEmpty { return .empty }
        if name.count > maxCharacters || name.utf8.count > maxBytes { return .tooLong(limit: maxCharacters) }
        var script: Script? = nil
        var previousWasLetter = false
        for scalar in name.unicodeScalars {
            let properties = scalar.properties
            switch properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
                if Script.isCompatibilityLookAlike(scalar) { return .invalidCharacter(Character(scalar)) }
                let s = Script.of(scalar)
                if s != .common {
                    if let script, script != s { return .mixedScripts }
                    script = s
                }
                previousWasLetter = true
            case .nonspacingMark, .spacingMark, .enclosingMark:
                // Marks only as part of a letter: NFD spellings (e + U+0301) are allowed, a lone mark is not.
                if !previousWasLetter { return .invalidCharacter(Character(scalar)) }
            case .decimalNumber:
                // Only 0-9: every script's digits look alike across scripts (bob1, bob١, bob１, bob𝟏).
                guard scalar.isASCII else { return .invalidCharacter(Character(scalar)) }
                previousWasLetter = false
            default:
                if scalar == "_" || scalar == "-" || scalar == "." {
                    previousWasLetter = false
                } else {
                    return .invalidCharacter(Character(scalar))
                }
            }
        }
        return nil
    }

    /// The identity of a name: case-folded. Swift's `String` compares and hashes by canonical equivalence,
    /// so NFC and NFD spellings of one name are one key. Upper- then lower-casing approximates full Unicode
    /// case folding without Foundation: `Олег`/`ОЛЕГ`, `straße`/`STRASSE` and final/medial sigma meet.
    public static func key(_ name: String) -> String {
        name.uppercased().lowercased()
    }

    /// Room names follow user-name rules; a leading `#` is accepted and dropped.
    public static func roomName(_ raw: String) -> (name: String, problem: NameProblem?) {
        let name = raw.hasPrefix("#") ? String(raw.dropFirst()) : raw
        return (name, validate(name))
    }

    /// A human explanation of a name problem, for error lines.
    public static func explain(_ problem: NameProblem) -> String {
        switch problem {
        case .empty: return "a name cannot be empty"
        case .tooLong(let limit): return "a name has at most \(limit) characters"
        case .invalidCharacter(let c):
            let code = c.unicodeScalars.first.map { "U+" + String($0.value, radix: 16, uppercase: true) } ?? "?"
            return "character \(code) is not allowed; use letters, digits, _ - ."
        case .mixedScripts: return "a name may not mix letters of different scripts"
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
