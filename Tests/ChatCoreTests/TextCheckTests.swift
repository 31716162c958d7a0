@testable import ChatCore
import ChatTestSupport
import XCTest

final class TextCheckTests: XCTestCase {
    private func check(_ bytes: [UInt8]) -> TextProblem? {
        bytes.withUnsafeBytes { TextCheck.problem(in: $0) }
    }

    private func check(_ text: String) -> TextProblem? { check(Array(text.utf8)) }

    func testValidText() {
        XCTAssertNil(check(""))
        XCTAssertNil(check("hello, world! ~{}[]|\\ 0123456789"))
        XCTAssertNil(check("Привет, Олег"))
        XCTAssertNil(check("emoji 👋🏽 🇺🇦 👨‍👩‍👧"))
        XCTAssertNil(check("日本語 한국어 العربية עברית"))
        XCTAssertNil(check("tab\tinside\t"), "tab is allowed")
        XCTAssertNil(check("e\u{301} combining"))
        // Boundaries of each encoding length.
        XCTAssertNil(check([0x7E]))                    // U+007E
        XCTAssertNil(check([0xC2, 0xA0]))              // U+00A0, first scalar after C1
        XCTAssertNil(check([0xDF, 0xBF]))              // U+07FF
        XCTAssertNil(check([0xE0, 0xA0, 0x80]))        // U+0800
        XCTAssertNil(check([0xED, 0x9F, 0xBF]))        // U+D7FF, just below the surrogates
        XCTAssertNil(check([0xEE, 0x80, 0x80]))        // U+E000, just above
        XCTAssertNil(check([0xEF, 0xBF, 0xBF]))        // U+FFFF
        XCTAssertNil(check([0xF0, 0x90, 0x80, 0x80]))  // U+10000
        XCTAssertNil(check([0xF4, 0x8F, 0xBF, 0xBF]))  // U+10FFFF
    }

    func testInvalidUTF8() {
        let cases: [(String, [UInt8])] = [
            ("lone continuation", [0x80]),
            ("lone continuation after ASCII", [0x41, 0xBF, 0x41]),
            ("overlong 2-byte C0", [0xC0, 0x80]),
            ("overlong 2-byte C1", [0xC1, 0xBF]),
            ("overlong 3-byte", [0xE0, 0x80, 0x80]),
            ("overlong 3-byte upper edge", [0xE0, 0x9F, 0xBF]),
            ("overlong 4-byte", [0xF0, 0x80, 0x80, 0x80]),
            ("overlong 4-byte upper edge", [0xF0, 0x8F, 0xBF, 0xBF]),
            ("surrogate D800", [0xED, 0xA0, 0x80]),
            ("surrogate DFFF", [0xED, 0xBF, 0xBF]),
            ("above U+10FFFF", [0xF4, 0x90, 0x80, 0x80]),
            ("lead F5", [0xF5, 0x80, 0x80, 0x80]),
            ("lead FF", [0xFF]),
            ("lead FE", [0xFE]),
            ("truncated 2-byte at end", [0x41, 0xD0]),
            ("truncated 3-byte at end", [0xE2, 0x82]),
            ("truncated 4-byte at end", [0xF0, 0x9F, 0x98]),
            ("truncated 2-byte before ASCII", [0xD0, 0x41]),
            ("truncated 3-byte before ASCII", [0xE2, 0x82, 0x41]),
            ("truncated 4-byte before ASCII", [0xF0, 0x9F, 0x98, 0x41]),
            ("two leads", [0xD0, 0xD0, 0x9F]),
            ("continuation where a lead is due", [0xD0, 0x9F, 0x9F]),
        ]
        for (label, bytes) in cases {
            XCTAssertEqual(check(bytes), .invalidUTF8, label)
            // The same fault inside valid text is found too.
            XCTAssertEqual(check(Array("Привет ".utf8) + bytes + Array(" 👋".utf8)), .invalidUTF8, label + " (embedded)")
        }
    }

