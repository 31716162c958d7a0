// The server password (`password-file`) on the native front: `/pass PASSWORD` before the name.

@testable import ChatServer
import ChatSys
import ChatTestSupport
import Foundation
import XCTest

final class PasswordTests: XCTestCase {
    private func passwordFile(_ contents: String) throws -> String {
        let path = NSTemporaryDirectory() + "chatd-password-\(UUID().uuidString)"
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testANameNeedsThePasswordFirstAndAWrongOneDisconnects() throws {
        let path = try passwordFile("open sesame\n")
        let server = try TestServer { config in
            try! config.apply(key: "password-file", value: path)
        }
        defer { server.stop() }

        let early = try LineClient(port: server.port)
        try early.expect(prefix: "SYS Hello:")
        early.send("alice\n")
        XCTAssertEqual(try early.expect(prefix: "ERR "), "ERR password-required this server needs a password: send /pass PASSWORD, then your name")
        XCTAssertNil(server.server.hub.session(named: "alice"), "no name without the password")

        let wrong = try LineClient(port: server.port)
        wrong.send("/pass open sesam\n")
        let parting = try wrong.expectClose()
        XCTAssertEqual(parting.last, "ERR password-incorrect wrong password; disconnecting")

        early.send("/pass open sesame\n")
        early.send("alice\n")
        XCTAssertTrue(try early.expect(prefix: "SYS Welcome: ").hasPrefix("SYS Welcome: alice."))
    }

    func testThePasswordFileIsCheckedWhenRead() throws {
        var config = ServerConfig()
        XCTAssertThrowsError(try config.apply(key: "password-file", value: try passwordFile("\nsecond line"))) { error in
            XCTAssertTrue("\(error)".contains("the first line is empty"), "\(error)")
        }
        XCTAssertThrowsError(try config.apply(key: "password-file", value: try passwordFile(String(repeating: "p", count: 256)))) { error in
            XCTAssertTrue("\(error)".contains("over 255 bytes"), "\(error)")
        }
        XCTAssertThrowsError(try config.apply(key: "password-file", value: "/nonexistent/chatd-password"))
        try config.apply(key: "password-file", value: try passwordFile("s3cret\r\nignored\n"))
        XCTAssertEqual(config.password, Array("s3cret".utf8), "first line, CR LF dropped")
    }
}
