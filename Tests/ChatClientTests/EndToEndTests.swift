// End-to-end tests of the built `chat` binary against a real in-process chatd: pipe mode between two
// clients, the exit codes, reconnecting, and the interactive editor under a real pseudo-terminal (tmux).

import ChatTestSupport
import Foundation
import Glibc
import XCTest

final class PipeModeTests: XCTestCase {
    func testTwoClientsExchangeMessagesAndEndCleanly() throws {
        let server = try TestServer()
        defer { server.stop() }
        let alice = try ChatProcess(["--port", "\(server.port)"])
        defer { alice.kill() }
        alice.write("alice\n")  // without --name, the first line is the name
        try alice.expectLine("SYS Welcome: alice. You are in #lobby; online (1): alice. Type /help for commands.")

        let bob = try ChatProcess(["--port", "\(server.port)", "--name", "bob"])
        defer { bob.kill() }
        try bob.expectLine("SYS #lobby Online: bob")
        bob.write("hello alice, привет 😀\n")
        try alice.expectLine("MSG #lobby bob: hello alice, привет 😀")

        // Alice's input ends right after a command: the reply still arrives before she exits (half-close).
        alice.write("hi bob\n/who")
        alice.closeInput()
        XCTAssertEqual(try alice.waitForExit(), 0)
        XCTAssertTrue(alice.stdoutLines.contains("SYS Who #lobby (2): alice bob"), alice.stdout)
        XCTAssertEqual(alice.stderr, "")

        try bob.expectLine("MSG #lobby alice: hi bob")
        try bob.expectLine("SYS #lobby Offline: alice (connection closed by client)")
        bob.write("/quit done\n")
        XCTAssertEqual(try bob.waitForExit(), 0)
        XCTAssertTrue(bob.stdoutLines.contains("SYS Bye: \"done\""), bob.stdout)
    }

    func testUnreachableServerIsOneLineAndStatus3() throws {
        // A port nobody listens on: bind one, note it, close it.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length); return getsockname(fd, $0, &length) }
        }
        let port = UInt16(bigEndian: address.sin_port)
        close(fd)

        let chat = try ChatProcess(["--port", "\(port)", "--name", "alice"])
        defer { chat.kill() }
        XCTAssertEqual(try chat.waitForExit(), 3)
        XCTAssertEqual(chat.stderr, "chat: cannot connect to 127.0.0.1:\(port): Connection refused\n")
        XCTAssertEqual(chat.stdout, "")
    }

    func testUsageErrorIsStatus2() throws {
        let chat = try ChatProcess(["--port", "not-a-port"])
        defer { chat.kill() }
        XCTAssertEqual(try chat.waitForExit(), 2)
        let invalidName = try ChatProcess(["--name", "has space"])
        defer { invalidName.kill() }
        XCTAssertEqual(try invalidName.waitForExit(), 2)
        XCTAssertTrue(invalidName.stderr.contains("--name has space"), invalidName.stderr)
    }

    func testRefusedNameInPipeModeIsStatus4() throws {
        let server = try TestServer()
        defer { server.stop() }
        let alice = try ChatProcess(["--port", "\(server.port)", "--name", "alice"])
        defer { alice.kill() }
        try alice.expectLine("SYS #lobby Online: alice")
        // The lines after a refused name must not be sent as further name attempts: chat stops.
        let impostor = try ChatProcess(["--port", "\(server.port)"])
        defer { impostor.kill() }
        impostor.write("ALICE\nbob\nsecret text\n")
        XCTAssertEqual(try impostor.waitForExit(), 4)
        XCTAssertTrue(impostor.stderr.hasPrefix("chat: name refused: ERR name-taken"), impostor.stderr)
        XCTAssertFalse(alice.stdout.contains("bob"), alice.stdout)
    }

    func testServerShutdownIsStatus1WithTheLastLine() throws {
        let server = try TestServer()
        let alice = try ChatProcess(["--port", "\(server.port)", "--name", "alice"])
        defer { alice.kill() }
        try alice.expectLine("SYS #lobby Online: alice")
        server.stop()
        XCTAssertEqual(try alice.waitForExit(), 1)
        XCTAssertEqual(alice.stderr,
                       "chat: connection closed by the server (last line: SYS Shutdown: the server is shutting down)\n")
    }

    func testReconnectRejoinsWithTheSameName() throws {
        let first = try TestServer()
        let port = first.port
        let alice = try ChatProcess(["--port", "\(port)", "--name", "alice", "--reconnect", "--max-backoff", "0.5"])
        defer { alice.kill() }
        try alice.expectLine("SYS #lobby Online: alice")
        first.stop()
        try waitUntil("a reconnect notice; stderr: \(alice.stderr)") {
            alice.pump()
            return alice.stderr.contains("reconnecting in")
        }
        let second = try TestServer(port: port)  // the same port, as after a restart
        defer { second.stop() }
        let bob = try ChatProcess(["--port", "\(port)", "--name", "bob"])
        defer { bob.kill() }
        try bob.expectLine("SYS #lobby Online: bob")
        try waitUntil("alice to rejoin; stdout: \(alice.stdout)", timeout: 10) {
            alice.pump()
            return alice.stdoutLines.filter { $0.hasPrefix("SYS Welcome: alice.") }.count == 2
        }
        alice.write("back again\n")
        try bob.expectLine("MSG #lobby alice: back again")
        alice.closeInput()
        XCTAssertEqual(try alice.waitForExit(), 0)
    }
}

