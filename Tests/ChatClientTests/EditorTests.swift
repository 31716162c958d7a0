// Unit tests of the line editor's pure parts: key decoding, editing, history, display widths and the
// input line's layout.

@testable import ChatClient
import XCTest

final class KeyDecoderTests: XCTestCase {
    func decode(_ chunks: [[UInt8]]) -> [Key] {
        var decoder = KeyDecoder()
        return chunks.flatMap { decoder.feed($0) }
    }

    func testTextAndControlKeys() {
        XCTAssertEqual(decode([Array("hi".utf8) + [0x7F, 0x01, 0x05, 0x0D, 0x04, 0x03]]),
                       [.text("hi"), .backspace, .home, .end, .enter, .endOfInput, .interrupt])
        XCTAssertEqual(decode([[0x15, 0x0B, 0x17, 0x0C, 0x02, 0x06, 0x10, 0x0E, 0x09]]),
                       [.killToStart, .killToEnd, .deleteWordBackward, .redraw, .left, .right, .up, .down, .ignored])
    }

    func testEscapeSequences() {
        let esc: UInt8 = 0x1B
        XCTAssertEqual(decode([[esc] + Array("[A".utf8), [esc] + Array("[B".utf8), [esc] + Array("[C".utf8),
                               [esc] + Array("[D".utf8)]), [.up, .down, .right, .left])
        XCTAssertEqual(decode([[esc] + Array("[H".utf8) + [esc] + Array("[F".utf8) + [esc] + Array("OH".utf8)
                               + [esc] + Array("OF".utf8)]), [.home, .end, .home, .end])
        XCTAssertEqual(decode([[esc] + Array("[1~".utf8) + [esc] + Array("[4~".utf8) + [esc] + Array("[3~".utf8)
                               + [esc] + Array("[7~".utf8) + [esc] + Array("[8~".utf8)]), [.home, .end, .delete, .home, .end])
        XCTAssertEqual(decode([[esc] + Array("[1;5C".utf8) + [esc] + Array("[1;5D".utf8) + [esc] + Array("b".utf8)
                               + [esc] + Array("f".utf8)]), [.wordRight, .wordLeft, .wordLeft, .wordRight])
        // Bracketed-paste markers and unknown keys are ignored; the pasted text stays text.
        XCTAssertEqual(decode([[esc] + Array("[200~pasted".utf8) + [esc] + Array("[201~".utf8)]),
                       [.ignored, .text("pasted"), .ignored])
    }

    func testSequencesSplitAcrossReadsAreHeld() {
        let esc: UInt8 = 0x1B
        XCTAssertEqual(decode([[esc], Array("[".utf8), Array("1;5".utf8), Array("Cx".utf8)]), [.wordRight, .text("x")])
        XCTAssertEqual(decode([Array("a".utf8) + [esc], Array("OA".utf8)]), [.text("a"), .up])
    }

    func testUTF8SplitAcrossReads() {
        let bytes = Array("дé😀".utf8)
        // Every split point gives the same text back.
        for cut in 0...bytes.count {
            let keys = decode([Array(bytes[..<cut]), Array(bytes[cut...])])
            let text = keys.map { if case .text(let t) = $0 { return t } else { return "?" } }.joined()
            XCTAssertEqual(text, "дé😀", "cut at \(cut)")
        }
    }

    func testInvalidUTF8BecomesReplacementCharacter() {
        XCTAssertEqual(decode([[0x61, 0xFF, 0x62]]), [.text("a\u{FFFD}b")])
    }
}

final class LineEditorTests: XCTestCase {
    func type(_ editor: inout LineEditor, _ keys: Key...) {
        for key in keys { _ = editor.apply(key) }
    }

