// chatd: parse flags and the config file, start the engine, run it in the foreground until SIGTERM.

import ArgumentParser
import ChatServer
import ChatSys
import Logging

extension Logger.Level: @retroactive ExpressibleByArgument {}

private func help(_ key: String) -> ArgumentHelp {
    ArgumentHelp(stringLiteral: ServerConfig.settings.first { $0.key == key }?.help ?? "")
}

@main
struct ChatDaemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatd",
        abstract: "A chat server: clients send a name, then lines; every line goes to everyone in their room.",
        discussion: """
            Runs in the foreground and logs to stderr. Try it with: nc 127.0.0.1 12345

            Settings come from the defaults, then --config FILE (key = value lines, keys as the long flag \
            names), then the flags. SIGTERM or SIGINT shuts down gracefully; SIGHUP reloads the config. \
            Under systemd, listening sockets passed by socket activation replace --listen (those named \
            chat, or all if none is named chat or irc) and --irc-listen (those named irc). The wire \
            protocols are described in docs/PROTOCOL.md and docs/IRC.md.

            Exit status: 0 after a clean shutdown, 1 if the server could not start, 2 for a bad setting.
            """
    )

    @Option(name: .long, help: help("listen")) var listen: [String] = []
    @Option(name: .long, help: help("irc-listen")) var ircListen: [String] = []
    @Option(name: .long, help: help("irc-server-name")) var ircServerName: String?
    @Option(name: .long, help: help("irc-ping-interval")) var ircPingInterval: String?
    @Option(name: .long, help: help("irc-ping-timeout")) var ircPingTimeout: String?
    @Option(name: .long, help: "Configuration file of key = value lines (see deploy/chatd.conf): a regular UTF-8 file of at most 1 MiB.") var config: String?
    @Option(name: .long, help: help("log-level")) var logLevel: Logger.Level?
    @Option(name: .long, help: help("password-file")) var passwordFile: String?
    @Option(name: .long, help: help("oper-file")) var operFile: String?
    @Option(name: .long, help: help("max-clients")) var maxClients: String?
    @Option(name: .long, help: help("max-clients-per-address")) var maxClientsPerAddress: String?
    @Option(name: .long, help: help("connect-rate")) var connectRate: String?
    @Option(name: .long, help: help("connect-burst")) var connectBurst: String?
    @Option(name: .long, help: help("ipv6-prefix-length")) var ipv6PrefixLength: String?
    @Option(name: .long, help: help("presence-delay-ms")) var presenceDelayMs: String?
    @Option(name: .long, help: help("rings-max-bytes")) var ringsMaxBytes: String?
    @Option(name: .long, help: help("max-line-bytes")) var maxLineBytes: String?
    @Option(name: .long, help: help("ring-bytes")) var ringBytes: String?
    @Option(name: .long, help: help("client-queue-bytes")) var clientQueueBytes: String?
    @Option(name: .long, help: help("message-rate")) var messageRate: String?
    @Option(name: .long, help: help("message-burst")) var messageBurst: String?
    @Option(name: .long, help: help("max-rooms")) var maxRooms: String?
    @Option(name: .long, help: help("name-timeout")) var nameTimeout: String?
    @Option(name: .long, help: help("write-timeout")) var writeTimeout: String?
    @Option(name: .long, help: help("idle-timeout")) var idleTimeout: String?
    @Option(name: .long, help: help("input-bytes-per-second")) var inputBytesPerSecond: String?
    @Option(name: .long, help: help("input-burst-bytes")) var inputBurstBytes: String?
    @Option(name: .long, help: help("line-timeout")) var lineTimeout: String?
    @Option(name: .long, help: help("shutdown-grace")) var shutdownGrace: String?
    @Option(name: .long, help: help("send-buffer-bytes")) var sendBufferBytes: String?
    @Option(name: .long, help: help("flush-interval-ms")) var flushIntervalMs: String?

    /// The flags given, as settings keys and values, applied after the file. Numbers are taken as the text
    /// given (not parsed by ArgumentParser), so that a flag and a file line are checked by the same strict
    /// parser and fail with the same message (`1e11`, `nan`, `-0` and `0x10` are refused alike).
    private var flagSettings: [(String, String)] {
        var settings: [(String, String)] = listen.map { ("listen", $0) } + ircListen.map { ("irc-listen", $0) }
        if let logLevel { settings.append(("log-level", logLevel.rawValue)) }
        if let passwordFile { settings.append(("password-file", passwordFile)) }
        if let operFile { settings.append(("oper-file", operFile)) }
        if let ircServerName { settings.append(("irc-server-name", ircServerName)) }
        let numbers: [(String, String?)] = [
            ("max-clients", maxClients), ("max-clients-per-address", maxClientsPerAddress),
            ("connect-rate", connectRate), ("connect-burst", connectBurst), ("ipv6-prefix-length", ipv6PrefixLength),
            ("presence-delay-ms", presenceDelayMs), ("rings-max-bytes", ringsMaxBytes),
            ("max-line-bytes", maxLineBytes), ("ring-bytes", ringBytes), ("client-queue-bytes", clientQueueBytes),
            ("message-rate", messageRate), ("message-burst", messageBurst), ("max-rooms", maxRooms),
            ("name-timeout", nameTimeout), ("write-timeout", writeTimeout), ("idle-timeout", idleTimeout),
            ("shutdown-grace", shutdownGrace), ("send-buffer-bytes", sendBufferBytes), ("flush-interval-ms", flushIntervalMs),
            ("input-bytes-per-second", inputBytesPerSecond), ("input-burst-bytes", inputBurstBytes), ("line-timeout", lineTimeout),
            ("irc-ping-interval", ircPingInterval), ("irc-ping-timeout", ircPingTimeout),
        ]
        for case let (key, value?) in numbers { settings.append((key, value)) }
        return settings
    }

    /// Defaults, then the file, then the flags.
    func makeConfig() throws -> ServerConfig {
        var config = ServerConfig()
        config.handleSignals = true
        if let path = self.config {
            // A regular file of at most 1 MiB, read without blocking: this also runs on the loop at SIGHUP.
            try ConfigFile.load(path: path, into: &config)
        }
        for (key, value) in flagSettings { try config.apply(key: key, value: value) }
        try config.validate()
        return config
    }

    func run() throws {
        let config: ServerConfig
        do {
            config = try makeConfig()
        } catch let error as ConfigError {
            Sys.writeStandardError("chatd: \(error)\n")
            throw ExitCode(2)
        }
        // One line per event with one write(2); `<N>` priority prefixes and no timestamps when stderr is the journal.
        LoggingSystem.bootstrap { ChatLogHandler(label: $0) }
        var logger = Logger(label: "chatd")
        logger.logLevel = config.logger.logLevel
        var serverConfig = config
        serverConfig.logger = logger

        let activated = Self.activatedListeners(logger: logger)
        // The watchdog is pinged from the loop's tick, so the tick must come often enough for a short WatchdogSec=.
        let watchdog = Systemd.watchdogMicroseconds()
        if let fastest = ServiceNotifier.tickInterval(forWatchdogMicroseconds: watchdog), fastest < serverConfig.tickInterval {
            serverConfig.tickInterval = fastest
        }
        Sys.raiseOpenFileLimit(to: UInt64(config.maxClients) + 64)
        let server: Server
        do {
            server = try Server(config: serverConfig, inheritedListeners: activated.native,
                                inheritedIRCListeners: activated.irc)
            try server.start()
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            Sys.writeStandardError("chatd: cannot start: \(error)\n")
            throw ExitCode(1)
        }
        let notifier = ServiceNotifier(watchdogMicroseconds: watchdog, tickInterval: serverConfig.tickInterval)
        server.onReload = { server in
            notifier.reloading {
                do {
                    var reloaded = try makeConfig()
                    let level = reloaded.logger.logLevel
                    reloaded.logger = logger
                    reloaded.logger.logLevel = level
                    try server.reload(reloaded)
                } catch {
                    logger.error("reload failed; keeping the running configuration", metadata: ["error": "\(error)"])
                }
            }
        }
        // READY=1 only now: the listeners accept (bound here or inherited), so systemd may route clients to us.
        notifier.attach(to: server)
        do {
            try server.run()
        } catch {
            logger.critical("event loop failed", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }

    /// Listening sockets from socket activation, by name (`FileDescriptorName=`): `chat` (chatd.socket) speak
    /// the native protocol, `irc` (chatd-irc.socket) IRC. If none has either name, every listening TCP socket
    /// is native (`systemd-socket-activate` without `--fdname` names them `unknown`). Other descriptors are
    /// left alone, with a warning.
    static func activatedListeners(logger: Logger) -> (native: [Int32], irc: [Int32]) {
        let passed = Systemd.listenFileDescriptors()
        guard !passed.isEmpty else { return ([], []) }
        let tcp = passed.filter { Systemd.isListeningTCPSocket($0.fd) }
        var native = tcp.filter { $0.name == "chat" }.map(\.fd)
        let irc = tcp.filter { $0.name == "irc" }.map(\.fd)
        if native.isEmpty && irc.isEmpty { native = tcp.map(\.fd) }
        for other in passed where !native.contains(other.fd) && !irc.contains(other.fd) {
            logger.warning("ignoring a descriptor passed by systemd", metadata: ["fd": "\(other.fd)", "name": "\(other.name)"])
        }
        if native.isEmpty && irc.isEmpty {
            logger.warning("systemd passed no listening TCP socket; binding --listen addresses instead")
        }
        return (native, irc)
    }

    /// Argument errors exit with 2 (the convention for bad usage that the issue asks for), help with 0.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let exit as ExitCode {
            Sys.exit(exit.rawValue)
        } catch {
            if exitCode(for: error) == .success { self.exit(withError: error) }
            Sys.writeStandardError(fullMessage(for: error) + "\n")
            Sys.writeStandardError("Run 'chatd --help' for the options.\n")
            Sys.exit(2)
        }
    }
}
