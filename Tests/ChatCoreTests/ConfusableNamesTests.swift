// Names that must not let one user pass for another (docs/ROBUSTNESS.md, "Names").

@testable import ChatCore
import ChatTestSupport
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
        XCTAssertTrue(meet("Том", "Tom"), "Cyrillic and Latin with identical capitals (docs/PROTOCOL.md)")
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

    // MARK: Issue 9, finding 4: every example is refused or taken

    /// The names from issue 9 with `alice`, `KATE`, `철수` and `admin` online: each is refused as invalid
    /// or (valid but) taken, checked through the hub exactly as a client would send them.
    func testEveryLookAlikeFromTheIssueIsRefusedOrTaken() {
        let h = HubHarness()
        let online = ["alice", "KATE", "철수", "admin"].map { h.login($0) }
        for session in online { _ = h.lines(session) }
        let invalid: [String] = [
            "alice\u{34F}", "alice\u{FE0F}", "alice\u{FE00}", "alice\u{E0100}", "alice\u{180B}", "alice\u{17B4}",
            "철수\u{3164}", "\u{3164}", String(repeating: "\u{3164}", count: 32), "\u{115F}", "\u{1160}",
            "a" + String(repeating: "\u{301}", count: 63),
        ]
        let taken: [String] = [
            "\u{430}\u{4CF}\u{456}\u{441}\u{435}", "ΚΑΤΕ", "ᏦᎪᎢᎬ", "a\u{1C0}ice", "aIice", "adrnin", "kate", "κατε", "ALICE",
        ]
        for name in invalid + taken {
            let c = h.connect()
            _ = h.lines(c)
            h.send(name, from: c)
            let reply = h.lines(c)
            let expected = invalid.contains(name) ? "ERR name-invalid " : "ERR name-taken "
            XCTAssertEqual(reply.count, 1, name.debugDescription)
            XCTAssertTrue(reply.first?.hasPrefix(expected) == true, "\(name.debugDescription): \(reply)")
            XCTAssertEqual(c.phase, .awaitingName, name.debugDescription)
        }
        XCTAssertEqual(h.hub.namedCount, 4)
        for session in online { XCTAssertEqual(h.lines(session), [], "nothing was announced") }
    }

    func testLookAlikeReplySaysWhoItLooksLike() {
        let h = HubHarness()
        _ = h.login("alice")
        let c = h.connect()
        _ = h.lines(c)
        h.send("\u{430}\u{4CF}\u{456}\u{441}\u{435}", from: c)
        XCTAssertEqual(h.lines(c), ["ERR name-taken \u{430}\u{4CF}\u{456}\u{441}\u{435} looks like alice, who is online; send another name"])
    }

    // MARK: Hub: the look-alike index follows renames, departures and rooms

    func testRenamesAndDeparturesKeepTheLookAlikeIndexExact() {
        let h = HubHarness()
        let alice = h.login("alice")
        let bob = h.login("bob")
        _ = h.lines(alice)
        let cyrillic = "\u{430}\u{4CF}\u{456}\u{441}\u{435}"
        /// Sends `line` from `session` and returns what it got (private replies come before room lines).
        func run(_ line: String, from session: Session) -> [String] {
            h.send(line, from: session)
            let got = h.lines(session)
            _ = h.lines(session === alice ? bob : alice)
            return got
        }

        XCTAssertEqual(run("/nick \(cyrillic)", from: bob), ["ERR name-taken \(cyrillic) looks like alice, who is online"])
        XCTAssertEqual(bob.name, "bob")
        XCTAssertEqual(run("/nick aIice", from: alice), ["SYS #lobby Nick: alice -> aIice"],
                       "a look-alike of one's own name is fine")
        XCTAssertEqual(run("/nick alice", from: bob), ["ERR name-taken alice looks like aIice, who is online"])
        XCTAssertEqual(run("/nick carol", from: alice), ["SYS #lobby Nick: aIice -> carol"])
        XCTAssertEqual(run("/nick caroI", from: bob), ["ERR name-taken caroI looks like carol, who is online"])
        XCTAssertEqual(run("/nick \(cyrillic)", from: bob), ["SYS #lobby Nick: bob -> \(cyrillic)"],
                       "the keys of alice's old names were released")

        // Leaving, politely or not, releases the keys too.
        h.send("/quit", from: alice)
        let c = h.connect()
        _ = h.lines(c)
        h.send("caroI", from: c)
        XCTAssertEqual(c.phase, .named, "carol has quit")
        h.hub.remove(bob, reason: "connection reset by peer")
        let d = h.connect()
        _ = h.lines(d)
        h.send("alice", from: d)
        XCTAssertEqual(d.phase, .named, "the Cyrillic look-alike is gone")
        XCTAssertEqual(h.hub.namedCount, 2)
    }

    func testARoomThatLooksLikeAnExistingRoomIsThatRoom() {
        let h = HubHarness()
        let a = h.login("a")
        let b = h.login("b")
        _ = h.lines(a)
        h.send("/join #Iobby", from: a)
        XCTAssertEqual(h.lines(a), ["ERR already-in-room you are already in #lobby"], "#Iobby (capital I) is #lobby")

        h.send("/join alice", from: a)
        _ = h.lines(a)
        let cyrillic = "\u{430}\u{4CF}\u{456}\u{441}\u{435}"
        h.send("/join #\(cyrillic)", from: b)
        XCTAssertTrue(h.lines(b).contains("SYS Room: #alice; members (2): a b"), "joined the existing room")
        XCTAssertEqual(h.hub.roomCount, 2)
        h.send("/join ALICE", from: a)
        XCTAssertTrue(h.lines(a).contains("ERR already-in-room you are already in #alice"))

        // Once #alice is gone, the look-alike is a name like any other and makes its own room.
        h.send("/join lobby", from: a)
        h.send("/join lobby", from: b)
        _ = h.lines(a)
        _ = h.lines(b)
        XCTAssertEqual(h.hub.roomCount, 1)
        h.send("/join \(cyrillic)", from: a)
        XCTAssertTrue(h.lines(a).contains("SYS Room: #\(cyrillic); members (1): a"))
        h.send("/join alice", from: b)
        XCTAssertTrue(h.lines(b).contains("SYS Room: #\(cyrillic); members (2): a b"))
    }

    /// Checking a name is the dearest thing an unnamed client can ask for, so a refused name draws on the
    /// session's rate-limit bucket (burst 40, 20/s by default) like a line; the accepted name is free.
    func testRefusedNamesDrawOnTheRateLimit() {
        let h = HubHarness()
        let a = h.connect()
        _ = h.lines(a)
        h.send("alice", from: a)
        for i in 0..<40 { h.send("m\(i)", from: a) }
        XCTAssertTrue(h.lines(a).allSatisfy { !$0.hasPrefix("ERR") }, "a name accepted at once leaves the whole burst")

        let c = h.connect()
        _ = h.lines(c)
        for i in 0..<40 { h.send("\u{4E00}" + pad(i, 2) + "_\u{1EC7}\u{3164}", from: c) }  // invalid: a filler
        let replies = h.lines(c)
        XCTAssertEqual(replies.count, 40)
        XCTAssertTrue(replies.allSatisfy { $0.hasPrefix("ERR name-invalid ") }, "\(replies.first ?? "")")
        h.send("carol", from: c)
        XCTAssertEqual(h.lines(c), ["ERR rate-limited more than 20 refused names per second; this one was not considered"])
        XCTAssertEqual(c.phase, .awaitingName)
        h.now += 100_000_000  // 0.1 s: two tokens
        h.send("carol", from: c)
        XCTAssertEqual(c.phase, .named)
    }
}