    func testInsertMoveAndDelete() {
        var editor = LineEditor()
        type(&editor, .text("helo"), .left, .text("l"))
        XCTAssertEqual(editor.text, "hello")
        XCTAssertEqual(editor.cursor, 4)
        type(&editor, .home, .delete, .text("H"), .end, .backspace, .text("o!"))
        XCTAssertEqual(editor.text, "Hello!")
        XCTAssertEqual(editor.cursor, 6)
        type(&editor, .left, .left, .killToEnd)
        XCTAssertEqual(editor.text, "Hell")
        type(&editor, .left, .killToStart)
        XCTAssertEqual(editor.text, "l")
        XCTAssertEqual(editor.cursor, 0)
    }

    func testCursorMovesByGraphemeCluster() {
        var editor = LineEditor()
        type(&editor, .text("a👩‍👩‍👧é🇫🇷b"))  // a family ZWJ sequence, a precomposed letter, a flag
        XCTAssertEqual(editor.characters.count, 5)
        type(&editor, .left, .left, .backspace)
        XCTAssertEqual(editor.text, "a👩‍👩‍👧🇫🇷b")
        type(&editor, .home, .right, .delete)
        XCTAssertEqual(editor.text, "a🇫🇷b")
    }

    func testCombiningMarkJoinsThePreviousLetter() {
        var editor = LineEditor()
        type(&editor, .text("e"), .text("\u{301}"), .text("x"))
        XCTAssertEqual(editor.characters.count, 2)
        XCTAssertEqual(editor.cursor, 2)
        XCTAssertEqual(editor.text, "e\u{301}x")
    }

    func testControlsAreNotInserted() {
        var editor = LineEditor()
        editor.insert("a\u{1B}[2Jb\u{85}c\td")
        XCTAssertEqual(editor.text, "a[2Jbcd")
    }

    func testPastedLineSeparatorsBecomeSpaces() {
        var editor = LineEditor()
        editor.insert("one\u{2028}two\u{2029}three")
        XCTAssertEqual(editor.text, "one two three")
        XCTAssertEqual(editor.cursor, 13)
    }

    func testWordMovesAndDeleteWord() {
        var editor = LineEditor()
        type(&editor, .text("one two  three"), .wordLeft)
        XCTAssertEqual(editor.cursor, 9)
        type(&editor, .wordLeft, .wordLeft)
        XCTAssertEqual(editor.cursor, 0)
        type(&editor, .wordRight)
        XCTAssertEqual(editor.cursor, 3)
        type(&editor, .end, .deleteWordBackward)
        XCTAssertEqual(editor.text, "one two  ")
        type(&editor, .deleteWordBackward)
        XCTAssertEqual(editor.text, "one ")
    }

    func testSubmitClearsAndRecordsHistory() {
        var editor = LineEditor()
        _ = editor.apply(.text("first"))
        XCTAssertEqual(editor.apply(.enter), .submit("first"))
        XCTAssertEqual(editor.text, "")
        _ = editor.apply(.text("second"))
        XCTAssertEqual(editor.apply(.enter), .submit("second"))
        _ = editor.apply(.text("second"))
        _ = editor.apply(.enter)  // a repeat is not stored twice
        XCTAssertEqual(editor.history, ["first", "second"])
        XCTAssertEqual(editor.apply(.enter), .submit(""))
        XCTAssertEqual(editor.history, ["first", "second"])
    }

    func testHistoryKeepsTheDraft() {
        var editor = LineEditor()
        for line in ["a", "b"] {
            _ = editor.apply(.text(line))
            _ = editor.apply(.enter)
        }
        type(&editor, .text("draft"), .up)
        XCTAssertEqual(editor.text, "b")
        type(&editor, .up)
        XCTAssertEqual(editor.text, "a")
        type(&editor, .up)  // stays at the oldest
        XCTAssertEqual(editor.text, "a")
        type(&editor, .down)
        XCTAssertEqual(editor.text, "b")
        type(&editor, .down)
        XCTAssertEqual(editor.text, "draft")
        XCTAssertEqual(editor.cursor, 5)
        type(&editor, .down)
        XCTAssertEqual(editor.text, "draft")
    }

