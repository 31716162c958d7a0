// How the client lays lines out on terminal rows, and what it refuses to print as is (issue 9, finding 5).

@testable import ChatClient
import XCTest

final class ScreenRowsTests: XCTestCase {
    func testAShortLineIsOneRow() {
        XCTAssertEqual(ScreenRows.wrap("bob: hi", columns: 80), ["bob: hi"])
        XCTAssertEqual(ScreenRows.wrap("", columns: 80), [""])
        XCTAssertEqual(ScreenRows.wrap(String(repeating: "x", count: 79), columns: 80), [String(repeating: "x", count: 79)],
                       "the last column stays free")
        XCTAssertEqual(ScreenRows.wrap(String(repeating: "x", count: 80), columns: 80).count, 2)
    }

    func testContinuationRowsLeaveRoomForTheIndent() {
        let rows = ScreenRows.wrap(String(repeating: "a", count: 200), columns: 80)
        XCTAssertEqual(rows, [String(repeating: "a", count: 79), String(repeating: "a", count: 77), String(repeating: "a", count: 44)])
        // The first row starts after what is already on it (a timestamp).
        XCTAssertEqual(ScreenRows.wrap(String(repeating: "b", count: 100), columns: 80, used: 9).map(\.count), [70, 30])
    }

    func testWideCharactersNeverStraddleTwoRows() {
        let rows = ScreenRows.wrap(String(repeating: "日", count: 50), columns: 82)
        XCTAssertEqual(rows.map(\.count), [40, 10], "40 fill 80 of 81 usable cells; the 41st would need two")
        XCTAssertEqual(ScreenRows.wrap("ab👨‍👩‍👧cd", columns: 4), ["ab", "👨‍👩‍👧", "c", "d"])
    }

    func testTabsBecomeSpacesToTheNextTabStopAndNeverWrap() {
        XCTAssertEqual(ScreenRows.wrap("a\tb", columns: 80), ["a       b"])
        XCTAssertEqual(ScreenRows.wrap("a\tb", columns: 80, used: 3), ["a    b"], "stops count from the left edge")
        XCTAssertEqual(ScreenRows.wrap("\t\t", columns: 80), [String(repeating: " ", count: 16)])
        // A tab at the end of a row fills only that row; the next row's tab stops count the indent.
        XCTAssertEqual(ScreenRows.wrap("abcdefg\tX\tY", columns: 10), ["abcdefg X", "      Y"])
        XCTAssertEqual(ScreenRows.wrap(String(repeating: "z", count: 9) + "\tq", columns: 10), [String(repeating: "z", count: 9), "      q"])
    }

    func testANarrowTerminalStillShowsEverything() {
        XCTAssertEqual(ScreenRows.wrap("日本", columns: 1), ["日", "本"])
        XCTAssertEqual(ScreenRows.wrap("abc", columns: 0), ["a", "b", "c"])
    }

    func testRandomLinesKeepEveryCharacterAndFitTheirRows() {
        var rng = SystemRandomNumberGenerator()
        let alphabet: [Character] = ["a", " ", "日", "😀", "e\u{301}", "Ж", "👨‍👩‍👧", "\u{200B}"]
        for _ in 0..<2_000 {
            let text = String((0..<Int.random(in: 0...300, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
            let columns = Int.random(in: 1...120, using: &rng)
            let used = Int.random(in: 0...10, using: &rng)
            let rows = ScreenRows.wrap(text, columns: columns, used: used)
            XCTAssertEqual(rows.joined(), text)
            for (index, row) in rows.enumerated() {
                let room = (index == 0 ? columns - used : columns - ScreenRows.indent.count) - 1
                XCTAssertTrue(DisplayWidth.of(row) <= max(1, room) || row.count == 1, "\(row.debugDescription) in \(columns)")
                if index > 0 { XCTAssertFalse(row.isEmpty) }
            }
        }
    }

    /// The finding: a message padded so that `-- #lobby Offline: bob (quit)` would begin a row. The client
    /// breaks the row itself, with the indent, and auto-wrap is off meanwhile.
    func testThePaddedMessageOfTheFindingIsShownIndented() {
        let forged = "-- #lobby Offline: bob (quit)"
        let line = DisplayLine.from(ServerLine(parsing: "MSG #lobby mallory: a" + String(repeating: " ", count: 69) + forged),
                                    currentRoom: "lobby")
        let text = Client.rowsText(line, prefix: "", columns: 80, palette: Palette(enabled: false))
        XCTAssertEqual(text, "\u{1B}[?7l" + "\r\u{1B}[K" + "mallory: a" + String(repeating: " ", count: 69) + "\n"
                       + "\r\u{1B}[K" + "  " + forged + "\n" + "\u{1B}[?7h")
        // With colours, each row is painted on its own and the indent is not.
        let system = DisplayLine(.system, "-- " + String(repeating: "x", count: 80))
        XCTAssertEqual(Client.rowsText(system, prefix: "12:00:00 ", columns: 80, palette: Palette(enabled: true)),
                       "\u{1B}[?7l\r\u{1B}[K12:00:00 \u{1B}[2;36m-- " + String(repeating: "x", count: 67) + "\u{1B}[0m\n"
                       + "\r\u{1B}[K  \u{1B}[2;36m" + String(repeating: "x", count: 13) + "\u{1B}[0m\n\u{1B}[?7h")
    }
}

final class SanitizeTests: XCTestCase {
    func testLineSeparatorsAreNotPrinted() {
        XCTAssertEqual(DisplayLine.sanitize("hi\u{2028}SYS #lobby Online: alice\u{2029}"), "hi\u{FFFD}SYS #lobby Online: alice\u{FFFD}")
        XCTAssertEqual(DisplayLine.sanitize("nel\u{85}"), "nel\u{FFFD}")
    }

    func testOpenBidiControlsAreClosedAtTheEndOfTheLine() {
        XCTAssertEqual(DisplayLine.sanitize("\u{202E}evil"), "\u{202E}evil\u{202C}")
        XCTAssertEqual(DisplayLine.sanitize("\u{2067}a\u{202B}b"), "\u{2067}a\u{202B}b\u{202C}\u{2069}")
        XCTAssertEqual(DisplayLine.sanitize("\u{2066}a\u{202A}b\u{2069}c"), "\u{2066}a\u{202A}b\u{202C}\u{2069}c",
                       "a PDI closes the embeddings inside its isolate first")
        XCTAssertEqual(DisplayLine.sanitize("stray\u{202C}\u{2069}"), "stray", "closers with nothing open are dropped")
        XCTAssertEqual(DisplayLine.sanitize("\u{2066}x\u{202C}\u{2069}"), "\u{2066}x\u{2069}", "a PDF cannot close an isolate")
        XCTAssertEqual(DisplayLine.sanitize("\u{202B}שלום\u{202C} ok"), "\u{202B}שלום\u{202C} ok", "balanced text is kept")
        // Displayed lines are sanitized too: a peer that is not chatd cannot reorder what the client prints after.
        XCTAssertEqual(DisplayLine.from(ServerLine(parsing: "MSG #lobby bob: \u{202E}x"), currentRoom: "lobby").text,
                       "bob: \u{202E}x\u{202C}")
    }

    func testQuotedReasonsAreShownAsTheServerQuotedThem() {
        let line = DisplayLine.from(ServerLine(parsing: "SYS #lobby Offline: bob (quit: \"see \\\"you\\\"\")"), currentRoom: "lobby")
        XCTAssertEqual(line, DisplayLine(.system, "-- #lobby Offline: bob (quit: \"see \\\"you\\\"\")"))
    }
}