    func testControlCharactersRefused() {
        XCTAssertEqual(check("\u{1B}[2J"), .controlCharacter, "ESC")
        XCTAssertEqual(check("a\u{0}b"), .controlCharacter, "NUL")
        XCTAssertEqual(check("del\u{7F}"), .controlCharacter, "DEL")
        XCTAssertEqual(check("bell\u{7}"), .controlCharacter, "BEL")
        XCTAssertEqual(check("cr\rinside"), .controlCharacter, "CR")
        XCTAssertEqual(check("lf\ninside"), .controlCharacter, "LF")
        for c0 in UInt8(0)..<0x20 where c0 != 0x09 {
            XCTAssertEqual(check([0x41, c0, 0x41]), .controlCharacter, "C0 \(c0)")
        }
        // C1 controls U+0080–U+009F are C2 80 … C2 9F.
        for second in UInt8(0x80)...0x9F {
            XCTAssertEqual(check([0x41, 0xC2, second]), .controlCharacter, "C1 C2 \(second)")
        }
        XCTAssertEqual(check("x\u{9B}31m"), .controlCharacter, "CSI as C1")
        // The next scalars are fine.
        XCTAssertNil(check([0xC2, 0xA0]))
        XCTAssertNil(check([0x09]))
        XCTAssertNil(check([0x20, 0x7E]))
    }

    func testFirstProblemWins() {
        XCTAssertEqual(check([0x1B, 0xFF]), .controlCharacter)
        XCTAssertEqual(check([0xFF, 0x1B]), .invalidUTF8)
    }

    func testEveryTwoByteSequence() {
        // Exhaustive over two-byte inputs: TextCheck against Swift's own decoder.
        for a in 0...255 {
            for b in 0...255 {
                let bytes = [UInt8(a), UInt8(b)]
                XCTAssertEqual(check(bytes), reference(bytes), "\(bytes)")
            }
        }
    }

    func testEveryThreeByteSequenceWithInterestingLeads() {
        for a in [0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF4, 0xC2, 0xDF] {
            for b in 0...255 {
                for c in [0x00, 0x41, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF] {
                    let bytes = [UInt8(a), UInt8(b), UInt8(c)]
                    XCTAssertEqual(check(bytes), reference(bytes), "\(bytes)")
                }
            }
        }
    }

