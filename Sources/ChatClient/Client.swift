// Client: the running `chat`: one epoll loop over stdin, the server socket and a signalfd. No threads:
// everything the client waits for is a descriptor or a deadline, so one loop serves it (a reader thread
// would need locking around the screen, which is shared by incoming lines and the line being typed).
//
// Two modes, chosen once: interactive (stdin and stdout are terminals) runs the raw-mode line editor and
// redraws the prompt and the partial input below every incoming line; pipe mode (anything else) sends
// each input line, prints each server line as it arrives, and at end of input half-closes and waits a
// bounded grace for the server to answer everything it was sent.

import ChatCore
import ChatSys

public struct ClientOptions: Sendable {
    public var host = "127.0.0.1"
    public var port: UInt16 = 12345
    public var name: String?
    public var timestamps = false
    public var reconnect = false
    /// After /quit, Ctrl-D or the end of piped input: how long to wait for the server to close.
    public var grace = 3.0
    public var connectTimeout = 10.0
    public var maxBackoff = 30.0

    public init() {}
}

public final class Client {
    private static let stdinToken: UInt64 = 1
    private static let signalToken: UInt64 = 2
    private static let firstSocketToken: UInt64 = 16

    private let options: ClientOptions
    private let loop: EventLoop
    private let interactive: Bool
    private let palette: Palette

    private var session = ChatSession()
    private var editor = LineEditor()
    private var keys = KeyDecoder()
    /// A name from `--name`, or typed (interactive) or read (pipe) before the first welcome.
    private var presetName: String?
    private var everWelcomed = false

    // Terminal and stdin.
    private var savedTerminal: TerminalAttributes?
    private var columns = 80
    private var stdinFD: Int32 = 0
    private var stdinOwned = false
    /// False for a regular file or /dev/null (epoll refuses them): reads there never block, so the loop just reads.
    private var stdinPollable = true
    private var stdinReadable = true
    private var stdinOpen = true
    private var stdinLines = LineFramer(maxLineBytes: 1 << 20)
    private var signalFD: Int32 = -1

