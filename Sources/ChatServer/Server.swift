// Server: the engine. One epoll loop wires sockets to the ChatHub: accept, read, frame, flush, time out.

import ChatCore
import ChatFronts
import ChatSys
import Logging

/// The chat daemon's engine, run on one thread.
///
/// Thread-safety: everything runs on the thread that calls `run()`, except `requestStop()`, which may be
/// called from any thread (it only writes to an eventfd). That is why the class is `@unchecked Sendable`.
public final class Server: @unchecked Sendable {
    public private(set) var config: ServerConfig
    private var logger: Logger
    /// Whether each input line is logged (trace). Kept as a Bool: asking the Logger costs an existential call
    /// to its handler, and this is checked for every line read.
    private var tracesLines: Bool
    private let loop: EventLoop
    public let hub: ChatHub
    /// The native protocol, spoken on every `listen` socket.
    public let nativeFront: NativeFront
    /// The IRC protocol, spoken on every `irc-listen` socket.
    public let ircFront: IRCFront
    /// Listening sockets that speak IRC (the others speak the native protocol).
    private var ircListeners: Set<Int32> = []
    private var listeners: [Int32] = []
    private var inheritedListeners: [Int32]
    private var inheritedIRCListeners: [Int32]
    public private(set) var boundAddresses: [SocketAddress] = []
    /// The addresses of the IRC listeners (also in `boundAddresses`).
    public private(set) var ircBoundAddresses: [SocketAddress] = []
    private var timerFD: Int32 = -1
    private var signalFD: Int32 = -1

    /// Connections indexed by fd.
    private var connections: [Connection?] = []
    public private(set) var connectionCount = 0
    private var nextGeneration: UInt32 = 1
    /// Connections per network (IPv4 address or IPv6 prefix), for `max-clients-per-address`.
    private var connectionsPerNetwork: [AddressKey: Int] = [:]
    /// New connections per network per second (`connect-rate`, `connect-burst`).
    private var connectThrottle: ConnectionThrottle<AddressKey>
    private var lastThrottleSweep: UInt64 = 0
    private var lastThrottleWarning: UInt64 = 0
    /// Connections whose read budget ran out: edge-triggered epoll will not report them again, so the
    /// loop must come back to them itself.
    private var readyList: [Connection] = []
    /// Closed this turn; their fds are released after the batch so that no fd number is reused while
    /// events for the old connection may still be in the batch.
    private var closing: [Connection] = []
    /// Connections whose flush waits for their flush interval to pass (see "Flush coalescing").
    private var deferred: [Connection] = []
    /// Ring bytes published while some connection was deferred, to bound how far behind it can fall.
    private var deferredBytes = 0
    /// Connections that spent their input budget; the tick refills them and puts them back on the ready list.
    private var throttled: [Connection] = []

    private let readBuffer: UnsafeMutableRawBufferPointer
    /// See `consume`: a quarter of the smallest ring a room can have at its full size.
    private var earlyFlushBytes: Int { max(hub.limits.ringBytes, hub.limits.minimumRingBytes) / 4 }
    /// A reply at least this long (IRC NAMES of a big channel, a long listing) is written as soon as the line that
    /// asked for it is handled, not at the end of the turn: in a join storm hundreds of joiners' NAMES would
    /// otherwise wait in user-space queues at once (the kernel's socket buffers take them at once).
    static let replyFlushBytes = 8 * 1024
    private let maxIovecs = 64
    private let iovecs: UnsafeMutablePointer<IOVector>

    /// A descriptor kept open to give back when accept fails with EMFILE (see `acceptFailed`).
    private var spareFD: Int32 = -1
    private var acceptPaused = false
    private var lastFDWarning: UInt64 = 0

    private var now: UInt64 = 0
    private var isShuttingDown = false
    private var shutdownDeadline: UInt64 = 0
    private var stopRequested = false

    /// Called on the loop thread when SIGHUP arrives (the daemon reloads its config there).
    public var onReload: ((Server) -> Void)?
    /// Called on the loop thread every tick, after housekeeping (systemd status and watchdog).
    public var onTick: ((Server) -> Void)?
    /// Called on the loop thread once, when shutdown begins (the daemon tells systemd `STOPPING=1`).
    public var onShutdown: ((Server) -> Void)?

    /// Statistics for status lines and tests.
    public private(set) var acceptedTotal: UInt64 = 0
    public private(set) var refusedTotal: UInt64 = 0
    /// Bytes read from all clients, and how often a client spent its input budget and stopped being read.
    public private(set) var inputBytesTotal: UInt64 = 0
    public private(set) var inputThrottledTotal: UInt64 = 0
    /// How often a client's input was paused because its own replies piled up, and partial lines timed out.
    public private(set) var inputPausedTotal: UInt64 = 0
    public private(set) var linesTimedOutTotal: UInt64 = 0

    private static let controlGeneration: UInt64 = 0

