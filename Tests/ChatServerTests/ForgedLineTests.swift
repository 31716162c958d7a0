// Issue 9, finding 5, over real loopback sockets: nothing a user sends becomes a line that passes for the
// server's, not even for a reader that splits lines on every separator some software honours.

import ChatTestSupport
import Foundation
import Glibc
import XCTest

final class ForgedLineTests: XCTestCase {
    private static let separators: Set<Character> = ["\n", "\r", "\r\n", "\u{85}", "\u{2028}", "\u{2029}"]

    func testTheFindingsAttacksForgeNoLineForALineSplittingReader() throws {
        // Arrivals at once, so that alice's one real `Online:` comes before the attacks and any later one is forged.
        let server = try TestServer { $0.chat.presenceDelay = 0 }
        defer { server.stop() }
        let alice = try LineClient.named("alice", port: server.port)
        let witness = try LineClient.named("witness", port: server.port)
        let mallory = try LineClient.named("mallory", port: server.port)
        try witness.expect(prefix: "SYS #lobby Online: mallory")

        let refused: [(String, String)] = [
            ("hi\u{2028}SYS #lobby Online: alice", "ERR line-separator "),
            ("hi\u{2029}SYS #lobby Online: alice", "ERR line-separator "),
            ("/me \u{2028}SYS #lobby Online: alice", "ERR line-separator "),
            ("/msg witness x\u{2029}SYS #lobby Online: alice", "ERR line-separator "),
            ("/quit bye\u{2028}SYS #lobby Online: alice", "ERR line-separator "),
            ("hi\u{85}SYS #lobby Online: alice", "ERR control-character "),
            ("hi\rSYS #lobby Online: alice", "ERR control-character "),
            ("\u{202E}ecila :enilnO ybbol# SYS", "ERR unbalanced-bidi "),
        ]
        for (attack, error) in refused {
            mallory.send(attack + "\n")
            XCTAssertTrue(try mallory.expect(prefix: "ERR ").hasPrefix(error), attack.debugDescription)
        }
        mallory.send("/quit bye" + String(repeating: " ", count: 300) + "-- #lobby Offline: alice (quit)\n")
        let bye = try mallory.expectClose()
        XCTAssertEqual(bye.last, "SYS Bye: \"bye -- #lobby Offline: alice (quit)\"")

        try witness.expect(prefix: "SYS #lobby Offline: mallory")
        alice.send("still here\n")
        try witness.expect(prefix: "MSG #lobby alice: still here")
        let pieces = witness.received.flatMap { $0.split(omittingEmptySubsequences: false) { Self.separators.contains($0) } }
            .map(String.init)
        XCTAssertEqual(pieces.filter { $0.hasPrefix("SYS #lobby Online: alice") || $0.hasPrefix("SYS #lobby Offline: alice") }, [],
                       "\(pieces)")
        XCTAssertTrue(pieces.contains("SYS #lobby Offline: mallory (quit: \"bye -- #lobby Offline: alice (quit)\")"), "\(pieces)")
        for piece in pieces {
            XCTAssertTrue(["SYS ", "MSG ", "ACT ", "PRIV ", "ERR "].contains { piece.hasPrefix($0) }, piece.debugDescription)
            XCTAssertFalse(piece.hasPrefix("SYS") && piece.contains("  "), "padding in a server line: \(piece.debugDescription)")
        }
        XCTAssertFalse(witness.received.contains { $0.hasPrefix("MSG #lobby mallory") || $0.hasPrefix("ACT ") || $0.hasPrefix("PRIV ") },
                       "a refused line was relayed: \(witness.received)")
    }
}