    // The connection.
    private var socket: Int32 = -1
    private var generation: UInt64 = 0
    private var connecting = false
    private var addresses: [SocketAddress] = []
    private var addressIndex = 0
    private var outbound: [UInt8] = []
    private var outboundOffset = 0
    private var halfClosePending = false
    private var halfClosed = false
    private var serverLines = LineFramer(maxLineBytes: 1 << 22)
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)

    // Pipe mode.
    private var pendingLines: [String] = []
    private var inputEnded = false

    // Deadlines (monotonic ns) and the outcome.
    private var connectDeadline: UInt64?
    private var reconnectAt: UInt64?
    private var finishDeadline: UInt64?
    private var backoff: Backoff
    private var exitCode: ChatExit?

    public init(options: ClientOptions, environment: [String: String]) throws(SysError) {
        self.options = options
        // Signals first: blocked signals are inherited by threads created later, and the signalfd sees them.
        signalFD = try Sys.signalFD([SignalNumber.interrupt, SignalNumber.terminate, SignalNumber.hangup, SignalNumber.windowChange])
        Sys.ignoreSIGPIPE()
        loop = try EventLoop(maxEventsPerTurn: 64)
        interactive = Sys.isTerminal(0) && Sys.isTerminal(1)
        palette = Palette(enabled: interactive && Palette.wanted(stdoutIsTerminal: true, environment: environment))
        presetName = options.name
        backoff = Backoff(initial: 0.5, cap: max(0.5, options.maxBackoff))
        try loop.register(signalFD, token: Self.signalToken, interest: .input)
    }

    deinit {
        readBuffer.deallocate()
        if socket >= 0 { Sys.close(socket) }
        if stdinOwned { Sys.close(stdinFD) }
        Sys.close(signalFD)
    }

    /// Runs until the session ends; returns the exit status.
    public func run() -> ChatExit {
        setUpStdin()
        if interactive { enterRawMode() }
        startConnecting()
        while exitCode == nil {
            do {
                try loop.runOnce(timeoutMs: nextTimeoutMs()) { token, readiness in
                    handle(token, readiness)
                }
            } catch {
                fail("event loop: \(error)", .connectionLost)
                break
            }
            serviceStdin()
            checkDeadlines()
        }
        if interactive { leaveRawMode() }
        closeSocket()
        return exitCode ?? .ok
    }

    // MARK: Terminal

    private func enterRawMode() {
        guard let saved = try? Sys.terminalAttributes(0) else { return }
        savedTerminal = saved
        Sys.restoreTerminalOnFatalSignals(0, saved)
        try? Sys.setTerminalAttributes(0, Sys.rawInputAttributes(from: saved))
        columns = Sys.terminalColumns(1) ?? 80
        writeOut(inputLineText())
    }

    private func leaveRawMode() {
        // Leave the transcript as it is and the cursor on a clean line.
        writeOut("\r\u{1B}[K")
        if let saved = savedTerminal { try? Sys.setTerminalAttributes(0, saved) }
    }

    private var prompt: String {
        let offline = socket < 0 || connecting ? "(offline) " : ""
        switch session.phase {
        case .naming: return offline + "name: "
        case .chatting: return offline + (session.room.map { "#\($0)> " } ?? "> ")
        case .quitting: return ""
        }
    }

    private func inputLineText() -> String {
        let prompt = self.prompt
        let view = InputLine.render(promptWidth: DisplayWidth.of(prompt), characters: editor.characters,
                                    cursor: editor.cursor, columns: columns)
        var text = "\r\u{1B}[K" + palette.prompt(prompt) + view.visible + "\r"
        if view.cursorColumn > 0 { text += "\u{1B}[\(view.cursorColumn)C" }
        return text
    }

    /// Shows one line: in a terminal above the input line, which is redrawn below it; in pipe mode on stdout.
    private func show(_ line: DisplayLine, raw: String? = nil) {
        var text = ""
        if options.timestamps {
            let now = Sys.localTimeOfDay()
            text = timestampPrefix(hour: now.hour, minute: now.minute, second: now.second)
        }
        if interactive {
            writeOut(Self.rowsText(line, prefix: text, columns: columns, palette: palette) + inputLineText())
        } else if let raw {
            writeOut(text + DisplayLine.sanitize(raw) + "\n")
        }
    }

    /// What `show` writes for `line` in a terminal: its rows (`ScreenRows`), each on a cleared row and painted
    /// on its own, with the terminal's auto-wrap (DECAWM) off while they are written, so that every row break on
    /// the screen is one the client made and marked. Auto-wrap is back on before the input line is drawn.
    static func rowsText(_ line: DisplayLine, prefix: String, columns: Int, palette: Palette) -> String {
        let rows = ScreenRows.wrap(line.text, columns: columns, used: DisplayWidth.of(prefix))
        var text = "\u{1B}[?7l"
        for (index, row) in rows.enumerated() {
            text += "\r\u{1B}[K" + (index == 0 ? prefix : ScreenRows.indent) + palette.paint(row, line.kind) + "\n"
        }
        return text + "\u{1B}[?7h"
    }

    /// A message from the client itself: on screen in a terminal, on stderr in pipe mode.
    private func notice(_ text: String, _ kind: DisplayLine.Kind = .system) {
        if interactive {
            show(DisplayLine(kind, (kind == .error ? "!! " : "-- ") + text))
        } else {
            writeError("chat: \(text)\n")
        }
    }

    private func writeOut(_ text: String) {
        var text = text
        let ok = text.withUTF8 { bytes in
            (try? Sys.writeAll(1, UnsafeRawBufferPointer(bytes))) != nil
        }
        // stdout gone (`chat | head -1`): nobody is reading any more, so end quietly.
        if !ok && exitCode == nil { exitCode = .ok }
    }

    private func writeError(_ text: String) {
        var text = text
        text.withUTF8 { bytes in _ = try? Sys.writeAll(2, UnsafeRawBufferPointer(bytes)) }
    }

    private func fail(_ text: String, _ code: ChatExit) {
        notice(text, .error)
        exitCode = code
    }

    // MARK: Stdin

    private func setUpStdin() {
        if let copy = Sys.reopenNonBlocking(0) {
            do throws(SysError) {
                try loop.register(copy, token: Self.stdinToken, interest: .input)
                stdinFD = copy
                stdinOwned = true
                return
            } catch {
                Sys.close(copy)  // EPERM: a regular file or /dev/null; fall through to plain reads
            }
        } else if (try? loop.register(0, token: Self.stdinToken, interest: .input)) != nil {
            // A socket on stdin (no /proc copy possible): its flags are ours to set.
            try? Sys.setNonBlocking(0)
            return
        }
        stdinPollable = false
    }

    /// Reads stdin while it has data and the client can take more (in pipe mode, input waits while the
    /// socket's queue is long, so a large file cannot fill memory).
    private func serviceStdin() {
        while stdinOpen && stdinReadable && exitCode == nil {
            if !interactive && outbound.count - outboundOffset > 256 * 1024 { return }
            let result: IOResult<Int>
            do {
                result = try Sys.read(stdinFD, into: readBuffer)
            } catch {
                stdinEnded()
                return
            }
            switch result {
            case .wouldBlock:
                stdinReadable = false
                return
            case .done(0):
                stdinEnded()
                return
            case .done(let n):
                let bytes = UnsafeRawBufferPointer(rebasing: readBuffer[..<n])
                if interactive {
                    for key in keys.feed(bytes) { handleKey(key) }
                } else {
                    var lines: [String] = []
                    stdinLines.feed(bytes) { framed in
                        if case .line(let line) = framed { lines.append(String(decoding: line, as: UTF8.self)) }
                    }
                    for line in lines { handlePipeLine(line) }
                }
                if !stdinPollable { return }  // a file: one chunk per turn keeps the socket served
            }
        }
    }

    private func stdinEnded() {
        stdinOpen = false
        if stdinOwned {
            loop.deregister(stdinFD)
        }
        if interactive {
            endPolitely()
            return
        }
        if stdinLines.pendingCount > 0 {
            // An unterminated last line is still a line.
            var lines: [String] = []
            let newline: [UInt8] = [10]
            newline.withUnsafeBytes { bytes in
                stdinLines.feed(bytes) { framed in
                    if case .line(let line) = framed { lines.append(String(decoding: line, as: UTF8.self)) }
                }
            }
            for line in lines { handlePipeLine(line) }
        }
        inputEnded = true
        if presetName == nil && session.name == nil && session.requestedName == nil {
            fail("end of input before a name (give --name or make the first line the name)", .nameRefused)
            return
        }
        finishPipeIfDone()
    }

    // MARK: Keys (interactive)

    private func handleKey(_ key: Key) {
        switch editor.apply(key) {
        case .edited:
            writeOut(inputLineText())
        case .redrawScreen:
            writeOut("\u{1B}[H\u{1B}[2J" + inputLineText())
        case .interrupt:
            interrupt(.interrupted)
        case .endOfInput:
            endPolitely()
        case .submit(let line):
            submitTyped(line)
        }
    }

    private func submitTyped(_ line: String) {
        guard !line.isEmpty else {
            writeOut(inputLineText())
            return
        }
        let connected = socket >= 0 && !connecting
        if session.phase == .naming && session.requestedName != nil {
            notice("waiting for the server to answer the name \(session.requestedName!)")
            editor.setText(line)
            writeOut(inputLineText())
            return
        }
        if !connected {
            if ChatSession.commandWord(line) == "quit" {
                exitCode = .ok
            } else if session.phase == .naming && ChatSession.commandWord(line) == nil {
                presetName = line  // sent as soon as the connection is up
                notice("not connected yet; \(line) will be sent as the name")
            } else {
                notice("not connected; line not sent (Up brings it back)", .error)
            }
            return
        }
        let submission = session.submit(line)
        if let text = submission.send {
            if session.phase == .naming { presetName = nil }
            send(text)
        }
        if let echo = submission.echo { show(echo) } else { writeOut(inputLineText()) }
        if submission.quits { startFinishing() }
    }

    /// Ctrl-D, or the end of a terminal's input: `/quit` and wait for the server to close.
    private func endPolitely() {
        guard socket >= 0 && !connecting && session.phase != .quitting else {
            if session.phase != .quitting { exitCode = .ok }
            return
        }
        _ = session.submit("/quit")
        send("/quit")
        writeOut(inputLineText())
        startFinishing()
    }

    /// Ctrl-C or a signal: best-effort `/quit` (so others see a quit, not a dropped line), then end now.
    private func interrupt(_ code: ChatExit) {
        if socket >= 0 && !connecting && session.phase != .quitting {
            let bytes: [UInt8] = Array("/quit\n".utf8)
            _ = bytes.withUnsafeBytes { try? Sys.write(socket, $0) }
        }
        exitCode = code
    }

    private func startFinishing() {
        finishDeadline = Sys.monotonicNanoseconds() + Self.nanoseconds(options.grace)
    }

    // MARK: Lines (pipe mode)

    private func handlePipeLine(_ line: String) {
        if session.phase == .quitting || halfClosePending || halfClosed { return }
        if line.isEmpty { return }
        if !everWelcomed && presetName == nil && session.requestedName == nil {
            presetName = line
            if socket >= 0 && !connecting { sendName(line) }
            return
        }
        if session.phase == .chatting && socket >= 0 && !connecting && pendingLines.isEmpty {
            sendPipeLine(line)
        } else {
            pendingLines.append(line)
        }
    }

    private func sendPipeLine(_ line: String) {
        let submission = session.submit(line)
        if let text = submission.send { send(text) }
        if submission.quits { startFinishing() }
    }

    /// After the welcome: send what waited for it; at end of input, half-close.
    private func finishPipeIfDone() {
        guard !interactive, session.phase == .chatting || session.phase == .quitting,
              socket >= 0, !connecting else { return }
        while !pendingLines.isEmpty && session.phase == .chatting {
            sendPipeLine(pendingLines.removeFirst())
        }
        pendingLines.removeAll()
        if inputEnded && !halfClosePending && !halfClosed {
            // Half-close rather than /quit: the server answers every line it got, then closes (PROTOCOL §9).
            halfClosePending = true
            startFinishing()
            flushSocket()
        }
    }

    // MARK: Connection

    private func startConnecting() {
        reconnectAt = nil
        if addresses.isEmpty || addressIndex >= addresses.count {
            do {
                addresses = try Sys.resolve(host: options.host, port: options.port)
                addressIndex = 0
            } catch {
                connectFailed("\(error)")
                return
            }
        }
        let address = addresses[addressIndex]
        do {
            let (fd, connected) = try Sys.connectNonBlocking(to: address, from: nil)
            socket = fd
            generation += 1
            connecting = !connected
            try loop.register(fd, token: Self.firstSocketToken + generation, interest: .connection)
            connectDeadline = Sys.monotonicNanoseconds() + Self.nanoseconds(options.connectTimeout)
            if connected { connectionEstablished() }
        } catch {
            closeSocket()
            addressIndex += 1
            if addressIndex < addresses.count {
                startConnecting()
            } else {
                connectFailed("cannot connect to \(address): \(Self.reason(error))")
            }
        }
    }

    private func connectionEstablished() {
        connecting = false
        connectDeadline = nil
        addressIndex = 0
        try? Sys.setNoDelay(socket)
        session.connectionStarted()
        if let name = session.name ?? presetName { sendName(name) }
        if interactive { writeOut(inputLineText()) }
        readSocket()
    }

    private func sendName(_ name: String) {
        session.sentName(name)
        send(name)
    }

    private func connectFailed(_ description: String) {
        closeSocket()
        addresses = []
        if options.reconnect {
            scheduleReconnect(description)
        } else {
            fail(description, .unreachable)
        }
    }

    private func scheduleReconnect(_ reason: String) {
        let delay = backoff.nextDelay(unit: Double.random(in: 0..<1))
        reconnectAt = Sys.monotonicNanoseconds() + Self.nanoseconds(delay)
        let seconds = (delay * 10).rounded() / 10
        notice("\(reason); reconnecting in \(seconds) s", .error)
    }

    /// The server closed the connection, or it broke.
    private func connectionClosed(_ reason: String?) {
        let last = session.lastLine
        closeSocket()
        if session.phase == .quitting || halfClosePending || halfClosed {
            exitCode = .ok
            return
        }
        var text = "connection closed by the server"
        if let reason { text = "connection lost: \(reason)" }
        if let last { text += " (last line: \(DisplayLine.sanitize(last)))" }
        if options.reconnect {
            scheduleReconnect(text)
            if interactive { writeOut(inputLineText()) }
        } else {
            fail(text, .connectionLost)
        }
    }

    private func closeSocket() {
        if socket >= 0 {
            Sys.close(socket)  // closing also removes it from epoll
            socket = -1
        }
        connecting = false
        connectDeadline = nil
        outbound.removeAll()
        outboundOffset = 0
        serverLines = LineFramer(maxLineBytes: 1 << 22)
    }

    private func send(_ line: String) {
        guard socket >= 0 else { return }
        outbound.append(contentsOf: line.utf8)
        outbound.append(10)
        flushSocket()
    }

    private func flushSocket() {
        guard socket >= 0, !connecting else { return }
        while outboundOffset < outbound.count {
            let result: IOResult<Int>
            do {
                result = try outbound.withUnsafeBytes { bytes throws(SysError) in
                    try Sys.write(socket, UnsafeRawBufferPointer(rebasing: bytes[outboundOffset...]))
                }
            } catch {
                // withUnsafeBytes rethrows untyped; only Sys.write throws in there.
                connectionClosed((error as? SysError).map(Self.reason) ?? "\(error)")
                return
            }
            guard case .done(let n) = result else { return }  // the next EPOLLOUT edge resumes
            outboundOffset += n
        }
        outbound.removeAll(keepingCapacity: true)
        outboundOffset = 0
        if halfClosePending {
            halfClosePending = false
            halfClosed = true
            Sys.shutdownWrite(socket)
        }
    }

    private func readSocket() {
        let mine = generation
        while socket >= 0 && generation == mine && exitCode == nil {
            let result: IOResult<Int>
            do throws(SysError) {
                result = try Sys.read(socket, into: readBuffer)
            } catch {
                connectionClosed(Self.reason(error))
                return
            }
            switch result {
            case .wouldBlock:
                return
            case .done(0):
                connectionClosed(nil)
                return
            case .done(let n):
                // Lines are collected first: handling one may close this connection and its framer.
                var lines: [String] = []
                serverLines.feed(UnsafeRawBufferPointer(rebasing: readBuffer[..<n])) { framed in
                    switch framed {
                    case .line(let line): lines.append(String(decoding: line, as: UTF8.self))
                    case .overlong: lines.append("ERR line-too-long (a server line over 4 MiB was dropped by the client)")
                    }
                }
                for line in lines where socket >= 0 && generation == mine && exitCode == nil {
                    handleServerLine(line)
                }
            }
        }
    }

    private func handleServerLine(_ line: String) {
        let reaction = session.receive(line)
        show(reaction.display, raw: line)
        if reaction.welcomed {
            everWelcomed = true
            presetName = nil
            backoff.reset()
            if interactive { writeOut(inputLineText()) }
            finishPipeIfDone()
        }
        if reaction.nameRefused {
            if everWelcomed, let name = session.name {
                // A rejoin: the old connection may still hold the name until the server notices it is gone.
                closeSocket()
                scheduleReconnect("the name \(name) is still in use")
            } else if interactive {
                presetName = nil
                writeOut(inputLineText())
            } else {
                fail("name refused: \(line)", .nameRefused)
            }
        }
    }

    // MARK: Events and deadlines

    private func handle(_ token: UInt64, _ readiness: Readiness) {
        switch token {
        case Self.stdinToken:
            stdinReadable = true
        case Self.signalToken:
            while let signal = try? Sys.readSignal(signalFD) {
                switch signal {
                case SignalNumber.windowChange:
                    if interactive {
                        columns = Sys.terminalColumns(1) ?? columns
                        writeOut(inputLineText())
                    }
                case SignalNumber.interrupt: interrupt(.interrupted)
                case SignalNumber.terminate: interrupt(.terminated)
                case SignalNumber.hangup: interrupt(.hangup)
                default: break
                }
            }
        case EventLoop.wakeToken:
            break
        default:
            guard token == Self.firstSocketToken + generation, socket >= 0 else { return }  // stale
            if connecting {
                if let error = Sys.socketError(socket) {
                    let address = addresses.indices.contains(addressIndex) ? "\(addresses[addressIndex])" : options.host
                    closeSocket()
                    addressIndex += 1
                    if addressIndex < addresses.count {
                        startConnecting()
                    } else {
                        connectFailed("cannot connect to \(address): \(error.reason)")
                    }
                    return
                }
                guard readiness.contains(.writable) else { return }
                connectionEstablished()
                return
            }
            if readiness.contains(.writable) { flushSocket() }
            if readiness.contains(.readable) || readiness.contains(.hangup) || readiness.contains(.error) { readSocket() }
        }
    }

    private func nextTimeoutMs() -> Int32 {
        if stdinOpen && stdinReadable && (!stdinPollable || interactive || outbound.count - outboundOffset <= 256 * 1024) {
            return 0
        }
        let deadlines = [connectDeadline, reconnectAt, finishDeadline].compactMap { $0 }
        guard let next = deadlines.min() else { return -1 }
        let now = Sys.monotonicNanoseconds()
        if next <= now { return 0 }
        return Int32(min(UInt64(Int32.max), (next - now + 999_999) / 1_000_000))
    }

    private func checkDeadlines() {
        guard exitCode == nil else { return }
        let now = Sys.monotonicNanoseconds()
        if let deadline = connectDeadline, now >= deadline, connecting {
            connectDeadline = nil
            connectFailed("cannot connect to \(options.host):\(options.port): no answer within \(options.connectTimeout) s")
        }
        if let at = reconnectAt, now >= at {
            reconnectAt = nil
            startConnecting()
        }
        if let deadline = finishDeadline, now >= deadline {
            // The server did not close in time after /quit or end of input: we are done anyway.
            exitCode = .ok
        }
    }

    // MARK: Helpers

    private static func nanoseconds(_ seconds: Double) -> UInt64 {
        UInt64(max(0, seconds) * 1e9)
    }

    private static func reason(_ error: SysError) -> String {
        error.reason
    }
}