    /// Creates the server; `inheritedListeners` and `inheritedIRCListeners` are listening sockets passed by
    /// systemd (socket activation): the first replace `listen`, the second `irc-listen`.
    public init(config: ServerConfig, inheritedListeners: [Int32] = [], inheritedIRCListeners: [Int32] = []) throws {
        try config.validate()
        self.config = config
        self.logger = config.logger
        self.tracesLines = config.logger.logLevel <= .trace
        self.inheritedListeners = inheritedListeners
        self.inheritedIRCListeners = inheritedIRCListeners
        self.loop = try EventLoop()
        // Formats by index: native, IRC plain, IRC with server-time, IRC with message-tags. A room makes a ring
        // for one only when a reader of that format joins it.
        self.hub = ChatHub(limits: config.chat, formats: [NativeFormat(), IRCFormat(.plain), IRCFormat(.time), IRCFormat(.tags)])
        // Message ids are this start's wall clock and a serial: unique across restarts of the deployment.
        hub.idEpoch = Sys.realtimeMilliseconds()
        self.nativeFront = NativeFront(hub: hub, format: 0)
        self.ircFront = IRCFront(hub: hub, plainFormat: 1, timeFormat: 2, tagsFormat: 3)
        nativeFront.password = config.password
        ircFront.password = config.password
        ircFront.operators = config.operators
        ircFront.serverName = config.ircServerName
        ircFront.pingInterval = config.ircPingIntervalNanoseconds
        ircFront.pingTimeout = config.ircPingTimeoutNanoseconds
        self.connectThrottle = ConnectionThrottle(ratePerSecond: config.connectRate, burst: config.connectBurst)
        self.readBuffer = .allocate(byteCount: 64 * 1024, alignment: 64)
        self.iovecs = .allocate(capacity: maxIovecs)
    }

    deinit {
        readBuffer.deallocate()
        iovecs.deallocate()
        for fd in listeners { Sys.close(fd) }
        if timerFD >= 0 { Sys.close(timerFD) }
        if signalFD >= 0 { Sys.close(signalFD) }
        if spareFD >= 0 { Sys.close(spareFD) }
        for case let connection? in connections where !connection.isClosed { Sys.close(connection.fd) }
    }

    // MARK: Reload

    /// Applies a new configuration to the running server (SIGHUP). Limits, timeouts, rates and the log level
    /// change at once; a new ring size or line limit applies to rooms and connections created from now on;
    /// listening addresses cannot change without a restart (a change is logged and ignored).
    public func reload(_ newConfig: ServerConfig) throws(ConfigError) {
        try newConfig.validate()
        if (newConfig.listen != config.listen && inheritedListeners.isEmpty)
            || (newConfig.ircListen != config.ircListen && inheritedIRCListeners.isEmpty) {
            logger.warning("reload: listen addresses change only on restart", metadata: ["kept": "\((config.listen + config.ircListen).map(\.description))"])
        }
        var applied = newConfig
        applied.listen = config.listen
        applied.ircListen = config.ircListen
        applied.handleSignals = config.handleSignals
        config = applied
        logger.logLevel = newConfig.logger.logLevel
        tracesLines = logger.logLevel <= .trace
        hub.limits = newConfig.chat
        nativeFront.password = newConfig.password
        ircFront.password = newConfig.password
        ircFront.operators = newConfig.operators
        ircFront.serverName = newConfig.ircServerName
        ircFront.pingInterval = newConfig.ircPingIntervalNanoseconds
        ircFront.pingTimeout = newConfig.ircPingTimeoutNanoseconds
        connectThrottle.update(ratePerSecond: newConfig.connectRate, burst: newConfig.connectBurst)
        for case let connection? in connections where !connection.isClosed {
            connection.session.updateRate(perSecond: newConfig.chat.messageRate, burst: newConfig.chat.messageBurst)
        }
        logger.notice("configuration reloaded", metadata: ["max-clients": "\(config.maxClients)",
                                                         "message-rate": "\(config.chat.messageRate)",
                                                         "log-level": "\(logger.logLevel)"])
    }

    // MARK: Start and stop

    /// Binds (or adopts) the listeners and sets up timers and signals. After it returns, clients can connect.
    public func start() throws {
        Sys.ignoreSIGPIPE()
        hub.onEvent = { [unowned self] event in self.log(event) }
        hub.flushNow = { [unowned self] session in
            guard let connection = self.connection(for: session), !connection.isClosed, !session.isWriteBlocked else { return }
            self.flush(connection)
        }
        if config.handleSignals {
            signalFD = try Sys.signalFD([SignalNumber.terminate, SignalNumber.interrupt, SignalNumber.hangup])
            try loop.register(signalFD, token: UInt64(UInt32(signalFD)), interest: .input)
        }
        _ = try openListeners(binding: config.listen, orAdopting: inheritedListeners)
        // IRC sockets passed by systemd (named `irc`) replace --irc-listen as native ones replace --listen;
        // without them chatd binds --irc-listen itself, also under socket activation of the native port.
        ircListeners.formUnion(try openListeners(binding: config.ircListen, orAdopting: inheritedIRCListeners))
        for fd in listeners {
            let address = try Sys.localAddress(fd)
            boundAddresses.append(address)
            if ircListeners.contains(fd) { ircBoundAddresses.append(address) }
            try loop.register(fd, token: UInt64(UInt32(fd)), interest: .input)
        }
        timerFD = try Sys.periodicTimer(intervalNanoseconds: config.tickIntervalNanoseconds)
        try loop.register(timerFD, token: UInt64(UInt32(timerFD)), interest: .input)
        spareFD = (try? Sys.openDevNull()) ?? -1
        now = Sys.monotonicNanoseconds()
        logger.info("listening", metadata: ["addresses": "\(boundAddresses.map(\.description).joined(separator: " "))",
                                            "activated": "\(!inheritedListeners.isEmpty || !inheritedIRCListeners.isEmpty)"])
    }

