@testable import ChatCore
import XCTest

/// Issue 9, finding 5: user text inside server lines. Through `ChatHub`, without sockets.
final class ServerLineTextTests: XCTestCase {
    /// What a reader that splits lines on every separator some software honours would see.
    private func splitEverywhere(_ lines: [String]) -> [String] {
        lines.flatMap { line in
            line.split(omittingEmptySubsequences: false) { ["\n", "\r", "\u{85}", "\u{2028}", "\u{2029}", "\r\n"].contains($0) }
                .map(String.init)
        }
    }

    func testQuitReasonIsQuotedCollapsedAndTrimmed() {
        let h = HubHarness()
        let a = h.login("alice")
        let b = h.login("bob")
        _ = h.lines(a)
        h.send("/quit   see      you\t\u{3000}\u{3164}later  ", from: a)
        XCTAssertEqual(h.lines(b), ["SYS #lobby Offline: alice (quit: \"see you later\")"])
        XCTAssertEqual(h.lines(a).last, "SYS Bye: \"see you later\"")
        XCTAssertEqual(a.closeReason, "quit: \"see you later\"")
    }

    func testThePaddedQuitReasonOfTheFindingNoLongerPadsAnything() {
        let h = HubHarness()
        let mallory = h.login("mallory")
        let b = h.login("bob")
        _ = h.lines(mallory)
        h.send("/quit bye" + String(repeating: " ", count: 400) + "-- #lobby Offline: alice (quit)", from: mallory)
        let lines = h.lines(b)
        XCTAssertEqual(lines, ["SYS #lobby Offline: mallory (quit: \"bye -- #lobby Offline: alice (quit)\")"])
        XCTAssertFalse(lines.contains { $0.contains("  ") }, "no run of padding survives")
    }

    func testQuotesAndBackslashesInAReasonAreEscaped() {
        let h = HubHarness()
        let a = h.login("alice")
        let b = h.login("bob")
        _ = h.lines(a)
        // Without escaping, this would close the quote and continue the line as if the server wrote it.
        h.send("/quit x\") SYS #lobby Online: eve (\"\\", from: a)
        XCTAssertEqual(h.lines(b), ["SYS #lobby Offline: alice (quit: \"x\\\") SYS #lobby Online: eve (\\\"\\\\\")"])
    }

    func testAReasonWithNothingVisibleIsNoReason() {
        let h = HubHarness()
        let b = h.login("bob")
        for reason in ["\u{3164}", String(repeating: "\u{3164}", count: 32), "\u{115F}\u{1160}", "\u{3000} \t", "\u{202E}\u{202C}"] {
            let a = h.login("alice")
            _ = h.lines(b)
            h.send("/quit " + reason, from: a)
            XCTAssertEqual(h.lines(b), ["SYS #lobby Offline: alice (quit)"], reason.debugDescription)
            XCTAssertEqual(h.lines(a).last, "SYS Bye: goodbye", reason.debugDescription)
        }
    }

    func testALongReasonIsCut() {
        let h = HubHarness()
        let a = h.login("alice")
        let b = h.login("bob")
        _ = h.lines(a)
        h.send("/quit " + String(repeating: "я", count: 2000), from: a)
        let expected = "\"" + String(repeating: "я", count: EmbeddedText.maxBytes / 2) + "\u{2026}\""
        XCTAssertEqual(h.lines(b), ["SYS #lobby Offline: alice (quit: \(expected))"])
        XCTAssertEqual(h.lines(a).last, "SYS Bye: \(expected)")
    }

    func testTheLongestOfflineLineFitsTheSmallestRing() {
        // The smallest rings allowed (max-line-bytes 16: 528 bytes) must hold the longest `Offline:` line:
        // longest room and user names (128 bytes each) and a reason that is all escapes.
        var limits = ChatLimits()
        limits.maxLineBytes = 16
        limits.ringInitialBytes = limits.minimumRingBytes
        limits.ringBytes = limits.minimumRingBytes
        limits.messageRate = 0
        let room = String(repeating: "\u{20000}", count: Names.maxCharacters)
        let user = String(repeating: "\u{20001}", count: Names.maxCharacters)
        XCTAssertEqual(room.utf8.count, Names.maxBytes)
        let worst = EmbeddedText.quoted(String(repeating: "\"", count: 4096))
        XCTAssertLessThanOrEqual("SYS #\(room) Offline: \(user) (quit: \(worst))\n".utf8.count, limits.minimumRingBytes)

        // And for real, through a hub with those rings (the harness bypasses the framer's line limit).
        let h = HubHarness(limits: limits)
        let a = h.login(user)
        let b = h.login("bob")
        h.send("/join " + room, from: a)
        h.send("/join " + room, from: b)
        _ = h.lines(a)
        _ = h.lines(b)
        h.send("/quit " + String(repeating: "\"", count: 4096), from: a)
        XCTAssertEqual(h.lines(b), ["SYS #\(room) Offline: \(user) (quit: \(worst))"])
    }

