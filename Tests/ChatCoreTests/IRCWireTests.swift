// The IRC front's pure pieces: the message parser, server-time values, how a long message is cut into
// IRC lines, and the text check that lets IRC formatting through.

@testable import ChatCore
@testable import ChatFronts
import XCTest

final class IRCWireTests: XCTestCase {
    /// Parses `line` and hands the message to `body` (it points into the line's bytes).
    private func parse(_ line: String, _ body: (IRCMessage) -> Void) throws {
        let bytes = Array(line.utf8)
        var failure: IRCParseError?
        bytes.withUnsafeBytes { raw in
            do { body(try IRCMessage(parsing: raw)) } catch { failure = error as? IRCParseError }
        }
        if let failure { throw failure }
    }

    private func parseError(_ line: [UInt8]) -> IRCParseError? {
        var failure: IRCParseError?
        line.withUnsafeBytes { raw in
            do { _ = try IRCMessage(parsing: raw) } catch { failure = error as? IRCParseError }
        }
        return failure
    }

    func testCommandParametersAndTrailing() throws {
        try parse("PRIVMSG #lobby :hello  there ") { message in
            XCTAssertEqual(message.commandName, "PRIVMSG")
            XCTAssertEqual(message.parameterCount, 2)
            XCTAssertEqual(message.parameterString(0), "#lobby")
            XCTAssertEqual(message.parameterString(1), "hello  there ", "the trailing parameter is byte-exact")
            XCTAssertTrue(message.lastParameterIsTrailing)
        }
        try parse("nick   alice") { message in
            XCTAssertEqual(message.commandName, "NICK", "commands are case-insensitive")
            XCTAssertEqual(message.parameterString(0), "alice", "runs of spaces separate")
        }
        try parse("TOPIC #a :") { message in
            XCTAssertEqual(message.parameterCount, 2)
            XCTAssertEqual(message.parameterString(1), "", "an empty trailing parameter is a parameter")
        }
        try parse("001 x") { message in XCTAssertEqual(message.command, .numeric(1)) }
    }

    func testTagsAndSourceAreSeparated() throws {
        try parse("@+draft/typing=active;time=2026-01-01T00:00:00.000Z :alice!a@h PRIVMSG bob :hi") { message in
            XCTAssertTrue(message.hasTags)
            XCTAssertEqual(message.tag("time")?.value, "2026-01-01T00:00:00.000Z")
            XCTAssertEqual(message.tag("+draft/typing")?.isClientOnly, true)
            XCTAssertEqual(message.source.map { String(decoding: $0, as: UTF8.self) }, "alice!a@h")
            XCTAssertEqual(message.commandName, "PRIVMSG")
            XCTAssertEqual(message.parameterString(1), "hi")
        }
        try parse("@k=a\\:b\\sc\\\\d\\ :x PING y") { message in
            XCTAssertEqual(message.tag("k")?.value, "a;b c\\d", "escapes undone, a lone trailing backslash dropped")
        }
    }

    func testFifteenParametersAtMost() throws {
        let many = (1...20).map(String.init).joined(separator: " ")
        try parse("CMD " + many) { message in
            XCTAssertEqual(message.parameterCount, 15)
            XCTAssertEqual(message.parameterString(14), (15...20).map(String.init).joined(separator: " "), "the 15th takes the rest")
        }
    }

    func testBadLinesAreTypedErrors() {
        XCTAssertEqual(parseError(Array("    ".utf8)), .empty)
        XCTAssertEqual(parseError(Array(("PRIVMSG #a :" + String(repeating: "x", count: 600)).utf8)), .tooLong)
        XCTAssertNil(parseError(Array(("PRIVMSG #a :" + String(repeating: "x", count: 510 - 12)).utf8)), "510 bytes without CR LF fit")
        XCTAssertEqual(parseError(Array(("PRIVMSG #a :" + String(repeating: "x", count: 510 - 11)).utf8)), .tooLong)
        XCTAssertEqual(parseError(Array("PRIVMSG #a :nul\u{0}byte".utf8)), .forbiddenByte)
        XCTAssertEqual(parseError(Array(("@" + String(repeating: "a", count: 5000) + " PING x").utf8)), .tagsTooLong)
        // The tag data limit at its exact edge: 4094 bytes between `@` and the space parse, 4095 do not (the scan
        // used to stop one byte short and then accept the space just past it).
        XCTAssertNil(parseError(Array(("@" + String(repeating: "a", count: 4094) + " PING x").utf8)))
        XCTAssertEqual(parseError(Array(("@" + String(repeating: "a", count: 4095) + " PING x").utf8)), .tagsTooLong)
        XCTAssertEqual(parseError(Array(("@" + String(repeating: "a", count: 4096) + " PING x").utf8)), .tagsTooLong)
        XCTAssertEqual(parseError(Array(":source-only".utf8)), .noCommand)
        XCTAssertEqual(parseError(Array("PR1VMSG x".utf8)), .invalidCommand)
    }