    /// Binds `addresses`, or, when systemd passed sockets for them, adopts `inherited` instead; returns the new
    /// listeners (already in `listeners`, so that a later failure still closes them).
    private func openListeners(binding addresses: [SocketAddress], orAdopting inherited: [Int32]) throws -> ArraySlice<Int32> {
        let first = listeners.count
        if inherited.isEmpty {
            for address in addresses { listeners.append(try Sys.listenTCP(address, backlog: 4096)) }
        } else {
            for fd in inherited {
                try Sys.setNonBlocking(fd)
                try Sys.setCloseOnExec(fd)
                listeners.append(fd)
            }
        }
        return listeners[first...]
    }

    /// Asks the loop to shut down gracefully, as SIGTERM does. Safe from any thread.
    public func requestStop() {
        loop.wakeup()
    }

    /// Runs until shutdown completes. Every turn: wait for events, handle them, serve connections cut
    /// short by their read budget, flush everything due (one writev per client), then release closed fds.
    public func run() throws {
        while true {
            let timeout: Int32 = readyList.isEmpty ? deferredFlushTimeout() : 0
            try loop.runOnce(timeoutMs: timeout) { token, readiness in
                self.dispatch(token: token, readiness: readiness)
            }
            now = Sys.monotonicNanoseconds()
            hub.wallClock = Sys.realtimeMilliseconds()
            serveReadyList()
            requestDueDeferredFlushes()
            flushAll()
            releaseClosed()
            if isShuttingDown && (connectionCount == 0 || now >= shutdownDeadline) { break }
        }
        finishShutdown()
    }

    private func beginShutdown(reason: String) {
        guard !isShuttingDown else { return }
        isShuttingDown = true
        onShutdown?(self)
        shutdownDeadline = now + config.shutdownGraceNanoseconds
        logger.notice("shutting down", metadata: ["reason": "\(reason)", "clients": "\(connectionCount)"])
        for fd in listeners {
            loop.deregister(fd)
            Sys.close(fd)
        }
        listeners.removeAll()
        for case let connection? in connections where !connection.isClosed {
            if connection.isLingering {
                close(connection, reason: connection.session.closeReason ?? "closed")
                continue
            }
            hub.beginClose(connection.session, reason: .closed("server shutdown"),
                           finalLine: connection.session.front.render(.shutdown, for: connection.session), announce: false)
        }
    }

    private func finishShutdown() {
        for case let connection? in connections where !connection.isClosed {
            close(connection, reason: "shutdown deadline passed")
        }
        releaseClosed()
        logger.notice("stopped")
    }

    // MARK: Events

    /// Packs a generation beside the fd: an event whose generation does not match the connection now on
    /// that fd belongs to a connection already closed, and is dropped.
    private func token(for connection: Connection) -> UInt64 {
        UInt64(connection.generation) << 32 | UInt64(UInt32(connection.fd))
    }

    private func dispatch(token: UInt64, readiness: Readiness) {
        if token == EventLoop.wakeToken {
            beginShutdown(reason: "stop requested")
            return
        }
        let fd = Int32(truncatingIfNeeded: token & 0xFFFF_FFFF)
        let generation = UInt32(truncatingIfNeeded: token >> 32)
        if UInt64(generation) == Self.controlGeneration {
            if fd == timerFD {
                _ = try? Sys.readCounter(timerFD)
                tick()
            } else if fd == signalFD {
                handleSignals()
            } else if listeners.contains(fd) {
                acceptAll(from: fd)
            }
            return
        }
        guard Int(fd) < connections.count, let connection = connections[Int(fd)],
              connection.generation == generation, !connection.isClosed else { return }
        if readiness.contains(.writable) || readiness.contains(.error) {
            if connection.session.isWriteBlocked {
                connection.session.isWriteBlocked = false
                hub.requestFlush(connection.session)
            }
        }
        if !readiness.isDisjoint(with: [.readable, .hangup, .error]) {
            readInput(connection)
        }
    }

    private func handleSignals() {
        while let signal = try? Sys.readSignal(signalFD) {
            switch signal {
            case SignalNumber.terminate: beginShutdown(reason: "SIGTERM")
            case SignalNumber.interrupt: beginShutdown(reason: "SIGINT")
            case SignalNumber.hangup:
                logger.notice("SIGHUP: reloading configuration")
                onReload?(self)
            default: break
            }
        }
    }

    // MARK: Accept