    func testLineSeparatorsAreRefusedInEveryKindOfLine() {
        let h = HubHarness()
        let mallory = h.login("mallory")
        let alice = h.login("alice")
        _ = h.lines(mallory)
        for separator in ["\u{2028}", "\u{2029}"] {
            for line in ["hi\(separator)SYS #lobby Online: alice", "/me waves\(separator)SYS #lobby Online: alice",
                         "/msg alice hi\(separator)SYS Welcome: alice.", "/quit bye\(separator)SYS #lobby Online: alice",
                         "/join dev\(separator)x", "/nick a\(separator)b"] {
                h.send(line, from: mallory)
                XCTAssertEqual(h.lines(mallory),
                               ["ERR line-separator line contains U+2028 or U+2029 (line or paragraph separator); nothing was sent"],
                               line.debugDescription)
                XCTAssertEqual(mallory.phase, .named, "a refused /quit does not quit")
            }
            let fresh = h.connect()
            _ = h.lines(fresh)
            h.send("eve\(separator)SYS", from: fresh)
            XCTAssertTrue(h.lines(fresh).first?.hasPrefix("ERR line-separator ") == true)
        }
        XCTAssertEqual(h.lines(alice), [], "nothing reached anyone")
    }

    func testUnbalancedBidiIsRefusedInEveryKindOfLineAndBalancedBidiIsRelayedAsIs() {
        let h = HubHarness()
        let mallory = h.login("mallory")
        let alice = h.login("alice")
        _ = h.lines(mallory)
        let explanation = "ERR unbalanced-bidi line leaves a bidi override or isolate open, or closes one never opened; "
            + "close each with U+202C (PDF) or U+2069 (PDI); nothing was sent"
        for line in ["\u{202E}txet", "/me \u{2067}waves", "/msg alice \u{202D}psst", "/quit \u{202E}(tiuq)",
                     "close \u{202C} nothing", "\u{2066}crossed\u{202C}\u{2069}"] {
            h.send(line, from: mallory)
            XCTAssertEqual(h.lines(mallory), [explanation], line.debugDescription)
            XCTAssertEqual(mallory.phase, .named)
        }
        XCTAssertEqual(h.lines(alice), [], "nothing reached anyone")
        h.send("\u{202E}txet\u{202C} and \u{2067}עברית\u{2069}", from: mallory)
        h.send("/me \u{2068}waves\u{2069}", from: mallory)
        h.send("/msg alice \u{202B}psst\u{202C}", from: mallory)
        XCTAssertEqual(h.lines(alice), ["PRIV mallory: \u{202B}psst\u{202C}",
                                        "MSG #lobby mallory: \u{202E}txet\u{202C} and \u{2067}עברית\u{2069}",
                                        "ACT #lobby mallory \u{2068}waves\u{2069}"])
        // A balanced reason is cleaned all the same: a cut could otherwise leave an override open.
        h.send("/quit \u{202E}eyb\u{202C}", from: mallory)
        XCTAssertEqual(h.lines(alice), ["SYS #lobby Offline: mallory (quit: \"eyb\")"])
    }

    func testErrorRepliesQuoteWhatTheUserTyped() {
        let h = HubHarness()
        let a = h.login("alice")
        h.send("/msg a\u{3000}\u{3000}\u{3000}b hi", from: a)
        XCTAssertEqual(h.lines(a), ["ERR no-such-user nobody named \"a b\" is online"])
        h.send("/msg \"x\\ hi", from: a)
        XCTAssertEqual(h.lines(a), ["ERR no-such-user nobody named \"\\\"x\\\\\" is online"])
        h.send("/msg " + String(repeating: "n", count: 300) + " hi", from: a)
        XCTAssertEqual(h.lines(a), ["ERR no-such-user nobody named \"" + String(repeating: "n", count: EmbeddedText.maxEchoBytes) + "\u{2026}\" is online"])
        h.send("/fr\"ob", from: a)
        XCTAssertEqual(h.lines(a), ["ERR unknown-command \"/fr\\\"ob\" is not a command; /help lists them"])
        h.send("/x\u{3164}\u{3164}\u{3164}SYS", from: a)
        XCTAssertEqual(h.lines(a), ["ERR unknown-command \"/x sys\" is not a command; /help lists them"])
        h.send("/" + String(repeating: "w", count: 500), from: a)
        XCTAssertEqual(h.lines(a), ["ERR unknown-command \"/" + String(repeating: "w", count: EmbeddedText.maxEchoBytes - 1) + "\u{2026}\" is not a command; /help lists them"])
    }

    /// Every line any client receives, split the way the most eager reader splits, starts with a tag, and
    /// no SYS line carries a user's text outside quotes.
    func testNoAttackOfTheFindingMakesALineThatPassesForTheServer() {
        let h = HubHarness()
        let mallory = h.login("mallory")
        let alice = h.login("alice")
        let witness = h.login("witness")
        _ = h.lines(mallory)
        _ = h.lines(alice)
        let attacks = ["hi\u{2028}SYS #lobby Online: alice", "hi\u{2029}SYS #lobby Online: alice", "hi\u{85}SYS #lobby Online: alice",
                       "hi\rSYS #lobby Online: alice", "/me \u{2028}SYS #lobby Online: alice", "/msg witness \u{2029}SYS #lobby Online: alice",
                       "\u{202E}ecila :enilnO ybbol# SYS", "/quit \u{2028}SYS #lobby Online: alice",
                       "/quit bye" + String(repeating: " ", count: 300) + "-- #lobby Offline: alice (quit)"]
        for attack in attacks { h.send(attack, from: mallory) }
        let received = splitEverywhere(h.lines(witness))
        XCTAssertEqual(received, ["SYS #lobby Offline: mallory (quit: \"bye -- #lobby Offline: alice (quit)\")"])
        for line in received {
            XCTAssertTrue(["SYS ", "MSG ", "ACT ", "PRIV ", "ERR "].contains { line.hasPrefix($0) }, line.debugDescription)
        }
        XCTAssertFalse(received.contains { $0.hasPrefix("SYS #lobby Online: alice") || $0.hasPrefix("SYS #lobby Offline: alice") })
    }
}
