// IRC masks (WHO): `*` and `?` globbing, linear on hostile patterns.

@testable import ChatFronts
import XCTest

final class IRCMaskTests: XCTestCase {
    private func glob(_ pattern: String, _ text: String) -> Bool {
        IRCNames.glob(Array(pattern.utf8), matches: Array(text.utf8))
    }

    func testStarsAndQuestionMarks() {
        XCTAssertTrue(glob("*", ""))
        XCTAssertTrue(glob("*", "alice"))
        XCTAssertTrue(glob("a*e", "alice"))
        XCTAssertTrue(glob("a?ice", "alice"))
        XCTAssertTrue(glob("*li*", "alice"))
        XCTAssertTrue(glob("alice", "alice"))
        XCTAssertFalse(glob("alice", "alicex"))
        XCTAssertFalse(glob("a?e", "alice"))
        XCTAssertFalse(glob("b*", "alice"))
        XCTAssertTrue(glob("*.0.0.1", "127.0.0.1"))
    }

    func testAHostilePatternFinishesQuickly() {
        let pattern = String(repeating: "*a", count: 200) + "b"
        let text = String(repeating: "a", count: 5000)
        XCTAssertFalse(glob(pattern, text), "no b: no match (and no exponential backtracking on the way)")
    }
}