    private func acceptAll(from listener: Int32) {
        guard !acceptPaused, !isShuttingDown else { return }
        while true {
            let result: IOResult<(fd: Int32, peer: SocketAddress)>
            do {
                result = try Sys.accept(listener)
            } catch {
                if acceptFailed(listener, error) { continue }
                return
            }
            guard case .done(let accepted) = result else { return }
            adopt(fd: accepted.fd, peer: accepted.peer, front: front(of: listener))
        }
    }

    /// Decides what to do after a failed accept; returns whether to keep accepting.
    private func acceptFailed(_ listener: Int32, _ error: SysError) -> Bool {
        if error.isOutOfDescriptors {
            // Out of descriptors. The pending connection stays in the backlog, and with edge-triggered epoll
            // nothing would wake us for it again: the loop would stall (or, level-triggered, spin). Give back
            // the spare descriptor, accept the connection, tell it why, close it, and take the spare again.
            warnDescriptorsExhausted(error)
            if spareFD >= 0 {
                Sys.close(spareFD)
                spareFD = -1
                var refusedOne = false
                if case .done(let accepted)? = try? Sys.accept(listener) {
                    refuse(accepted.fd, front(of: listener).render(.serverBusy, for: nil))
                    refusedOne = true
                }
                spareFD = (try? Sys.openDevNull()) ?? -1
                // accept4 reports EMFILE before it looks at the queue, so it says EMFILE even when nothing is
                // waiting: go on only while the spare actually caught a connection, or this would spin.
                return refusedOne && spareFD >= 0
            }
            // No spare to give back: stop accepting until the next tick, which tries again.
            acceptPaused = true
            return false
        } else if error.isFailedPendingConnection {
            return true  // that connection failed, not the listener
        } else if error.isOutOfMemory {
            warnDescriptorsExhausted(error)
            acceptPaused = true
            return false
        } else {
            logger.error("accept failed", metadata: ["error": "\(error)"])
            acceptPaused = true
            return false
        }
    }

    private func warnDescriptorsExhausted(_ error: SysError) {
        if now - lastFDWarning > 10_000_000_000 || lastFDWarning == 0 {
            lastFDWarning = now
            logger.warning("cannot accept: refusing new connections until resources free up",
                           metadata: ["error": "\(error)", "clients": "\(connectionCount)"])
        }
    }

    /// Sends one line to a socket we will not serve, and closes it.
    private func refuse(_ fd: Int32, _ line: [UInt8]) {
        refusedTotal += 1
        line.withUnsafeBytes { _ = try? Sys.write(fd, $0) }
        Sys.shutdownWrite(fd)
        Sys.close(fd)
    }

    /// The protocol spoken on a listening socket.
    private func front(of listener: Int32) -> any Front { ircListeners.contains(listener) ? ircFront : nativeFront }

    private func adopt(fd: Int32, peer: SocketAddress, front: any Front) {
        if connectionCount >= config.maxClients {
            refuse(fd, front.render(.serverFull(max: config.maxClients), for: nil))
            logger.warning("refused: server full", metadata: ["peer": "\(peer)", "max-clients": "\(config.maxClients)"])
            return
        }
        let network = peer.networkKey(ipv6PrefixLength: config.ipv6PrefixLength)
        switch connectThrottle.admit(network, now: now) {
        case .admitted:
            break
        case .throttled(let seconds):
            // Refused before anything is allocated or announced: a reconnect loop costs one accept, one short
            // write and one close, and nobody else hears of it.
            refuse(fd, front.render(.throttled(retryAfterSeconds: seconds), for: nil))
            logger.debug("refused: connection throttle", metadata: ["peer": "\(peer)", "retry-after": "\(seconds)"])
            return
        case .admittedUntracked:
            if now &- lastThrottleWarning > 10_000_000_000 || lastThrottleWarning == 0 {
                lastThrottleWarning = now
                logger.warning("connection throttle table full; admitting untracked addresses",
                               metadata: ["entries": "\(connectThrottle.count)"])
            }
        }
        let fromHost = connectionsPerNetwork[network, default: 0]
        if config.maxClientsPerAddress > 0 && fromHost >= config.maxClientsPerAddress {
            refuse(fd, front.render(.tooManyConnections(max: config.maxClientsPerAddress), for: nil))
            logger.warning("refused: per-address limit", metadata: ["peer": "\(peer)", "limit": "\(config.maxClientsPerAddress)"])
            return
        }
        // Nagle would hold small chat lines back; we batch ourselves (one writev per client per turn).
        try? Sys.setNoDelay(fd)
        if config.sendBufferBytes > 0 {
            try? Sys.setSendBuffer(fd, bytes: Int32(config.sendBufferBytes))
        }
        try? Sys.enableKeepalive(fd, idleSeconds: config.keepaliveIdle, intervalSeconds: config.keepaliveInterval,
                                 probes: config.keepaliveProbes)
        let generation = nextGeneration
        nextGeneration = nextGeneration == UInt32.max ? 1 : nextGeneration + 1
        let session = Session(id: UInt64(generation), peer: peer.description, now: now, limits: hub.limits, front: front)
        let connection = Connection(fd: fd, generation: generation, peer: peer, session: session,
                                    maxLineBytes: front === ircFront ? IRCLimits.maxTagSectionBytes + IRCLimits.maxLineBytes : hub.limits.maxLineBytes,
                                    inputBurstBytes: config.inputBurstBytes, now: now)
        do {
            try loop.register(fd, token: token(for: connection), interest: .connection)
        } catch {
            logger.error("cannot register connection", metadata: ["peer": "\(peer)", "error": "\(error)"])
            Sys.close(fd)
            return
        }
        if Int(fd) >= connections.count {
            connections.append(contentsOf: repeatElement(nil, count: max(Int(fd) + 1 - connections.count, connections.count)))
        }
        connections[Int(fd)] = connection
        session.slot = Int(fd)
        connectionCount += 1
        acceptedTotal += 1
        connectionsPerNetwork[network] = fromHost + 1
        connection.network = network
        logger.info("connected", metadata: ["conn": "\(session.id)", "peer": "\(peer)", "clients": "\(connectionCount)"])
        front.open(session)
    }

