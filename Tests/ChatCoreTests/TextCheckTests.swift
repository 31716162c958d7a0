@testable import ChatCore
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

    /// What TextCheck should say, derived from the standard library's UTF-8 decoder: the first event that is
    /// either a decoding error or a forbidden control scalar decides.
    private func reference(_ bytes: [UInt8]) -> TextProblem? {
        var iterator = bytes.makeIterator()
        var decoder = Unicode.UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                let v = scalar.value
                if (v < 0x20 && v != 0x09) || v == 0x7F || (0x80...0x9F).contains(v) { return .controlCharacter }
            case .emptyInput:
                return nil
            case .error:
                return .invalidUTF8
            }
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
            }
        }
        // The generator must actually exercise all three outcomes.
        XCTAssertGreaterThan(valid, 5_000)
        XCTAssertGreaterThan(invalid, 5_000)
        XCTAssertGreaterThan(control, 5_000)
    }
}