    func testHistoryIsBounded() {
        var editor = LineEditor(historyLimit: 3)
        for i in 0..<5 {
            _ = editor.apply(.text("\(i)"))
            _ = editor.apply(.enter)
        }
        XCTAssertEqual(editor.history, ["2", "3", "4"])
    }

    func testEndOfInputOnlyOnAnEmptyLine() {
        var editor = LineEditor()
        XCTAssertEqual(editor.apply(.endOfInput), .endOfInput)
        type(&editor, .text("ab"), .home)
        XCTAssertEqual(editor.apply(.endOfInput), .edited)  // deletes under the cursor, like readline
        XCTAssertEqual(editor.text, "b")
        XCTAssertEqual(editor.apply(.interrupt), .interrupt)
        XCTAssertEqual(editor.apply(.redraw), .redrawScreen)
    }
}

final class DisplayWidthTests: XCTestCase {
    func testWidths() {
        XCTAssertEqual(DisplayWidth.of("hello"), 5)
        XCTAssertEqual(DisplayWidth.of("привет"), 6)
        XCTAssertEqual(DisplayWidth.of("日本語"), 6)
        XCTAssertEqual(DisplayWidth.of("한국어"), 6)
        XCTAssertEqual(DisplayWidth.of("ｆｕｌｌ"), 8)
        XCTAssertEqual(DisplayWidth.of("😀"), 2)
        XCTAssertEqual(DisplayWidth.of("👩‍👩‍👧"), 2)
        XCTAssertEqual(DisplayWidth.of("🇫🇷"), 2)
        XCTAssertEqual(DisplayWidth.of("❤️"), 2)   // text-default emoji with VS16
        XCTAssertEqual(DisplayWidth.of("❤"), 1)    // without it: text presentation
        XCTAssertEqual(DisplayWidth.of("e\u{301}"), 1)
        XCTAssertEqual(DisplayWidth.of(Character("\u{301}")), 0)
        XCTAssertEqual(DisplayWidth.of(Character("\u{200B}")), 0)  // zero-width space (format)
        XCTAssertEqual(DisplayWidth.of(Character("\u{1B}")), 0)
    }
}

final class InputLineTests: XCTestCase {
    func testShortLineShowsWholeWithCursor() {
        let view = InputLine.render(promptWidth: 8, characters: Array("hello"), cursor: 2, columns: 80)
        XCTAssertEqual(view, InputLine(visible: "hello", cursorColumn: 10))
    }

    func testWideCharactersCountTwoCells() {
        let view = InputLine.render(promptWidth: 2, characters: Array("日本😀x"), cursor: 3, columns: 80)
        XCTAssertEqual(view.cursorColumn, 2 + 6)
    }

    func testLongLineScrollsToKeepTheCursorVisible() {
        let text = Array("abcdefghijklmnopqrstuvwxyz")
        // 20 columns, prompt 5: 14 cells available (the last column stays free).
        let atEnd = InputLine.render(promptWidth: 5, characters: text, cursor: text.count, columns: 20)
        XCTAssertEqual(atEnd.visible, "nopqrstuvwxyz")
        XCTAssertEqual(atEnd.cursorColumn, 18)
        XCTAssertLessThan(atEnd.cursorColumn, 19)
        let atStart = InputLine.render(promptWidth: 5, characters: text, cursor: 0, columns: 20)
        XCTAssertEqual(atStart.visible, "abcdefghijklmn")
        XCTAssertEqual(atStart.cursorColumn, 5)
    }

    func testScrolledWideTextNeverOverflows() {
        let text = Array(String(repeating: "日", count: 30))
        for cursor in 0...text.count {
            let view = InputLine.render(promptWidth: 3, characters: text, cursor: cursor, columns: 21)
            XCTAssertLessThanOrEqual(3 + DisplayWidth.of(view.visible), 20, "cursor \(cursor)")
            XCTAssertLessThanOrEqual(view.cursorColumn, 19, "cursor \(cursor)")
        }
    }
}
