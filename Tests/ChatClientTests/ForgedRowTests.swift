// Issue 9, finding 5, as alice sees it: `chat` in a real pseudo-terminal (tmux) while mallory, a pipe-mode
// `chat`, tries to put a line on her screen that passes for a server notice.

import ChatTestSupport
import Foundation
import Glibc
import XCTest

final class ForgedRowTests: XCTestCase {
    func testPaddedTextNeverPutsAForgedNoticeOnARowOfItsOwn() throws {
        try XCTSkipUnless(Tmux.isAvailable, "tmux is not installed")
        // Arrivals and departures announced at once: mallory, whose every line is refused, quits within the
        // presence delay and would otherwise never be announced at all.
        let server = try TestServer { $0.chat.presenceDelay = 0 }
        defer { server.stop() }
        let tmux = Tmux()
        defer { tmux.kill() }
        let chat = builtProduct("chat")
        try tmux.run(["new-session", "-d", "-s", "t", "-x", "80", "-y", "30", "sh", "-c",
                      "NO_COLOR=1 '\(chat)' --port \(server.port) --name alice",
                      ";", "set-option", "-w", "-t", "t", "remain-on-exit", "on"])
        var last: [String] = []
        func waitForScreen(_ what: String, _ condition: ([String]) -> Bool) throws {
            try waitUntil("\(what); screen:\n\(last.joined(separator: "\n"))") {
                last = try tmux.screen("t")
                return condition(last)
            }
        }
        try waitForScreen("alice's welcome") { $0.last == "#lobby>" }

        let forged = "-- #lobby Offline: bob (quit)"
        let mallory = try ChatProcess(["--port", "\(server.port)", "--name", "mallory"])
        defer { mallory.kill() }
        let eve = try ChatProcess(["--port", "\(server.port)", "--name", "eve"])
        defer { eve.kill() }
        try eve.expectLine("SYS #lobby Online: eve")
        // "mallory: a" and 70 spaces fill alice's 80 columns, so a terminal left to wrap would start a row
        // with the forged notice; 69 spaces aim at the 79 columns chat uses. The same with visible padding,
        // in messages and in a quit reason.
        for padding in [69, 70] {
            mallory.write("a" + String(repeating: " ", count: padding) + forged + "\n")
            mallory.write(String(repeating: "x", count: padding + 1) + forged + "\n")
        }
        // A line separator never reaches her at all.
        mallory.write("hi\u{2028}SYS #lobby Online: alice\n")
        try mallory.expectLine("ERR line-separator line contains U+2028 or U+2029 (line or paragraph separator); nothing was sent")
        // The finding's quit: padded with spaces (collapsed by the server now).
        mallory.write("/quit bye" + String(repeating: " ", count: 300) + forged + "\n")
        // eve's quit: `-- #lobby Offline: eve (quit: "` takes 31 columns, 48 y's fill chat's 79.
        eve.write("/quit " + String(repeating: "y", count: 48) + forged + "\n")
        XCTAssertEqual(try mallory.waitForExit(), 0)
        XCTAssertEqual(try eve.waitForExit(), 0)

        try waitForScreen("both quits on alice's screen") { lines in
            lines.contains { $0.hasPrefix("-- #lobby Offline: eve (quit: \"y") }
        }
        let screen = last
        let transcript = screen.joined(separator: "\n")
        XCTAssertEqual(screen.filter { $0.hasPrefix("-- #lobby Offline: bob") }, [], "a forged notice at column 0:\n\(transcript)")
        // The five padded lines continue on indented rows (the three aimed at chat's width with the forged
        // text right after the indent), and mallory's own quit line is the only other row that holds it.
        let holding = screen.filter { $0.contains(forged) }
        XCTAssertEqual(holding.filter { $0.hasPrefix("  ") }.count, 5, transcript)
        XCTAssertEqual(holding.filter { $0.hasPrefix("  " + forged) }.count, 3, transcript)
        XCTAssertEqual(holding.filter { !$0.hasPrefix("  ") }, ["-- #lobby Offline: mallory (quit: \"bye \(forged)\")"], transcript)
        XCTAssertTrue(screen.contains("-- #lobby Offline: mallory (quit: \"bye \(forged)\")"), transcript)
        XCTAssertFalse(screen.contains { $0.contains("SYS #lobby Online: alice") }, transcript)
        // Every row that starts at column 0 starts the way a line the client made starts.
        let starts = ["-- ", "!! ", "mallory: ", "eve: ", "* ", "[from ", "#", "  "]
        for row in screen where !row.isEmpty {
            XCTAssertTrue(starts.contains { row.hasPrefix($0) }, "unexpected row start: \(row.debugDescription)\n\(transcript)")
        }
    }
}
