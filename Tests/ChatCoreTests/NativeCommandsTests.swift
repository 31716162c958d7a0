// The native command table and its parser (ChatFronts/Native/NativeCommands.swift). The assertions read the
// parse as the values below, which spell out what each command received.

@testable import ChatCore
@testable import ChatFronts
import XCTest

final class NativeCommandsTests: XCTestCase {
    enum Command: Equatable {
        case join(room: String)
        case rooms
        case who
        case privateMessage(to: String, text: Range<Int>)
        case nick(String)
        case me(text: Range<Int>)
        case quit(reason: String)
        case help
        case pass(String)
        /// A known command with wrong arguments: its usage from the table.
        case usage(String)
        case unknown(String)
    }

    enum ClientLine: Equatable {
        case empty
        case message(Range<Int>)
        case command(Command)
    }

    private func parse(_ text: String) -> ClientLine {
        let bytes = Array(text.utf8)
        func string(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }
        switch bytes.withUnsafeBytes({ NativeCommands.parse($0) }) {
        case .empty: return .empty
        case .message(let range): return .message(range)
        case .usage(let name): return .command(.usage(NativeCommands.command(named: name)!.usage))
        case .unknown(let word): return .command(.unknown(word))
        case .command(let name, let arguments):
            switch name {
            case "join": return .command(.join(room: string(arguments.word)))
            case "rooms": return .command(.rooms)
            case "who": return .command(.who)
            case "msg": return .command(.privateMessage(to: string(arguments.word), text: arguments.text))
            case "nick": return .command(.nick(string(arguments.word)))
            case "me": return .command(.me(text: arguments.text))
            case "quit": return .command(.quit(reason: string(arguments.text)))
            case "help": return .command(.help)
            case "pass": return .command(.pass(string(arguments.text)))
            default: XCTFail("command \(name) not handled by the test"); return .empty
            }
        }
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
        let names = NativeCommands.table.map(\.name)
        XCTAssertEqual(names, ["join", "rooms", "who", "msg", "me", "nick", "quit", "pass", "help"])
        for (name, usage) in NativeCommands.table.map({ ($0.name, $0.usage) }) {
            XCTAssertTrue(usage.hasPrefix("/" + name), usage)
            // Every listed name parses as a known command (a usage error or the command itself), never unknown.
            if case .command(.unknown) = parse("/" + name) { XCTFail("/\(name) parsed as unknown") }
        }
    }

    /// `/help` comes from the table: every listed command's usage appears, in table order, and nothing else.
    func testHelpIsGeneratedFromTheTable() {
        XCTAssertEqual(NativeCommands.helpTexts, [
            "lines not starting with / go to your room; start a message with // to send a leading /",
            "/join ROOM - leave this room for ROOM (created if new)",
            "/rooms - list rooms; /who - list this room's members",
            "/msg NAME TEXT - private message; /me TEXT - action",
            "/nick NEWNAME - rename; /quit [REASON] - leave",
        ])
        let beforeName = NativeCommands.table.filter(\.allowedBeforeName).map(\.name)
        XCTAssertEqual(beforeName, ["quit", "pass", "help"])
    }

    func testPassKeepsThePasswordByteExactButTrimsTrailingBlanks() {
        XCTAssertEqual(parse("/pass  s3cr et "), .command(.pass("s3cr et")))
        XCTAssertEqual(parse("/pass"), .command(.pass("")))
    }
}