    /// What TextCheck should say, derived from the standard library's UTF-8 decoder and written the plain way
    /// (an array as the bidi stack): the first event that is a decoding error, a forbidden control, a line
    /// separator or a bidi closer that does not match decides; at the end, a bidi control still open does.
    private func reference(_ bytes: [UInt8]) -> TextProblem? {
        var iterator = bytes.makeIterator()
        var decoder = Unicode.UTF8()
        var open: [Bool] = []  // true = isolate
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                let v = scalar.value
                if (v < 0x20 && v != 0x09) || v == 0x7F || (0x80...0x9F).contains(v) { return .controlCharacter }
                if v == 0x2028 || v == 0x2029 { return .lineSeparator }
                switch v {
                case 0x202A, 0x202B, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068:
                    if open.count == TextCheck.maxBidiDepth { return .unbalancedBidi }
                    open.append(v >= 0x2066)
                case 0x202C, 0x2069:
                    if open.popLast() != (v == 0x2069) { return .unbalancedBidi }
                default:
                    break
                }
            case .emptyInput:
                return open.isEmpty ? nil : .unbalancedBidi
            case .error:
                return .invalidUTF8
            }
        }
    }

    // MARK: Line separators and bidi controls

    func testLineAndParagraphSeparatorsAreRefused() {
        XCTAssertEqual(check("hi\u{2028}SYS #lobby Online: alice"), .lineSeparator)
        XCTAssertEqual(check("hi\u{2029}SYS #lobby Online: alice"), .lineSeparator)
        XCTAssertEqual(check("\u{2028}"), .lineSeparator)
        XCTAssertEqual(check("end\u{2029}"), .lineSeparator)
        XCTAssertEqual(check("x\u{85}y"), .controlCharacter, "NEL is a C1 control")
        // Their neighbours are ordinary text.
        for scalar in [0x2027, 0x202F, 0x2026, 0x2030, 0x2060, 0x206F, 0x2070, 0x2000, 0x203F, 0x2040, 0x207F] {
            XCTAssertNil(check(String(Character(Unicode.Scalar(UInt32(scalar))!))), "U+\(String(scalar, radix: 16))")
        }
    }

    func testBalancedBidiIsAccepted() {
        XCTAssertNil(check("\u{202B}שלום\u{202C} and \u{2067}مرحبا\u{2069}"))
        XCTAssertNil(check("\u{202E}olleh\u{202C}"), "a closed override only reorders its own text")
        XCTAssertNil(check("\u{2066}a\u{202A}b\u{202C}c\u{2069}"), "properly nested")
        XCTAssertNil(check("\u{2068}\u{2068}\u{2069}\u{2069}"))
        XCTAssertNil(check("\u{200E}\u{200F}\u{061C} marks are not controls that stay open"))
        XCTAssertNil(check(String(repeating: "\u{2067}", count: 64) + "x" + String(repeating: "\u{2069}", count: 64)))
    }

    func testUnbalancedBidiIsRefused() {
        let cases: [(String, String)] = [
            ("RLO left open (Trojan Source)", "\u{202E}evil"),
            ("LRE left open", "\u{202A}x"),
            ("RLE left open", "\u{202B}x"),
            ("LRO left open", "\u{202D}x"),
            ("LRI left open", "\u{2066}x"),
            ("RLI left open", "\u{2067}x"),
            ("FSI left open", "\u{2068}x"),
            ("one of two left open", "\u{2067}\u{2067}x\u{2069}"),
            ("stray PDF", "x\u{202C}"),
            ("stray PDI", "x\u{2069}"),
            ("PDF closing an isolate", "\u{2066}x\u{202C}"),
            ("PDI closing an override", "\u{202E}x\u{2069}"),
            ("crossed", "\u{2066}\u{202A}x\u{2069}\u{202C}"),
            ("closed before opened", "\u{202C}\u{202A}"),
            ("the classic: a comment closed inside an isolate", "/* \u{202E} } \u{2066}if (admin)\u{2069} \u{2066} begin"),
            ("nested 65 deep", String(repeating: "\u{2066}", count: 65) + String(repeating: "\u{2069}", count: 65)),
        ]
        for (label, text) in cases {
            XCTAssertEqual(check(text), .unbalancedBidi, label)
            XCTAssertEqual(check(text), reference(Array(text.utf8)), label)
        }
        // A decoding error or control before the end wins over a control left open (first problem wins).
        XCTAssertEqual(check(Array("\u{202E}x".utf8) + [0xFF]), .invalidUTF8)
        XCTAssertEqual(check("\u{202E}x\u{1B}"), .controlCharacter)
        XCTAssertEqual(check("\u{202E}x\u{2028}"), .lineSeparator)
    }

    func testEveryScalarFromU2000ToU2FFFAloneAndBetweenText() {
        // Lead byte E2 is where the separator and bidi branches live: every continuation pair, against the reference.
        for b1 in UInt8(0x80)...0xBF {
            for b2 in UInt8(0x80)...0xBF {
                for bytes in [[0xE2, b1, b2], [0x61, 0xE2, b1, b2, 0x62]] {
                    XCTAssertEqual(check(bytes), reference(bytes), "\(bytes)")
                }
            }
        }
    }

    func testRandomBidiAndSeparatorTextAgreesWithThePlainImplementation() {
        var rng = SeededRandom(seed: 0xB1D1)
        let alphabet: [Unicode.Scalar] = ["a", " ", "\u{5D0}", "\u{627}", "\u{202A}", "\u{202B}", "\u{202C}", "\u{202D}",
                                          "\u{202E}", "\u{2066}", "\u{2067}", "\u{2068}", "\u{2069}", "\u{200E}", "\u{2028}",
                                          "\u{2029}", "\u{2027}", "\u{206A}", "\u{1B}", "😀"]
        var outcomes: [TextProblem?: Int] = [:]
        for _ in 0..<50_000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 0...10, using: &rng) {
                if Int.random(in: 0..<50, using: &rng) == 0 {
                    bytes.append(UInt8.random(in: 0x80...0xFF, using: &rng))  // now and then a broken sequence
                } else {
                    bytes += Array(String(Character(alphabet.randomElement(using: &rng)!)).utf8)
                }
            }
            let got = check(bytes)
            XCTAssertEqual(got, reference(bytes), "\(bytes)")
            outcomes[got, default: 0] += 1
        }
        // Every outcome must actually happen, accepted lines with bidi controls in them included.
        for outcome: TextProblem? in [nil, .invalidUTF8, .controlCharacter, .lineSeparator, .unbalancedBidi] {
            XCTAssertGreaterThan(outcomes[outcome, default: 0], 1_000, "\(String(describing: outcome))")
        }
    }

    func testRandomBytesAgreeWithTheStandardLibrary() {
        var rng = SeededRandom(seed: 0x7E57_C4EC)
        // Bytes chosen to hit every branch often: ASCII, controls, continuations, every kind of lead.
        let interesting: [UInt8] = [0x00, 0x09, 0x0A, 0x1B, 0x20, 0x41, 0x7E, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
                                    0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF]
        var valid = 0
        var invalid = 0
        var control = 0
        for _ in 0..<100_000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 0...12, using: &rng) {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes.append(UInt8.random(in: 0...255, using: &rng))
                case 1: bytes.append(interesting.randomElement(using: &rng)!)
                case 2: bytes.append(UInt8.random(in: 0x20...0x7E, using: &rng))
                default:
                    // A whole valid scalar, so that long valid runs happen too.
                    var scalar: Unicode.Scalar?
                    while scalar == nil { scalar = Unicode.Scalar(UInt32.random(in: 0...0x10FFFF, using: &rng)) }
                    bytes += Array(String(Character(scalar!)).utf8)
                }
            }
            let got = check(bytes)
            XCTAssertEqual(got, reference(bytes), "\(bytes)")
            // And validity alone against String(validating:as:).
            let swiftValid = String(validating: bytes, as: UTF8.self) != nil
            if got == .invalidUTF8 { XCTAssertFalse(swiftValid, "\(bytes)") }
            if got == nil { XCTAssertTrue(swiftValid, "\(bytes)") }
            if swiftValid { XCTAssertNotEqual(got, .invalidUTF8, "\(bytes)") }
            switch got {
            case nil: valid += 1
            case .invalidUTF8: invalid += 1
            case .controlCharacter: control += 1
            case .lineSeparator, .unbalancedBidi: break
            }
        }
        // The generator must actually exercise all three outcomes.
        XCTAssertGreaterThan(valid, 5_000)
        XCTAssertGreaterThan(invalid, 5_000)
        XCTAssertGreaterThan(control, 5_000)
    }
}

