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
}
