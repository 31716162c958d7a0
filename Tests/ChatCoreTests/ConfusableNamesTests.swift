// Names that must not let one user pass for another (docs/ROBUSTNESS.md, "Names").

@testable import ChatCore
import XCTest

final class ConfusableNamesTests: XCTestCase {
    func testCaseAndNormalisationFormsAreOneName() {
        XCTAssertEqual(Names.key("Олег"), Names.key("ОЛЕГ"))
        XCTAssertEqual(Names.key("Zoë"), Names.key("Zoe\u{308}"))          // NFC vs NFD
        XCTAssertEqual(Names.key("ZOË"), Names.key("zoe\u{308}"))
        XCTAssertEqual(Names.key("straße"), Names.key("STRASSE"))          // full case folding of ß
        XCTAssertEqual(Names.key("ΟΔΥΣΣΕΥΣ"), Names.key("Οδυσσευς"))      // final and medial sigma
        var online: [String: Int] = [:]
        online[Names.key("José")] = 1
        XCTAssertNotNil(online[Names.key("JOSE\u{301}")], "a dictionary keyed by Names.key must see one user")
    }

    func testMixedScriptLookAlikesAreRefused() {
        XCTAssertEqual(Names.validate("Олег"), nil)
        XCTAssertEqual(Names.validate("Oлег"), .mixedScripts)   // Latin O, then Cyrillic
        XCTAssertEqual(Names.validate("аlice"), .mixedScripts)  // Cyrillic а in a Latin name
        XCTAssertEqual(Names.validate("pаypal"), .mixedScripts)
        XCTAssertEqual(Names.validate("Ολέγ"), nil)              // Greek alone is fine
    }

    func testCompatibilityFormsAndForeignDigitsAreRefused() {
        for name in ["ａlice", "𝐚𝐥𝐢𝐜𝐞", "ⓐlice", "bob１", "bob١", "bob𝟏", "ᴀlice", "ﬀoo"] {
            if case .invalidCharacter = Names.validate(name) {} else {
                XCTFail("\(name) should be refused as a look-alike, got \(String(describing: Names.validate(name)))")
            }
        }
        XCTAssertNil(Names.validate("bob1"))
        XCTAssertNil(Names.validate("日本語"))
        XCTAssertNil(Names.validate("ひらがなカタカナ漢字"))
    }

    // MARK: NFD (the ground the skeleton stands on)

    func testNFDOfKnownCases() {
        func scalars(_ s: String) -> [UInt32] { Skeleton.nfd(s.unicodeScalars).map(\.value) }
        XCTAssertEqual(scalars("\u{E9}"), [0x65, 0x301])
        XCTAssertEqual(scalars("\u{1EC7}"), [0x65, 0x323, 0x302], "ệ: two marks, below before above")
        XCTAssertEqual(scalars("\u{D55C}"), [0x1112, 0x1161, 0x11AB], "한: L V T")
        XCTAssertEqual(scalars("\u{AC00}"), [0x1100, 0x1161], "가: L V, no trailing consonant")
        XCTAssertEqual(scalars("\u{D7A3}"), [0x1112, 0x1175, 0x11C2], "the last syllable")
        XCTAssertEqual(scalars("\u{212B}"), [0x41, 0x30A], "Angstrom sign: a singleton, then decomposed again")
        XCTAssertEqual(scalars("a\u{301}\u{323}"), [0x61, 0x323, 0x301], "canonical order: class 220 before 230")
        XCTAssertEqual(scalars("a\u{301}\u{300}"), [0x61, 0x301, 0x300], "equal classes keep their order")
        XCTAssertEqual(scalars("\u{F900}"), [0x8C48], "CJK compatibility ideograph")
        XCTAssertEqual(scalars("alice"), [0x61, 0x6C, 0x69, 0x63, 0x65])
    }