    // MARK: Input

    // Input budget (input-bytes-per-second, input-burst-bytes). Every byte read costs a token, whatever it
    // holds (empty lines and the discarded rest of an overlong line cost CPU too). A client out of tokens is
    // not read at all until the tick has refilled it: no wake-up per turn, and the socket's receive buffer
    // fills, so the kernel slows the sender. Nothing is lost; it is only read more slowly.
    //
    // Input pause. A client whose own replies pile up in its private queue (pipelined /who, /rooms, errors)
    // is not read further once the queue reaches `inputPauseBytes`: the unprocessed rest of the last read is
    // held, and processing resumes when the queue has drained to `inputResumeBytes`. So a client is never
    // dropped for its replies while it reads; one that does not read fills its socket and is dropped by the
    // write timeout. Per connection, input memory is then bounded by read-budget-bytes (held) plus
    // max-line-bytes + 1 (a partial line, for at most line-timeout).

    private func readInput(_ connection: Connection) {
        if connection.isInputPaused || connection.isThrottled { return }
        if !connection.heldInput.isEmpty {
            consumeHeld(connection)
            if connection.isInputPaused || connection.isClosed { return }
        }
        let limited = config.inputBytesPerSecond > 0
        var budget = config.readBudgetBytes
        if limited {
            refillInput(connection)
            if connection.inputTokens < 1 {
                throttle(connection)
                return
            }
            budget = min(budget, Int(connection.inputTokens))
        }
        while budget > 0 && !connection.isClosed {
            let window = UnsafeMutableRawBufferPointer(rebasing: readBuffer[0..<min(readBuffer.count, budget)])
            let result: IOResult<Int>
            do {
                result = try Sys.read(connection.fd, into: window)
            } catch {
                close(connection, reason: error.isConnectionReset ? "connection reset by peer" : "\(error)")
                return
            }
            switch result {
            case .wouldBlock:
                return
            case .done(0):
                connection.sawEndOfInput = true
                endOfInput(connection)
                return
            case .done(let count):
                budget -= count
                inputBytesTotal &+= UInt64(count)
                if limited { connection.inputTokens -= Double(count) }
                consume(UnsafeRawBufferPointer(rebasing: window[0..<count]), from: connection)
                if connection.isInputPaused { return }
            }
        }
        if connection.isClosed { return }
        if limited && connection.inputTokens < 1 {
            throttle(connection)
        } else {
            addToReadyList(connection)
        }
    }

    private func addToReadyList(_ connection: Connection) {
        if !connection.isClosed && !connection.isOnReadyList {
            connection.isOnReadyList = true
            readyList.append(connection)
        }
    }

    private func refillInput(_ connection: Connection) {
        let rate = Double(config.inputBytesPerSecond)
        guard rate > 0, now > connection.inputRefilledAt else { return }
        // Bounded by the burst (≤ 1 GiB) before any conversion, so no arithmetic here can trap.
        let earned = Double(now - connection.inputRefilledAt) * rate / 1e9
        connection.inputTokens = min(Double(config.inputBurstBytes), connection.inputTokens + earned)
        connection.inputRefilledAt = now
    }

    private func throttle(_ connection: Connection) {
        guard !connection.isThrottled else { return }
        connection.isThrottled = true
        throttled.append(connection)
        inputThrottledTotal &+= 1
    }

    /// Tick: throttled connections whose budget has refilled are read again (edge-triggered epoll will not
    /// report bytes that were already waiting, so they go on the ready list).
    private func refillThrottled() {
        guard !throttled.isEmpty else { return }
        var kept = 0
        for index in throttled.indices {
            let connection = throttled[index]
            if connection.isClosed { continue }
            refillInput(connection)
            if config.inputBytesPerSecond == 0 || connection.inputTokens >= 1 {
                connection.isThrottled = false
                addToReadyList(connection)
            } else {
                throttled[kept] = connection
                kept += 1
            }
        }
        throttled.removeLast(throttled.count - kept)
    }