    func testServerTime() {
        func time(_ ms: UInt64) -> String { IRCTime.string(milliseconds: ms) }
        XCTAssertEqual(time(0), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(time(951_782_400_000), "2000-02-29T00:00:00.000Z", "leap day")
        XCTAssertEqual(time(1_798_761_599_999), "2026-12-31T23:59:59.999Z", "year end")
        XCTAssertEqual(time(253_402_300_800_000), "10000-01-01T00:00:00.000Z", "past 9999 the year grows")
    }

    /// A long message becomes several lines of at most 512 bytes, cut after a space or at a UTF-8 boundary,
    /// whose texts put together are the message exactly.
    func testLongTextIsCutIntoWholeLinesAndNothingIsLost() {
        let source = Array("someone!~user@192.0.2.1".utf8)
        let samples = [
            (0..<900).map { "w\($0)" }.joined(separator: " "),
            String(repeating: "ж", count: 2000),                    // 2-byte scalars, no spaces
            String(repeating: "😀", count: 700),                    // 4-byte scalars
            "x",
        ]
        for text in samples {
            var record: [UInt8] = []
            Array(text.utf8).withUnsafeBytes { raw in
                IRCText.appendMessage(verb: IRCWords.privmsg, source: source, target: nil, targetName: Array("bob".utf8),
                                      text: raw, action: false, tags: nil, into: &record)
            }
            let lines = record.split(separator: 10).map { Array($0) }
            var rebuilt: [UInt8] = []
            for line in lines {
                XCTAssertLessThanOrEqual(line.count + 1, 512, "every line within 512 bytes with CR LF")
                XCTAssertEqual(line.last, 13)
                let prefix = Array(":someone!~user@192.0.2.1 PRIVMSG bob :".utf8)
                XCTAssertEqual(Array(line.prefix(prefix.count)), prefix)
                let piece = Array(line.dropFirst(prefix.count).dropLast())
                XCTAssertNotNil(String(validating: piece, as: UTF8.self), "no line cuts a UTF-8 sequence")
                rebuilt += piece
            }
            XCTAssertEqual(rebuilt, Array(text.utf8))
            if text.utf8.count > 600 { XCTAssertGreaterThan(lines.count, 1) }
        }
    }

    func testIRCFormattingPassesAndOtherControlsDoNot() {
        func problem(_ text: String) -> String? { Array(text.utf8).withUnsafeBytes { IRCNames.textProblem($0) } }
        XCTAssertNil(problem("\u{2}bold\u{2} \u{3}4,5red\u{3} \u{1D}it\u{1F}u\u{1E}s\u{11}m\u{16}r\u{F}"))
        XCTAssertNil(problem("\u{1}ACTION waves\u{1}"))
        XCTAssertNotNil(problem("esc \u{1B}[2J"))
        XCTAssertNotNil(problem("c1 \u{9B}"))
        XCTAssertNotNil(problem("sep \u{2028} x"))
        XCTAssertNotNil(problem("open \u{202E} bidi"))
    }

    func testNativeRenderingStripsFormatting() {
        var out: [UInt8] = []
        Array("\u{2}b\u{2} \u{3}04,12c\u{3} \u{4}FF00AAh\u{F}!".utf8).withUnsafeBytes { NativeText.appendStrippingFormatting($0, to: &out) }
        XCTAssertEqual(String(decoding: out, as: UTF8.self), "b c h!")
    }
}