final class EmbeddedTextTests: XCTestCase {
    private func clean(_ text: String) -> String { EmbeddedText.clean(text) }

    func testBlankRunsCollapseToOneSpaceAndEndsAreTrimmed() {
        XCTAssertEqual(clean("  see   you  "), "see you")
        XCTAssertEqual(clean("see\tyou"), "see you")
        // Every kind of padding: no-break, ideographic, em and thin spaces, Hangul fillers, Braille blank, ZWSP.
        let padding = ["\u{A0}", "\u{1680}", "\u{2003}", "\u{2009}", "\u{200A}", "\u{200B}", "\u{202F}", "\u{205F}",
                       "\u{3000}", "\u{115F}", "\u{1160}", "\u{3164}", "\u{FFA0}", "\u{2800}", "\t", " "]
        for pad in padding {
            XCTAssertEqual(clean("a" + String(repeating: pad, count: 50) + "b"), "a b", pad.debugDescription)
            XCTAssertEqual(clean(String(repeating: pad, count: 32)), "", pad.debugDescription)
        }
        XCTAssertEqual(clean(padding.joined() + "x" + padding.joined() + "y" + padding.joined()), "x y")
        XCTAssertEqual(clean(""), "")
    }

    func testTheFindingsPaddedReasonCannotReachTheNextRow() {
        let padded = "bye" + String(repeating: " ", count: 300) + "-- #lobby Offline: alice (quit)"
        XCTAssertEqual(clean(padded), "bye -- #lobby Offline: alice (quit)")
    }

    func testOrdinaryTextIsKept() {
        for text in ["see you", "до свидания", "さようなら", "안녕히 가세요", "مع السلامة", "שלום", "👨‍👩‍👧 🇺🇦 1️⃣",
                     "e\u{301}te\u{301}", "a\u{200D}b", "x\u{200C}y"] {
            XCTAssertEqual(clean(text), text, text)
        }
    }

    func testBidiControlsAreDroppedAndMarksBounded() {
        XCTAssertEqual(clean("\u{202E}evil\u{202C} \u{2067}text\u{2069}"), "evil text")
        XCTAssertEqual(clean("\u{2066}\u{2067}\u{2068}\u{2069}\u{202A}\u{202B}\u{202C}\u{202D}\u{202E}"), "")
        XCTAssertEqual(clean("\u{200F}RLM stays"), "\u{200F}RLM stays", "marks end nothing and open nothing")
        let zalgo = "a" + String(repeating: "\u{301}", count: 63)
        XCTAssertEqual(clean(zalgo).unicodeScalars.count, 1 + EmbeddedText.maxMarksPerCharacter)
    }