    private func consume(_ bytes: UnsafeRawBufferPointer, from connection: Connection) {
        let session = connection.session
        if session.phase == .closing { return }  // leaving: input is read only to be discarded
        connection.lastInput = now
        let used = feedLines(bytes, from: connection)
        if used < bytes.count {
            connection.heldInput.append(UnsafeRawBufferPointer(rebasing: bytes[used...]))
        }
        notePartialLine(connection)
        closeTerminated()
    }

    /// Processes input held by an input pause (see above).
    private func consumeHeld(_ connection: Connection) {
        if connection.session.phase == .closing {
            connection.heldInput.release()
            return
        }
        let used = feedLines(connection.heldInput.readable, from: connection)
        connection.heldInput.consume(used)
        notePartialLine(connection)
        closeTerminated()
    }

    /// Frames and handles lines until the input pauses; returns the bytes consumed.
    private func feedLines(_ bytes: UnsafeRawBufferPointer, from connection: Connection) -> Int {
        let session = connection.session
        return connection.framer.feedUntilStopped(bytes) { framed in
            switch framed {
            case .line(let line):
                if tracesLines {
                    logger.trace("line", metadata: ["conn": "\(session.id)", "text": "\(String(decoding: line, as: UTF8.self))"])
                }
                session.front.receive(line, from: session, now: now)
                if hub.bytesSinceFlush >= earlyFlushBytes {
                    // This turn has published a quarter of a ring: flush now, before later lines could
                    // overwrite bytes that readers who keep up simply have not been sent yet.
                    flushAll(force: true)
                } else if session.queuedBytes >= Self.replyFlushBytes && !session.isWriteBlocked {
                    flush(connection)
                    if connection.isClosed { return false }
                }
            case .overlong:
                session.front.lineTooLong(session)
            }
            if session.phase != .closing && hub.wantsInputPaused(session) {
                connection.isInputPaused = true
                inputPausedTotal &+= 1
                return false
            }
            return true
        }
    }

    /// Notes when the framer's current partial line began, for `line-timeout`.
    private func notePartialLine(_ connection: Connection) {
        if connection.framer.pendingCount > 0 && connection.partialSerial != connection.framer.partialSerial {
            connection.partialSerial = connection.framer.partialSerial
            connection.partialSince = now
        }
    }

    /// Output drained: a paused client's input is processed again, from the ready list.
    private func resumeInputIfDrained(_ connection: Connection) {
        guard connection.isInputPaused, !connection.isClosed, hub.mayResumeInput(connection.session) else { return }
        connection.isInputPaused = false
        addToReadyList(connection)
    }

    /// The client shut down its sending side. It may still read: send what is pending, then close.
    private func endOfInput(_ connection: Connection) {
        if connection.isLingering {
            close(connection, reason: connection.session.closeReason ?? "closed")
            return
        }
        hub.beginClose(connection.session, reason: .closed("connection closed by client"), finalLine: nil)
    }

    private func serveReadyList() {
        guard !readyList.isEmpty else { return }
        let due = readyList
        readyList.removeAll(keepingCapacity: true)
        for connection in due {
            connection.isOnReadyList = false
            if !connection.isClosed { readInput(connection) }
        }
    }

    // MARK: Output

    /// Flushes every session with something new, one writev each. With a flush interval, a connection written
    /// less than `flushInterval` ago waits (see `deferFlush`), unless `force` (the early flush of a busy turn).
    private func flushAll(force: Bool = false) {
        // Deferred readers must not fall a quarter of a ring behind either: past that, everyone is flushed now.
        let forceAll = force || deferredBytes + hub.bytesSinceFlush >= earlyFlushBytes
        if forceAll {
            for connection in deferred where !connection.isClosed { connection.isFlushDeferred = false; hub.requestFlush(connection.session) }
            deferred.removeAll(keepingCapacity: true)
            deferredBytes = 0
        } else if !deferred.isEmpty {
            deferredBytes += hub.bytesSinceFlush
        }
        let interval = flushIntervalNanoseconds
        hub.forEachSessionToFlush { session in
            guard let connection = connection(for: session) else { return }
            if interval > 0 && !forceAll && now &- connection.lastFlushAt < interval && session.phase != .closing {
                deferFlush(connection)
                return
            }
            flush(connection)
        }
        closeTerminated()
    }

    // MARK: Flush coalescing (flush-interval)
    //
    // A loopback write costs the server ~10 µs of CPU whatever its size, so under sustained traffic the cheapest
    // delivery is one write carrying many lines. A connection written less than `flush-interval` ago is not
    // written again at once: it waits until the interval has passed, collecting every line posted meanwhile.
    // A connection that was quiet for longer is written immediately, so light traffic (and interactive use) sees
    // no added latency; under load each client gets at most one write per interval, and latency grows by at
    // most the interval. 0 turns it off (one write per client per turn).

    private var flushIntervalNanoseconds: UInt64 { config.flushIntervalNanoseconds }

    private func deferFlush(_ connection: Connection) {
        guard !connection.isFlushDeferred else { return }
        connection.isFlushDeferred = true
        deferred.append(connection)
    }

