// Unit tests of how server lines are classified and shown, the client's protocol state, and backoff.

@testable import ChatClient
import XCTest

final class ServerLineTests: XCTestCase {
    func testClassifiesByFirstToken() {
        XCTAssertEqual(ServerLine(parsing: "MSG #lobby alice: hello: there"),
                       .message(room: "lobby", from: "alice", text: "hello: there"))
        XCTAssertEqual(ServerLine(parsing: "MSG #lobby alice:  indented"),
                       .message(room: "lobby", from: "alice", text: " indented"))
        XCTAssertEqual(ServerLine(parsing: "ACT #dev bob waves  twice"), .action(room: "dev", from: "bob", text: "waves  twice"))
        XCTAssertEqual(ServerLine(parsing: "PRIV alice: see you at 5"), .privateMessage(from: "alice", text: "see you at 5"))
        XCTAssertEqual(ServerLine(parsing: "SYS #lobby Online: bob"), .system(room: "lobby", text: "Online: bob"))
        XCTAssertEqual(ServerLine(parsing: "SYS Bye: see ya"), .system(room: nil, text: "Bye: see ya"))
        XCTAssertEqual(ServerLine(parsing: "ERR name-taken ALICE is already online; send another name"),
                       .error(code: "name-taken", text: "ALICE is already online; send another name"))
        XCTAssertEqual(ServerLine(parsing: "ERR weird"), .error(code: "weird", text: ""))
        XCTAssertEqual(ServerLine(parsing: "HELLO there"), .other("HELLO there"))
        XCTAssertEqual(ServerLine(parsing: "MSG broken"), .other("MSG broken"))
        XCTAssertEqual(ServerLine(parsing: ""), .other(""))
    }

    func testAForgedSystemLineStaysAMessage() {
        // PROTOCOL §3: a user named Online typing `SYS #lobby Online: x`.
        XCTAssertEqual(ServerLine(parsing: "MSG #lobby Online: SYS #lobby Online: x"),
                       .message(room: "lobby", from: "Online", text: "SYS #lobby Online: x"))
    }

    func testDisplayForms() {
        func show(_ line: String, room: String? = "lobby") -> DisplayLine {
            DisplayLine.from(ServerLine(parsing: line), currentRoom: room)
        }
        XCTAssertEqual(show("MSG #lobby bob: hi"), DisplayLine(.message, "bob: hi"))
        XCTAssertEqual(show("MSG #dev bob: hi"), DisplayLine(.message, "#dev bob: hi"))
        XCTAssertEqual(show("ACT #lobby bob waves"), DisplayLine(.message, "* bob waves"))
        XCTAssertEqual(show("PRIV bob: psst"), DisplayLine(.privateMessage, "[from bob] psst"))
        XCTAssertEqual(show("SYS #lobby Online: bob"), DisplayLine(.system, "-- #lobby Online: bob"))
        XCTAssertEqual(show("SYS Bye: goodbye"), DisplayLine(.system, "-- Bye: goodbye"))
        XCTAssertEqual(show("ERR no-such-user carol is not online"),
                       DisplayLine(.error, "!! carol is not online [no-such-user]"))
    }

    func testTerminalControlsAreNeutralised() {
        let line = DisplayLine(.message, "evil \u{1B}]8;;http://x\u{7}link\u{9B}2J\ttab")
        XCTAssertEqual(line.text, "evil \u{FFFD}]8;;http://x\u{FFFD}link\u{FFFD}2J\ttab")
    }

    func testPalette() {
        XCTAssertFalse(Palette.wanted(stdoutIsTerminal: false, environment: [:]))
        XCTAssertTrue(Palette.wanted(stdoutIsTerminal: true, environment: ["TERM": "xterm"]))
        XCTAssertFalse(Palette.wanted(stdoutIsTerminal: true, environment: ["NO_COLOR": "1"]))
        XCTAssertTrue(Palette.wanted(stdoutIsTerminal: true, environment: ["NO_COLOR": ""]))
        XCTAssertFalse(Palette.wanted(stdoutIsTerminal: true, environment: ["TERM": "dumb"]))
        XCTAssertEqual(Palette(enabled: false).paint("x", .error), "x")
        XCTAssertEqual(Palette(enabled: true).paint("x", .error), "\u{1B}[1;31mx\u{1B}[0m")
        // Every kind but others' messages gets its own colour.
        let colours = DisplayLine.Kind.allCases.map(Palette.sgr(for:))
        XCTAssertEqual(Set(colours).count, colours.count)
    }

    func testTimestamp() {
        XCTAssertEqual(timestampPrefix(hour: 9, minute: 5, second: 0), "09:05:00 ")
        XCTAssertEqual(timestampPrefix(hour: 23, minute: 59, second: 59), "23:59:59 ")
    }
}

