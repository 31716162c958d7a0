// Look-alike names over real sockets (docs/ROBUSTNESS.md, "Names").

import ChatTestSupport
import XCTest

final class LookAlikeNamesTests: XCTestCase {
    /// With `alice` online, the all-Cyrillic `аӏісе` and `aIice` (capital I) are taken, an invisible mark
    /// is refused, the connection stays usable, and a real new name then gets in; `/who` lists no look-alike.
    func testLookAlikeNameIsTakenOverTheWire() throws {
        let server = try TestServer()
        defer { server.stop() }
        let alice = try LineClient.named("alice", port: server.port)
        let other = try LineClient(port: server.port)
        try other.expect(prefix: "SYS Hello:")
        other.send("\u{430}\u{4CF}\u{456}\u{441}\u{435}\n")
        XCTAssertEqual(try other.expect(prefix: "ERR "),
                       "ERR name-taken \u{430}\u{4CF}\u{456}\u{441}\u{435} looks like alice, who is online; send another name")
        other.send("aIice\n")
        XCTAssertEqual(try other.expect(prefix: "ERR "), "ERR name-taken aIice looks like alice, who is online; send another name")
        other.send("alice\u{34F}\n")
        XCTAssertTrue(try other.expect(prefix: "ERR ").hasPrefix("ERR name-invalid character U+34F is invisible"))
        other.send("bob\n")
        try other.expect(prefix: "SYS Welcome: bob")
        other.send("/who\n")
        XCTAssertEqual(try other.expect(prefix: "SYS Who "), "SYS Who #lobby (2): alice bob")
        try alice.expect(prefix: "SYS #lobby Online: bob")
        XCTAssertEqual(alice.received.filter { $0.hasPrefix("SYS #lobby Online:") }, ["SYS #lobby Online: alice", "SYS #lobby Online: bob"])
    }
}