    /// Asks the hub to flush deferred connections whose interval has passed (they are flushed by `flushAll`).
    private func requestDueDeferredFlushes() {
        guard !deferred.isEmpty else { return }
        let interval = flushIntervalNanoseconds
        var kept = 0
        for index in deferred.indices {
            let connection = deferred[index]
            if connection.isClosed { continue }
            if interval == 0 || now &- connection.lastFlushAt >= interval {
                connection.isFlushDeferred = false
                hub.requestFlush(connection.session)
            } else {
                deferred[kept] = connection
                kept += 1
            }
        }
        deferred.removeLast(deferred.count - kept)
        if deferred.isEmpty { deferredBytes = 0 }
    }

    /// epoll_wait's timeout: until the earliest deferred flush is due, or forever when none is waiting.
    private func deferredFlushTimeout() -> Int32 {
        guard !deferred.isEmpty else { return -1 }
        let interval = flushIntervalNanoseconds
        var earliest = UInt64.max
        for connection in deferred where !connection.isClosed { earliest = min(earliest, connection.lastFlushAt &+ interval) }
        if earliest == .max { return 0 }
        let current = Sys.monotonicNanoseconds()
        if earliest <= current { return 0 }
        return Int32(min(1000, (earliest - current + 999_999) / 1_000_000))
    }

    private func connection(for session: Session) -> Connection? {
        guard session.slot >= 0, session.slot < connections.count, let connection = connections[session.slot],
              connection.session === session else { return nil }
        return connection
    }

    /// Writes everything due to one client with as few writev calls as the socket allows: usually one.
    private func flush(_ connection: Connection) {
        let session = connection.session
        connection.lastFlushAt = now
        hub.prepareFlush(session)
        while !connection.isClosed {
            var count = 0
            var total = 0
            let vectors = iovecs
            let limit = maxIovecs
            hub.forEachPendingSpan(of: session) { span in
                vectors[count] = IOVector(iov_base: UnsafeMutableRawPointer(mutating: span.baseAddress), iov_len: span.count)
                count += 1
                total += span.count
                return count < limit
            }
            if count == 0 { break }
            let result: IOResult<Int>
            do {
                result = try Sys.writev(connection.fd, vectors, count: count)
            } catch {
                close(connection, reason: error.isBrokenPipe || error.isConnectionReset ? "connection reset by peer" : "\(error)")
                return
            }
            switch result {
            case .wouldBlock:
                markBlocked(connection)
                return
            case .done(let written):
                connection.blockedSince = 0
                connection.wireEndsMidLine = written < total && lastByte(of: vectors, written: written) != 10
                hub.didWrite(written, to: session)
                resumeInputIfDrained(connection)
                if written < total {
                    // A short write means the socket buffer is full; the kernel has noted that we want to
                    // write, so an EPOLLOUT edge will come. Trying again now would only return EAGAIN.
                    markBlocked(connection)
                    return
                }
            }
        }
        if session.isFinished { finishClosing(connection) }
    }

    /// The last byte of the first `written` bytes of `vectors`.
    private func lastByte(of vectors: UnsafeMutablePointer<IOVector>, written: Int) -> UInt8 {
        var offset = 0
        var index = 0
        while offset + vectors[index].iov_len < written {
            offset += vectors[index].iov_len
            index += 1
        }
        return vectors[index].iov_base!.load(fromByteOffset: written - offset - 1, as: UInt8.self)
    }

    /// Writes a last line to a client being dropped, without waiting. If the wire stopped mid-line, a newline
    /// first ends that (cut) line, so the reason arrives as a line of its own.
    private func writeParting(_ line: [UInt8], to connection: Connection) {
        let text = (connection.wireEndsMidLine ? (connection.session.front === ircFront ? [13, 10] : [UInt8(ascii: "\n")]) : []) + line
        text.withUnsafeBytes { _ = try? Sys.write(connection.fd, $0) }
    }

    private func markBlocked(_ connection: Connection) {
        connection.session.isWriteBlocked = true
        if connection.blockedSince == 0 { connection.blockedSince = now }
    }

    /// Everything, including the final line, was written: shut our side and wait briefly for the client's EOF.
    private func finishClosing(_ connection: Connection) {
        guard !connection.isLingering else { return }
        Sys.shutdownWrite(connection.fd)
        if isShuttingDown || connection.sawEndOfInput {
            close(connection, reason: connection.session.closeReason ?? "closed")
            return
        }
        connection.isLingering = true
        connection.lingerDeadline = now + config.lingerTimeoutNanoseconds
    }

    private func closeTerminated() {
        hub.takeTerminated { session in
            guard let connection = connection(for: session), !connection.isClosed else { return }
            if let finalLine = session.finalLineBytes {
                // Best effort: the client's buffer may be full, which is why it is being dropped.
                writeParting(finalLine, to: connection)
            }
            close(connection, reason: session.closeReason ?? "terminated")
        }
    }

    // MARK: Closing

