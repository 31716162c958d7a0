// chat: the interactive terminal client for chatd. Parses the command line and runs `ChatClient.Client`.

import ArgumentParser
import ChatClient
import ChatCore
import ChatSys

struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Talk to a chatd server from a terminal, or from a script.",
        discussion: """
            In a terminal (stdin and stdout both terminals) chat edits the line you type while messages \
            arrive above it. Without --name it asks for a name, and asks again if the server refuses it.
            Own messages are green, private messages magenta, server notices dim cyan, errors red; \
            set NO_COLOR to turn colours off. A line wider than the terminal continues on rows indented by \
            two spaces, so only the start of a line is ever at the left edge.

            KEYS
              Enter                  send the line
              Left/Right, Ctrl-B/F   move by character (by word with Ctrl or Alt)
              Home/End, Ctrl-A/E     go to the start/end of the line
              Up/Down, Ctrl-P/N      history
              Backspace, Delete      delete a character
              Ctrl-U, Ctrl-K         delete to the start/end of the line
              Ctrl-W                 delete the previous word
              Ctrl-L                 clear the screen
              Ctrl-D                 /quit (on an empty line)
              Ctrl-C                 quit at once

            COMMANDS (sent to the server; //text sends a message starting with /)
              /join ROOM   /rooms   /who   /msg NAME TEXT   /me TEXT
              /nick NAME   /quit [REASON]   /help

            PIPE MODE (stdin not a terminal)
              Each input line is sent; each server line is printed to stdout as it arrives (raw protocol \
            lines). Without --name the first input line is the name; a refused name ends chat with status 4 \
            (a script cannot answer a question). At end of input chat half-closes the connection, so the \
            server answers every line it was sent, then exits 0 when the server closes (or after --grace seconds).
              printf 'alice\\nhello\\n' | chat

            EXIT STATUS
            \(ChatExit.allCases.map { "  \($0.rawValue)\(String(repeating: " ", count: 5 - String($0.rawValue).count))\($0.meaning)" }.joined(separator: "\n"))
            """
    )

    @Option(help: "Server host name or address.")
    var host = "127.0.0.1"

    @Option(help: "Server port.")
    var port: UInt16 = 12345

    @Option(help: "Your name (1-32 letters, digits, _ - .). Asked for when not given.")
    var name: String?

    @Flag(help: "Prefix each line with the local time (HH:MM:SS).")
    var timestamps = false

    @Flag(help: """
        Reconnect when the connection is lost (or cannot be made), with exponential backoff, \
        and rejoin with the same name.
        """)
    var reconnect = false

    @Option(help: ArgumentHelp("Reconnect delays double from 0.5 s up to this many seconds.", valueName: "seconds"))
    var maxBackoff = 30.0

    @Option(help: ArgumentHelp("Give up connecting after this many seconds.", valueName: "seconds"))
    var connectTimeout = 10.0

    @Option(help: ArgumentHelp("After /quit, Ctrl-D or the end of piped input, wait at most this long for the server to close.",
                               valueName: "seconds"))
    var grace = 3.0

    func validate() throws {
        if let name, let problem = Names.validate(name) {
            throw ValidationError("--name \(name): \(Names.explain(problem))")
        }
        if host.isEmpty { throw ValidationError("--host must not be empty") }
        for (flag, value) in [("--max-backoff", maxBackoff), ("--connect-timeout", connectTimeout), ("--grace", grace)]
        where !(value > 0 && value <= 86400) {
            throw ValidationError("\(flag) must be between 0 and 86400 seconds")
        }
    }
}

let command: ChatCommand
do {
    command = try ChatCommand.parse()
} catch {
    if ChatCommand.exitCode(for: error) == .success {  // --help
        print(ChatCommand.fullMessage(for: error))
        Sys.exit(0)
    }
    Sys.writeStandardError(ChatCommand.fullMessage(for: error) + "\n")
    Sys.exit(ChatExit.usage.rawValue)
}

var options = ClientOptions()
options.host = command.host
options.port = command.port
options.name = command.name
options.timestamps = command.timestamps
options.reconnect = command.reconnect
options.maxBackoff = command.maxBackoff
options.connectTimeout = command.connectTimeout
options.grace = command.grace

var environment: [String: String] = [:]
for name in ["NO_COLOR", "TERM"] {
    if let value = Sys.environmentValue(name) { environment[name] = value }
}

let status: ChatExit
do {
    status = try Client(options: options, environment: environment).run()
} catch {
    Sys.writeStandardError("chat: cannot start: \(error)\n")
    status = .connectionLost
}
Sys.exit(status.rawValue)