    func testLengthIsBoundedAtACharacterBoundaryAndTheCutIsMarked() {
        let long = clean(String(repeating: "a", count: 4000))
        XCTAssertEqual(long, String(repeating: "a", count: EmbeddedText.maxBytes) + "\u{2026}")
        let exact = String(repeating: "b", count: EmbeddedText.maxBytes)
        XCTAssertEqual(clean(exact), exact, "at the limit nothing is cut")
        // Three-byte characters: 53 fit in 160 bytes, and no character is split.
        let cjk = clean(String(repeating: "日", count: 100))
        XCTAssertEqual(cjk, String(repeating: "日", count: 53) + "\u{2026}")
        // The bound counts escapes: 80 quotes take 160 bytes once escaped.
        let quotes = clean(String(repeating: "\"", count: 200))
        XCTAssertEqual(quotes, String(repeating: "\"", count: 80) + "\u{2026}")
        XCTAssertEqual(EmbeddedText.quote(quotes).utf8.count, 2 + 160 + 3)
        XCTAssertEqual(clean("short"), "short")
        XCTAssertEqual(EmbeddedText.clean("abcdef", maxBytes: 3), "abc\u{2026}")
    }

    func testQuoteEscapesQuotesAndBackslashes() {
        XCTAssertEqual(EmbeddedText.quote("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"")
        XCTAssertEqual(EmbeddedText.quote(""), "\"\"")
        XCTAssertEqual(EmbeddedText.quoted("  a\u{3000}\u{3000}\"b\"  "), "\"a \\\"b\\\"\"")
    }

    /// Reads a QUOTED back the way docs/PROTOCOL.md §3 defines it; nil if `text` is not exactly one QUOTED.
    private func unquote(_ text: String) -> String? {
        var scalars = Substring(text).unicodeScalars[...]
        guard scalars.first == "\"" else { return nil }
        scalars = scalars.dropFirst()
        var out = String.UnicodeScalarView()
        while let scalar = scalars.first {
            scalars = scalars.dropFirst()
            switch scalar {
            case "\"": return scalars.isEmpty ? String(out) : nil
            case "\\":
                guard let next = scalars.first, next == "\"" || next == "\\" else { return nil }
                out.append(next)
                scalars = scalars.dropFirst()
            default:
                out.append(scalar)
            }
        }
        return nil
    }

    func testRandomTextAlwaysComesOutSafeBoundedAndReadable() {
        var rng = SeededRandom(seed: 0x0E3B_ED)
        let alphabet: [String] = ["a", "Ж", "日", "한", "ש", "😀", "👨‍👩‍👧", " ", "  ", "\t", "\u{3000}", "\u{3164}", "\u{115F}",
                                  "\u{2800}", "\u{A0}", "\u{200B}", "\u{202E}", "\u{202C}", "\u{2067}", "\u{2069}", "\u{2028}",
                                  "\u{1B}", "\u{85}", "\"", "\\", "\u{301}", "\u{301}\u{301}\u{301}", "-- #lobby Offline: x (quit)"]
        var cuts = 0
        for _ in 0..<20_000 {
            var text = ""
            for _ in 0..<Int.random(in: 0...40, using: &rng) { text += alphabet.randomElement(using: &rng)! }
            let cleaned = EmbeddedText.clean(text)
            let quoted = EmbeddedText.quote(cleaned)
            let label = text.debugDescription
            // Safe inside any server line: passes TextCheck (so nothing it contains is refused or left open) ...
            XCTAssertNil(Array(quoted.utf8).withUnsafeBytes { TextCheck.problem(in: $0) }, label)
            // ... carries no padding, no bidi control, no blank at either end ...
            XCTAssertFalse(cleaned.unicodeScalars.contains { EmbeddedText.isBlank($0) && $0 != " " }, label)
            XCTAssertFalse(cleaned.unicodeScalars.contains { EmbeddedText.isBidiControl($0) }, label)
            XCTAssertFalse(cleaned.contains("  "), label)
            XCTAssertFalse(cleaned.hasPrefix(" ") || cleaned.hasSuffix(" "), label)
            // ... is bounded ...
            XCTAssertLessThanOrEqual(quoted.utf8.count, EmbeddedText.maxBytes + 5, label)
            // ... reads back exactly, and cleaning again changes nothing unless it was cut.
            XCTAssertEqual(unquote(quoted), cleaned, label)
            if cleaned.hasSuffix("\u{2026}") {
                cuts += 1
            } else {
                XCTAssertEqual(EmbeddedText.clean(cleaned), cleaned, label)
            }
        }
        XCTAssertGreaterThan(cuts, 100, "the generator must reach the length bound")
    }
}