    /// Closes now: a session still in a room leaves it (its members are told `Offline:`); the fd is released
    /// after this batch of events.
    private func close(_ connection: Connection, reason: String) {
        guard !connection.isClosed else { return }
        connection.isClosed = true
        let session = connection.session
        let name = session.name
        hub.remove(session, reason: reason)
        closing.append(connection)
        logger.info("disconnected", metadata: ["conn": "\(session.id)", "peer": "\(connection.peer)",
                                               "name": "\(name ?? "-")", "reason": "\(session.closeReason ?? reason)"])
    }

    private func releaseClosed() {
        guard !closing.isEmpty else { return }
        for connection in closing {
            Sys.close(connection.fd)
            if connections[Int(connection.fd)] === connection { connections[Int(connection.fd)] = nil }
            connectionCount -= 1
            if let count = connectionsPerNetwork[connection.network] {
                connectionsPerNetwork[connection.network] = count > 1 ? count - 1 : nil
            }
        }
        closing.removeAll(keepingCapacity: true)
        if acceptPaused { resumeAccepting() }
    }

    // MARK: Timers

    private func tick() {
        now = Sys.monotonicNanoseconds()
        // Validated ranges and saturating conversions (ServerConfig): no timeout can trap here.
        let nameDeadline = config.nameTimeoutNanoseconds
        let writeDeadline = config.writeTimeoutNanoseconds
        let idleDeadline = config.idleTimeoutNanoseconds
        let lineDeadline = config.lineTimeoutNanoseconds
        refillThrottled()
        for case let connection? in connections where !connection.isClosed {
            let session = connection.session
            if connection.isLingering {
                if now >= connection.lingerDeadline { close(connection, reason: session.closeReason ?? "closed") }
                continue
            }
            if connection.blockedSince > 0 && now - connection.blockedSince >= writeDeadline && session.hasPendingOutput {
                let seconds = config.writeTimeout.compactDescription
                writeParting(session.front.render(.writeTimeout(seconds: seconds), for: session), to: connection)
                close(connection, reason: "write timeout: no bytes accepted for \(seconds) s")
                continue
            }
            if connection.framer.pendingCount > 0 && session.phase != .closing && !connection.isInputPaused
                && connection.heldInput.isEmpty && now &- connection.partialSince >= lineDeadline {
                expirePartialLine(connection)
            }
            if session.front.tick(session, idle: now &- connection.lastInput, now: now) { continue }
            switch session.phase {
            case .awaitingName where now - session.connectedAt >= nameDeadline:
                hub.beginClose(session, reason: .closed("no name within \(config.nameTimeout.compactDescription) s"),
                               finalLine: session.front.render(.nameTimeout(seconds: config.nameTimeout.compactDescription), for: session))
            case .named where idleDeadline > 0 && now - connection.lastInput >= idleDeadline:
                hub.beginClose(session, reason: .closed("idle for \(config.idleTimeout.compactDescription) s"),
                               finalLine: session.front.render(.idleTimeout(seconds: config.idleTimeout.compactDescription), for: session))
            default:
                break
            }
        }
        hub.announceDuePresence(now: now)
        hub.shrinkCaughtUpRings()
        if now &- lastThrottleSweep >= 10_000_000_000 {
            lastThrottleSweep = now
            connectThrottle.sweep(now: now)
        }
        if acceptPaused { resumeAccepting() }
        onTick?(self)
    }

    /// A partial line stayed incomplete for `line-timeout`: drop it (and its rest, up to the newline) and say so.
    /// The connection stays: a half-typed line is not a reason to disconnect, but it may not pin memory forever.
    private func expirePartialLine(_ connection: Connection) {
        let dropped = connection.framer.expirePartial()
        linesTimedOutTotal &+= 1
        let session = connection.session
        hub.enqueue(session.front.render(.lineTimeout(seconds: config.lineTimeout.compactDescription, droppedBytes: dropped), for: session),
                    to: session)
        closeTerminated()
    }

    private func resumeAccepting() {
        acceptPaused = false
        if spareFD < 0 { spareFD = (try? Sys.openDevNull()) ?? -1 }
        // Edge-triggered: connections that queued while we were paused raised no new edge, so look now.
        for fd in listeners { acceptAll(from: fd) }
    }

    // MARK: Logging

    private func log(_ event: HubEvent) {
        switch event {
        case .named(let session):
            logger.info("named", metadata: ["conn": "\(session.id)", "name": "\(session.name ?? "")"])
        case .renamed(let session, let from):
            logger.info("renamed", metadata: ["conn": "\(session.id)", "from": "\(from)", "name": "\(session.name ?? "")"])
        case .joined(let session, let room):
            logger.debug("joined", metadata: ["conn": "\(session.id)", "name": "\(session.name ?? "")", "room": "\(room)"])
        case .missed(let session, let room, let lines):
            logger.notice("slow consumer missed lines", metadata: ["conn": "\(session.id)", "name": "\(session.name ?? "")",
                                                                   "room": "\(room)", "lines": "\(lines)"])
        case .rateLimited(let session):
            logger.debug("rate limited", metadata: ["conn": "\(session.id)", "name": "\(session.name ?? "")"])
        case .terminated(let session, let reason):
            logger.warning("dropping client", metadata: ["conn": "\(session.id)", "name": "\(session.name ?? "")", "reason": "\(reason)"])
        }
    }
}
