@testable import ChatCore
import XCTest

final class NamesTests: XCTestCase {
    func testValidNames() {
        for name in ["Олег", "alice", "Bob_42", "a-b.c_d", "x", "42", "_1", "Zoë", "e\u{301}mile", "日本語", "김철수",
                     "Ελένη", "Олег_42", "ǅemal", String(repeating: "a", count: 32), String(repeating: "я", count: 32)] {
            XCTAssertNil(Names.validate(name), name)
        }
    }

    func testCaseInsensitiveKey() {
        XCTAssertEqual(Names.key("Олег"), Names.key("ОЛЕГ"))
        XCTAssertEqual(Names.key("Олег"), Names.key("олег"))
        XCTAssertEqual(Names.key("Alice"), Names.key("aLiCe"))
        XCTAssertNotEqual(Names.key("Alice"), Names.key("Alicia"))
        var online: [String: Int] = [:]
        online[Names.key("Олег")] = 1
        XCTAssertEqual(online[Names.key("ОЛЕГ")], 1)
        XCTAssertNil(online[Names.key("Ольга")])
    }

    func testCanonicallyEquivalentSpellingsAreOneKey() {
        let nfc = "\u{E9}mile"        // é as one scalar
        let nfd = "e\u{301}mile"      // e + combining acute
        XCTAssertNotEqual(Array(nfc.utf8), Array(nfd.utf8), "the spellings differ in bytes")
        XCTAssertNil(Names.validate(nfc))
        XCTAssertNil(Names.validate(nfd))
        XCTAssertEqual(Names.key(nfc), Names.key(nfd))
        var online: [String: String] = [:]
        online[Names.key(nfc)] = "first"
        XCTAssertEqual(online[Names.key(nfd)], "first", "Dictionary lookup must treat NFC and NFD as one key")
        XCTAssertEqual(online[Names.key("E\u{301}MILE")], "first", "and case-fold the NFD spelling too")
        XCTAssertEqual(online.count, 1)
        online[Names.key(nfd)] = "second"
        XCTAssertEqual(online.count, 1)
    }

    func testMixedScriptsRejected() {
        XCTAssertEqual(Names.validate("\u{4F}лег"), .mixedScripts, "Latin O in a Cyrillic name")
        XCTAssertEqual(Names.validate("Ол\u{65}г"), .mixedScripts, "Latin e in a Cyrillic name")
        XCTAssertEqual(Names.validate("p\u{430}ypal"), .mixedScripts, "Cyrillic а in a Latin name")
        XCTAssertEqual(Names.validate("abcα"), .mixedScripts, "Greek in a Latin name")
        // Digits and punctuation belong to no script.
        XCTAssertNil(Names.validate("Олег-1.2_3"))
    }

    func testLength() {
        XCTAssertNil(Names.validate(String(repeating: "a", count: 32)))
        XCTAssertEqual(Names.validate(String(repeating: "a", count: 33)), .tooLong(limit: 32))
        XCTAssertNil(Names.validate(String(repeating: "ж", count: 32)))
        XCTAssertEqual(Names.validate(String(repeating: "ж", count: 33)), .tooLong(limit: 32))
        // Counted in characters: 32 NFD "é" are 32 characters (96 bytes), fine.
        XCTAssertNil(Names.validate(String(repeating: "e\u{301}", count: 32)))
        // One "character" with a pile of combining marks is refused by its byte length.
        let zalgo = "a" + String(repeating: "\u{301}", count: 64)
        XCTAssertEqual(zalgo.count, 1)
        XCTAssertEqual(Names.validate(zalgo), .tooLong(limit: 32))
        XCTAssertEqual(Names.validate(""), .empty)
    }

    func testInvalidCharacters() {
        XCTAssertEqual(Names.validate("Ann Lee"), .invalidCharacter(" "))
        XCTAssertEqual(Names.validate("a:b"), .invalidCharacter(":"))
        XCTAssertEqual(Names.validate("#room"), .invalidCharacter("#"))
        XCTAssertEqual(Names.validate("bob😀"), .invalidCharacter("😀"))
        XCTAssertEqual(Names.validate("tab\there"), .invalidCharacter("\t"))
        XCTAssertEqual(Names.validate("a/b"), .invalidCharacter("/"))
        XCTAssertEqual(Names.validate("a@b"), .invalidCharacter("@"))
        // Invisible characters get their own, more precise, problem (see ConfusableNamesTests).
        XCTAssertEqual(Names.validate("zero\u{200B}width"), .invisibleCharacter("\u{200B}"))
        // A combining mark must follow a letter.
        XCTAssertEqual(Names.validate("\u{301}abc"), .invalidCharacter("\u{301}"))
        XCTAssertEqual(Names.validate("1\u{301}"), .invalidCharacter("\u{301}"))
        XCTAssertEqual(Names.validate("a_\u{301}"), .invalidCharacter("\u{301}"))
        for ok in ["a_b", "a-b", "a.b", "007", "_-.1"] { XCTAssertNil(Names.validate(ok), ok) }
        // Punctuation alone is no name: nothing to tell `_` from `__` or `.` from `-` at a glance.
        for bad in ["_", "_-.", "...", "ʰ"] { XCTAssertEqual(Names.validate(bad), .noLetterOrDigit, bad) }
    }

    func testRoomName() {
        XCTAssertTrue(Names.roomName("#dev") == ("dev", nil))
        XCTAssertTrue(Names.roomName("dev") == ("dev", nil))
        XCTAssertTrue(Names.roomName("#Кухня") == ("Кухня", nil))
        XCTAssertEqual(Names.roomName("##dev").name, "#dev")
        XCTAssertEqual(Names.roomName("##dev").problem, .invalidCharacter("#"))
        XCTAssertEqual(Names.roomName("#").problem, .empty)
        XCTAssertEqual(Names.roomName("#a b").problem, .invalidCharacter(" "))
    }

    func testExplanations() {
        XCTAssertEqual(Names.explain(.empty), "a name cannot be empty")
        XCTAssertEqual(Names.explain(.tooLong(limit: 32)), "a name has at most 32 characters")
        XCTAssertEqual(Names.explain(.invalidCharacter(" ")), "character U+20 is not allowed; use letters, digits, _ - .")
        XCTAssertEqual(Names.explain(.invalidCharacter("😀")), "character U+1F600 is not allowed; use letters, digits, _ - .")
        XCTAssertEqual(Names.explain(.mixedScripts), "a name may not mix letters of different scripts")
        XCTAssertEqual(Names.explain(.invisibleCharacter("\u{34F}")),
                       "character U+34F is invisible (a zero-width, default-ignorable or filler character); use letters, digits, _ - .")
        XCTAssertEqual(Names.explain(.noLetterOrDigit), "a name needs at least one letter or digit")
        XCTAssertEqual(Names.explain(.tooManyMarks(limit: 4)), "at most 4 combining marks per letter")
    }

    func testScriptClassification() {
        XCTAssertEqual(Script.of("a"), .latin)
        XCTAssertEqual(Script.of("é"), .latin)
        XCTAssertEqual(Script.of("ж"), .cyrillic)
        XCTAssertEqual(Script.of("α"), .greek)
        XCTAssertEqual(Script.of("日"), .cjk)
        XCTAssertEqual(Script.of("ひ"), .cjk, "kana and kanji mix in Japanese names")
        XCTAssertEqual(Script.of("한"), .hangul)
        XCTAssertEqual(Script.of("ʰ"), .common)
        XCTAssertNil(Names.validate("山田たろう"))
    }
}