final class InteractiveTests: XCTestCase {
    /// Alice uses `chat` in a tmux pane (a real pseudo-terminal); bob is a pipe-mode `chat`.
    func testIncomingLinesNeverGarbleTheLineBeingTyped() throws {
        try XCTSkipUnless(Tmux.isAvailable, "tmux is not installed")
        let server = try TestServer()
        defer { server.stop() }
        let tmux = Tmux()
        defer { tmux.kill() }
        let chat = builtProduct("chat")
        // The wrapper reports the exit status and whether the terminal was restored (icanon, echo).
        let script = "'\(chat)' --port \(server.port) --name alice; echo \"exit=$?\"; stty -a | tr ' ;' '\\n\\n' | grep -x -e -icanon -e icanon -e -echo -e echo"
        try tmux.run(["new-session", "-d", "-s", "t", "-x", "100", "-y", "30", "sh", "-c", script,
                      ";", "set-option", "-w", "-t", "t", "remain-on-exit", "on"])
        func screen() throws -> [String] { try tmux.screen("t") }
        func waitForScreen(_ what: String, _ condition: ([String]) -> Bool) throws {
            var last: [String] = []
            try waitUntil("\(what); screen:\n\(last.joined(separator: "\n"))") {
                last = try screen()
                return condition(last)
            }
        }
        try waitForScreen("alice's welcome") { $0.contains { $0.hasPrefix("-- Welcome: alice.") } && $0.last == "#lobby>" }

        let bob = try ChatProcess(["--port", "\(server.port)", "--name", "bob"])
        defer { bob.kill() }
        try bob.expectLine("SYS #lobby Online: bob")
        try tmux.run(["send-keys", "-t", "t", "-l", "hello wor"])
        try waitForScreen("the partial line") { $0.last == "#lobby> hello wor" }

        // Each incoming line appears above the input line, which is redrawn with the partial input.
        for (index, text) in ["first from bob", "second from bob, 日本語 😀"].enumerated() {
            bob.write(text + "\n")
            try waitForScreen("bob's line \(index + 1) above the partial input") { lines in
                lines.count >= 2 && lines[lines.count - 2] == "bob: \(text)" && lines.last == "#lobby> hello wor"
            }
        }
        let transcript = try screen()
        XCTAssertEqual(transcript.filter { $0.contains("hello wor") }, ["#lobby> hello wor"], "the partial line leaked")

        // Finish the line with some editing: Unicode text, jump to the start, add a prefix, back to the end.
        try tmux.run(["send-keys", "-t", "t", "-l", "ld привет 😀"])
        try waitForScreen("the finished text") { $0.last == "#lobby> hello world привет 😀" }
        let endColumn = 8 + 11 + 1 + 6 + 1 + 2  // prompt, "hello world", " ", "привет", " ", and 😀 two cells wide
        XCTAssertEqual(try tmux.display("t", "#{cursor_x}"), String(endColumn))
        try tmux.run(["send-keys", "-t", "t", "C-a"])
        try waitUntil("the cursor at the start") { try tmux.display("t", "#{cursor_x}") == "8" }
        try tmux.run(["send-keys", "-t", "t", "-l", "» "])
        try tmux.run(["send-keys", "-t", "t", "End", "Left", "BSpace", "Enter"])  // removes the space before 😀
        let sent = "» hello world привет😀"
        try bob.expectLine("MSG #lobby alice: \(sent)")
        try waitForScreen("alice's own line echoed") { $0.suffix(2) == ["alice: \(sent)", "#lobby>"] }

        // Ctrl-D on the empty line: /quit, status 0, terminal restored.
        try tmux.run(["send-keys", "-t", "t", "C-d"])
        try bob.expectLine("SYS #lobby Offline: alice (quit)")
        try waitForScreen("chat to exit and stty to report") { lines in
            lines.contains("exit=0") && lines.contains { $0.hasSuffix("icanon") } && lines.contains { $0.hasSuffix("echo") }
        }
        let end = try screen()
        XCTAssertTrue(end.contains("icanon") && end.contains("echo"), end.joined(separator: "\n"))
        bob.closeInput()
        XCTAssertEqual(try bob.waitForExit(), 0)
    }
}
