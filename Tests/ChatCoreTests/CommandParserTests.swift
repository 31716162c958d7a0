@testable import ChatCore
import XCTest

final class CommandParserTests: XCTestCase {
    private func parse(_ text: String) -> ClientLine {
        Array(text.utf8).withUnsafeBytes { CommandParser.parse($0) }
    }

    /// The bytes a range in a parse result designates.
    private func slice(_ text: String, _ range: Range<Int>) -> String {
        String(decoding: Array(text.utf8)[range], as: UTF8.self)
    }

    func testEmptyAndPlainMessages() {
        XCTAssertEqual(parse(""), .empty)
        XCTAssertEqual(parse("hello"), .message(0..<5))
        XCTAssertEqual(parse(" /not a command"), .message(0..<15))
        let cyrillic = "Привет"
        XCTAssertEqual(parse(cyrillic), .message(0..<cyrillic.utf8.count))
    }

    func testDoubleSlashSendsALeadingSlash() {
        let line = "//shrug  "
        guard case .message(let range) = parse(line) else { return XCTFail("not a message") }
        XCTAssertEqual(slice(line, range), "/shrug  ")
        XCTAssertEqual(parse("//"), .message(1..<2))
        XCTAssertEqual(slice("//", 1..<2), "/")
    }

    func testSimpleCommands() {
        XCTAssertEqual(parse("/rooms"), .command(.rooms))
        XCTAssertEqual(parse("/who"), .command(.who))
        XCTAssertEqual(parse("/help"), .command(.help))
        XCTAssertEqual(parse("/rooms  ignored"), .command(.rooms))
        XCTAssertEqual(parse("/who ignored"), .command(.who))
    }

    func testCommandWordIsCaseInsensitive() {
        XCTAssertEqual(parse("/JOIN dev"), .command(.join(room: "dev")))
        XCTAssertEqual(parse("/Join #Dev"), .command(.join(room: "#Dev")), "arguments keep their case")
        XCTAssertEqual(parse("/WHO"), .command(.who))
        XCTAssertEqual(parse("/QuIt"), .command(.quit(reason: "")))
        XCTAssertEqual(parse("/HELP"), .command(.help))
        XCTAssertEqual(parse("/NiCk Bob"), .command(.nick("Bob")))
        guard case .command(.privateMessage(let to, _)) = parse("/MSG Bob hi") else { return XCTFail() }
        XCTAssertEqual(to, "Bob")
    }

    func testJoin() {
        XCTAssertEqual(parse("/join dev"), .command(.join(room: "dev")))
        XCTAssertEqual(parse("/join #dev"), .command(.join(room: "#dev")))
        XCTAssertEqual(parse("/join    dev   "), .command(.join(room: "dev")), "spaces around the room are trimmed")
        XCTAssertEqual(parse("/join dev\t"), .command(.join(room: "dev")), "trailing tab trimmed")
        XCTAssertEqual(parse("/join"), .command(.usage("/join ROOM")))
        XCTAssertEqual(parse("/join   "), .command(.usage("/join ROOM")))
        XCTAssertEqual(parse("/join a b"), .command(.usage("/join ROOM")))
    }

    func testNick() {
        XCTAssertEqual(parse("/nick Олег"), .command(.nick("Олег")))
        XCTAssertEqual(parse("/nick  Олег  "), .command(.nick("Олег")))
        XCTAssertEqual(parse("/nick"), .command(.usage("/nick NEWNAME")))
        XCTAssertEqual(parse("/nick "), .command(.usage("/nick NEWNAME")))
        XCTAssertEqual(parse("/nick a b"), .command(.usage("/nick NEWNAME")))
    }

    func testMe() {
        let line = "/me  waves  slowly "
        guard case .command(.me(let range)) = parse(line) else { return XCTFail("not /me") }
        XCTAssertEqual(slice(line, range), "waves  slowly ", "leading spaces skipped, the rest byte-exact")
        XCTAssertEqual(parse("/me"), .command(.usage("/me TEXT")))
        XCTAssertEqual(parse("/me   "), .command(.usage("/me TEXT")))
    }

    func testQuit() {
        XCTAssertEqual(parse("/quit"), .command(.quit(reason: "")))
        XCTAssertEqual(parse("/quit   "), .command(.quit(reason: "")))
        XCTAssertEqual(parse("/quit see you  "), .command(.quit(reason: "see you")))
        XCTAssertEqual(parse("/quit  до свидания"), .command(.quit(reason: "до свидания")))
    }

    func testPrivateMessageKeepsTextByteExact() {
        let line = "/msg Олег   two  spaces\tand tab  "
        guard case .command(.privateMessage(let to, let range)) = parse(line) else { return XCTFail("not /msg") }
        XCTAssertEqual(to, "Олег")
        // Exactly one separating space is removed; everything after it is the text, untouched.
        XCTAssertEqual(slice(line, range), "  two  spaces\tand tab  ")
        XCTAssertEqual(range.upperBound, line.utf8.count)

        let simple = "/msg bob hi"
        XCTAssertEqual(parse(simple), .command(.privateMessage(to: "bob", text: 9..<11)))
        // Extra spaces before the name are skipped.
        let spaced = "/msg   bob x"
        guard case .command(.privateMessage(let to2, let range2)) = parse(spaced) else { return XCTFail() }
        XCTAssertEqual(to2, "bob")
        XCTAssertEqual(slice(spaced, range2), "x")
    }

    func testPrivateMessageUsage() {
        for line in ["/msg", "/msg ", "/msg bob", "/msg bob ", "/msg    "] {
            XCTAssertEqual(parse(line), .command(.usage("/msg NAME TEXT")), line.debugDescription)
        }
        // Two spaces after the name: the text is the second space, not empty.
        guard case .command(.privateMessage(_, let range)) = parse("/msg bob  ") else { return XCTFail() }
        XCTAssertEqual(slice("/msg bob  ", range), " ")
    }

    func testUnknownCommand() {
        XCTAssertEqual(parse("/frobnicate now"), .command(.unknown("frobnicate")))
        XCTAssertEqual(parse("/FROB"), .command(.unknown("frob")))
        XCTAssertEqual(parse("/"), .command(.unknown("")))
        XCTAssertEqual(parse("/ leading space"), .command(.unknown("")))
        XCTAssertEqual(parse("/ПРИВЕТ"), .command(.unknown("привет")))
        XCTAssertEqual(parse("/joined x"), .command(.unknown("joined")), "prefix of a word is not the command")
    }

    func testUsagesTableListsEveryCommand() {
        let names = CommandParser.usages.map(\.name)
        XCTAssertEqual(names, ["join", "rooms", "who", "msg", "nick", "me", "quit", "help"])
        for (name, usage) in CommandParser.usages {
            XCTAssertTrue(usage.hasPrefix("/" + name), usage)
            // Every listed name parses as a known command (a usage error or the command itself), never unknown.
            if case .command(.unknown) = parse("/" + name) { XCTFail("/\(name) parsed as unknown") }
        }
    }
}