    /// The generated decomposition table agrees with the standard library's own normalisation data:
    /// Swift's `String ==` is canonical equivalence, so NFD(x) must equal x, and must be fully decomposed
    /// and canonically ordered. Checked for every code point the table lists, every Hangul syllable, and
    /// random strings mixing them with marks.
    func testNFDAgreesWithTheStandardLibrary() {
        func check(_ input: [Unicode.Scalar], file: StaticString = #filePath, line: UInt = #line) {
            var original = String.UnicodeScalarView()
            original.append(contentsOf: input)
            let decomposed = Skeleton.nfd(input)
            var result = String.UnicodeScalarView()
            result.append(contentsOf: decomposed)
            XCTAssertEqual(String(result), String(original), "\(input.map(\.value))", file: file, line: line)
            XCTAssertEqual(Skeleton.nfd(decomposed), decomposed, "idempotent", file: file, line: line)
            var previousClass: UInt8 = 0
            for scalar in decomposed {
                let cls = scalar.properties.canonicalCombiningClass.rawValue
                if cls != 0 { XCTAssertGreaterThanOrEqual(cls, previousClass, "canonical order", file: file, line: line) }
                previousClass = cls
            }
        }
        var candidates: [Unicode.Scalar] = DecompositionTable.sources.map { Unicode.Scalar($0)! }
        for v in stride(from: 0xAC00, through: 0xD7A3, by: 1) { candidates.append(Unicode.Scalar(UInt32(v))!) }
        for scalar in candidates { check([scalar]) }
        let marks: [Unicode.Scalar] = ["\u{300}", "\u{301}", "\u{323}", "\u{327}", "\u{345}", "\u{5B0}", "\u{94D}"]
        var random = SeededRandom(seed: 39)
        for _ in 0..<2_000 {
            var input: [Unicode.Scalar] = []
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                input.append(Bool.random(using: &random) ? candidates.randomElement(using: &random)! : marks.randomElement(using: &random)!)
            }
            check(input)
        }
    }

    // MARK: Skeletons (UTS #39)

    func testSkeletonsOfTheLookAlikes() {
        XCTAssertEqual(Skeleton.of("\u{430}\u{4CF}\u{456}\u{441}\u{435}"), "alice", "all-Cyrillic аӏісе")
        XCTAssertEqual(Skeleton.of("a\u{1C0}ice"), "alice", "dental click ǀ")
        XCTAssertEqual(Skeleton.of("aIice"), "alice", "capital I")
        XCTAssertEqual(Skeleton.of("adrnin"), Skeleton.of("admin"), "rn and m")
        XCTAssertEqual(Skeleton.of("ΚΑΤΕ"), "KATE")
        XCTAssertEqual(Skeleton.of("ᏦᎪᎢᎬ"), "KATE")
        XCTAssertEqual(Skeleton.of("alice\u{34F}"), "alice", "default-ignorable code points are dropped")
        XCTAssertEqual(Skeleton.of("Jos\u{E9}"), Skeleton.of("Jose\u{301}"), "NFC and NFD spellings")
        XCTAssertNotEqual(Skeleton.of("alice"), Skeleton.of("alica"))
    }

    func testLookAlikeKeysCoverCaseForms() {
        func meet(_ a: String, _ b: String) -> Bool { !Set(Names.lookAlikeKeys(a)).isDisjoint(with: Names.lookAlikeKeys(b)) }
        XCTAssertTrue(meet("ΚΑΤΕ", "kate"), "upper-cased forms meet")
        XCTAssertTrue(meet("κατε", "KATE"), "lower-case Greek whose capitals look like KATE")
        XCTAssertTrue(meet("aIice", "Alice"), "spelled form meets folded form")
        XCTAssertTrue(meet("ᏦᎪᎢᎬ", "Kate"))
        XCTAssertFalse(meet("Ali", "All"), "i and l stay apart: the skeleton is never case-mixed")
        XCTAssertFalse(meet("AIICE", "ALICE"))
        XCTAssertEqual(Names.lookAlikeKeys("alice"), ["alice", "ALlCE"], "no duplicates; I is mapped to l")
    }

    // MARK: Validation: invisible code points, marks

    func testInvisibleCodePointsAreRefusedAnywhere() {
        var invisible: [UInt32] = [0x34F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0, 0xAD, 0x61C, 0x180E, 0xFEFF]
        invisible += Array(0xFE00...0xFE0F) + Array(0xE0100...0xE01EF) + Array(0x180B...0x180F)
        invisible += Array(0x200B...0x200F) + Array(0x202A...0x202E) + Array(0x2060...0x206F) + Array(0xE0001...0xE007F)
        for value in invisible {
            let scalar = Unicode.Scalar(value)!
            for name in ["alice" + String(scalar), String(scalar) + "alice", "al" + String(scalar) + "ice"] {
                XCTAssertEqual(Names.validate(name), .invisibleCharacter(Character(scalar)), "U+\(String(value, radix: 16))")
            }
        }
        XCTAssertEqual(Names.validate(String(repeating: "\u{3164}", count: 32)), .invisibleCharacter("\u{3164}"))
    }

    func testCombiningMarksAreBoundedPerLetter() {
        XCTAssertEqual(Names.validate("a" + String(repeating: "\u{301}", count: 63)), .tooManyMarks(limit: 4))
        XCTAssertEqual(Names.validate("a" + String(repeating: "\u{301}", count: 5)), .tooManyMarks(limit: 4))
        XCTAssertNil(Names.validate("a" + String(repeating: "\u{301}", count: 4)))
        XCTAssertEqual(Names.validate("ab" + String(repeating: "\u{308}", count: 3) + "c\u{308}\u{308}\u{308}"), nil,
                       "the count starts again at each letter")
        // Counted in NFD: a precomposed letter's marks count too (ệ is e + 2 marks; + 3 more is 5).
        XCTAssertEqual(Names.validate("\u{1EC7}\u{301}\u{301}\u{301}"), .tooManyMarks(limit: 4))
        for name in ["Nguy\u{1EC5}n", "Nguye\u{302}\u{303}n", "Tr\u{1EA7}n", "བསྒྲུབས", "हिन्दी", "ภาษาไทย"] {
            XCTAssertNil(Names.validate(name), name)
        }
    }

    // MARK: Ordinary names still work

    func testOrdinaryNamesInManyScriptsPassAndDoNotCollide() {
        let names = ["Олег", "Ελένη", "李小龙", "김철수", "José", "Zoë", "bob_1", "alice", "KATE", "철수", "admin",
                     "Ольга", "Νίκος", "山田たろう", "Nguyễn", "Ali", "All", "bob", "Bob2", "Иван", "Ivan", "Μαρία", "Maria"]
        for name in names { XCTAssertNil(Names.validate(name), name) }
        let h = HubHarness()
        for name in names { _ = h.login(name) }
        XCTAssertEqual(h.hub.namedCount, names.count)
        for (i, a) in names.enumerated() {
            for b in names[(i + 1)...] {
                XCTAssertTrue(Set(Names.lookAlikeKeys(a)).isDisjoint(with: Names.lookAlikeKeys(b)), "\(a) and \(b)")
            }
        }
    }
}
