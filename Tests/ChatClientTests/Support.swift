// Test support: the built `chat` binary as a child process with pipes, and tmux for a real pseudo-terminal
// (the in-process chatd, clock and waits are in ChatTestSupport). Every wait polls a condition with a deadline;
// every process started here is killed by its PID, also when a test fails.

import ChatTestSupport
import Foundation
import Glibc
import XCTest

/// `chat` as a child process with stdin, stdout and stderr on pipes (so it runs in pipe mode).
final class ChatProcess {
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let errors = Pipe()
    private(set) var stdout = ""
    private(set) var stderr = ""
    private var inputOpen = true

    init(_ arguments: [String]) throws {
        signal(SIGPIPE, SIG_IGN)  // writing to a child that exited must fail, not kill the test runner
        process.executableURL = URL(fileURLWithPath: builtProduct("chat"))
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
    }

    deinit {
        kill()
    }

    /// Writes to the child's stdin.
    func write(_ text: String) {
        let fd = input.fileHandleForWriting.fileDescriptor
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            bytes = bytes.dropFirst(n)
        }
    }

    func closeInput() {
        if inputOpen {
            inputOpen = false
            try? input.fileHandleForWriting.close()
        }
    }

    /// Reads whatever the child printed so far.
    func pump() {
        for (pipe, isError) in [(output, false), (errors, true)] {
            var poller = pollfd(fd: pipe.fileHandleForReading.fileDescriptor, events: Int16(POLLIN), revents: 0)
            while poll(&poller, 1, 0) > 0 && poller.revents & Int16(POLLIN) != 0 {
                var chunk = [UInt8](repeating: 0, count: 65536)
                let n = chunk.withUnsafeMutableBytes { Glibc.read(poller.fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                let text = String(decoding: chunk[..<n], as: UTF8.self)
                if isError { stderr += text } else { stdout += text }
            }
        }
    }

    var stdoutLines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }

    /// Waits until stdout has a line equal to `line`.
    func expectLine(_ line: String, timeout: Double = 5) throws {
        try waitUntil("chat to print \"\(line)\"; stdout so far:\n\(stdout)\nstderr:\n\(stderr)", timeout: timeout) {
            pump()
            return stdoutLines.contains(line)
        }
    }

    /// Waits until the child exits; returns its status.
    func waitForExit(timeout: Double = 5) throws -> Int32 {
        try waitUntil("chat to exit; stdout:\n\(stdout)\nstderr:\n\(stderr)", timeout: timeout) {
            pump()
            return !process.isRunning
        }
        process.waitUntilExit()
        pump()
        return process.terminationStatus
    }

    func kill() {
        closeInput()
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// A private tmux server (its own socket name), killed by PID at the end.
final class Tmux {
    let socketName = "chat-test-\(getpid())-\(UInt32.random(in: 0..<UInt32.max))"
    private var serverPID: pid_t?

    static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") }

    @discardableResult
    func run(_ arguments: [String]) throws -> String {
        let (status, text) = try execute(arguments)
        if status != 0 { throw TestTimeout(what: "tmux \(arguments): \(text)") }
        if serverPID == nil, let pid = pid_t(try execute(["display-message", "-p", "#{pid}"]).output) {
            serverPID = pid
        }
        return text
    }

    /// Runs one tmux command with posix_spawn and waitpid. Not Foundation's Process: the tmux server that
    /// `new-session` forks inherits the child's descriptors, and Process then never sees the client end.
    /// Output goes to a file for the same reason (a pipe would never reach end-of-file).
    private func execute(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let path = NSTemporaryDirectory() + "\(socketName)-\(UInt32.random(in: 0..<UInt32.max)).out"
        defer { unlink(path) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ["tmux", "-L", socketName, "-f", "/dev/null"] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["TERM"] = environment["TERM"].flatMap { $0 == "dumb" ? nil : $0 } ?? "xterm-256color"
        environment.removeValue(forKey: "TMUX")
        let envp = environment.map { "\($0.key)=\($0.value)" }
        var cArgv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cEnvp: [UnsafeMutablePointer<CChar>?] = envp.map { strdup($0) } + [nil]
        defer {
            cArgv.forEach { free($0) }
            cEnvp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/usr/bin/tmux", &actions, nil, &cArgv, &cEnvp)
        guard rc == 0 else { throw TestTimeout(what: "posix_spawn tmux: errno \(rc)") }
        var status: Int32 = 0
        let deadline = monotonic() + 5
        while waitpid(pid, &status, WNOHANG) == 0 {
            if monotonic() > deadline {
                Glibc.kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                throw TestTimeout(what: "tmux \(arguments.first ?? "") to finish")
            }
            usleep(2_000)
        }
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let exited = status & 0x7F == 0
        return (exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F), text.trimmingCharacters(in: .newlines))
    }

    /// The pane's text, trailing blank lines removed.
    func screen(_ target: String) throws -> [String] {
        var lines = try run(["capture-pane", "-p", "-t", target]).split(separator: "\n", omittingEmptySubsequences: false)
            .map { String($0).replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
        while lines.last?.isEmpty == true { lines.removeLast() }
        return lines
    }

    func display(_ target: String, _ format: String) throws -> String {
        try run(["display-message", "-p", "-t", target, format])
    }

    /// Kills the processes in every pane, then the tmux server, by PID.
    func kill() {
        if let panes = try? execute(["list-panes", "-a", "-F", "#{pane_pid}"]).output {
            for pid in panes.split(separator: "\n").compactMap({ pid_t($0) }) {
                // The pane runs `sh -c 'chat ...'`: kill its children (chat) first, then the shell.
                if let children = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8) {
                    for child in children.split(separator: " ").compactMap({ pid_t($0) }) { Glibc.kill(child, SIGKILL) }
                }
                Glibc.kill(pid, SIGKILL)
            }
        }
        if let pid = serverPID { Glibc.kill(pid, SIGTERM) }
        serverPID = nil
        unlink("/tmp/tmux-\(getuid())/\(socketName)")  // the server leaves its socket file behind when killed
    }

    deinit { kill() }
}