final class ChatSessionTests: XCTestCase {
    func testNamingWelcomeAndEcho() {
        var session = ChatSession()
        XCTAssertEqual(session.phase, .naming)
        XCTAssertEqual(session.submit("alice"), ChatSession.Submission(send: "alice"))
        XCTAssertEqual(session.requestedName, "alice")
        let refused = session.receive("ERR name-taken alice is already online; send another name")
        XCTAssertTrue(refused.nameRefused)
        XCTAssertNil(session.requestedName)
        _ = session.submit("alice2")
        let welcome = session.receive("SYS Welcome: alice2. You are in #lobby; online (2): alice alice2. Type /help for commands.")
        XCTAssertTrue(welcome.welcomed)
        XCTAssertEqual(session.phase, .chatting)
        XCTAssertEqual(session.name, "alice2")
        XCTAssertEqual(session.room, "lobby")

        XCTAssertEqual(session.submit("hi all").echo, DisplayLine(.own, "alice2: hi all"))
        XCTAssertEqual(session.submit("//etc is a path"), ChatSession.Submission(send: "//etc is a path", echo: DisplayLine(.own, "alice2: /etc is a path")))
        XCTAssertEqual(session.submit("/me waves").echo, DisplayLine(.own, "* alice2 waves"))
        XCTAssertEqual(session.submit("/msg bob  indented").echo, DisplayLine(.privateMessage, "[to bob]  indented"))
        XCTAssertNil(session.submit("/msg bob").echo)
        XCTAssertEqual(session.submit("/who"), ChatSession.Submission(send: "/who"))
        XCTAssertEqual(session.submit(""), ChatSession.Submission())
        // A refusal after the welcome (e.g. of /nick) is only shown.
        XCTAssertFalse(session.receive("ERR name-taken bob is already online; send another name").nameRefused)
    }

    func testRoomAndNickTracking() {
        var session = ChatSession()
        _ = session.submit("alice")
        _ = session.receive("SYS Welcome: alice. You are in #lobby; online (1): alice. Type /help for commands.")
        _ = session.receive("SYS Room: #dev; members (2): alice bob")
        XCTAssertEqual(session.room, "dev")
        _ = session.receive("SYS #dev Nick: bob -> bobby")
        XCTAssertEqual(session.name, "alice")
        _ = session.receive("SYS #dev Nick: alice -> Alice2")
        XCTAssertEqual(session.name, "Alice2")
        XCTAssertEqual(session.receive("MSG #dev bob: x").display, DisplayLine(.message, "bob: x"))
        XCTAssertEqual(session.lastLine, "MSG #dev bob: x")
    }

    func testQuit() {
        var session = ChatSession()
        _ = session.submit("alice")
        _ = session.receive("SYS Welcome: alice. You are in #lobby; online (1): alice. Type /help for commands.")
        let quit = session.submit("/QUIT see ya")
        XCTAssertTrue(quit.quits)
        XCTAssertEqual(quit.send, "/QUIT see ya")
        XCTAssertEqual(session.phase, .quitting)
        XCTAssertNil(session.submit("more").send)
        XCTAssertTrue(session.receive("SYS Bye: see ya").bye)
    }

    func testReconnectKeepsTheAcceptedName() {
        var session = ChatSession()
        _ = session.submit("alice")
        _ = session.receive("SYS Welcome: alice. You are in #lobby; online (1): alice. Type /help for commands.")
        session.connectionStarted()
        XCTAssertEqual(session.phase, .naming)
        XCTAssertEqual(session.nameToRejoin, "alice")
        XCTAssertNil(session.lastLine)
    }

    func testWelcomeParsing() {
        XCTAssertEqual(ChatSession.parseWelcome("Welcome: José. You are in #lobby; online (1): José. Type /help for commands.")?.name, "José")
        XCTAssertNil(ChatSession.parseWelcome("Welcome: garbage"))
    }
}

final class BackoffTests: XCTestCase {
    func testDoublesUpToTheCapThenResets() {
        var backoff = Backoff(initial: 0.5, cap: 4, jitter: 0.2)
        let delays = (0..<7).map { _ in backoff.nextDelay(unit: 0) }
        XCTAssertEqual(delays, [0.5, 1, 2, 4, 4, 4, 4])
        backoff.reset()
        XCTAssertEqual(backoff.nextDelay(unit: 0), 0.5)
    }

    func testJitterOnlyShortens() {
        var backoff = Backoff(initial: 1, cap: 30, jitter: 0.2)
        XCTAssertEqual(backoff.nextDelay(unit: 0.999), 1 - 0.2 * 0.999, accuracy: 1e-9)
        for _ in 0..<100 { XCTAssertLessThanOrEqual(backoff.nextDelay(unit: 0.5), 30) }
    }

    func testExitCodesAreDistinct() {
        let codes = ChatExit.allCases.map(\.rawValue)
        XCTAssertEqual(Set(codes).count, codes.count)
        XCTAssertEqual(ChatExit.unreachable.rawValue, 3)
    }
}
