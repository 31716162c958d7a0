// Worker: one thread, one epoll loop, a slice of the clients. Connects, greets, sends, and finds tokens in
// everything it reads. Nothing here allocates per message: clients live in one manually allocated array,
// bytes go through one read buffer and one send buffer, counters are plain integers.

import ChatSys
import Histogram
import LoadGenCore

enum ClientState: UInt8 {
    case idle, connecting, awaitingReady, ready, closed, failed
}

struct Client {
    var fd: Int32 = -1
    var state: ClientState = .idle
    /// Receivers are 0..<clients; separate publishers (redis) follow.
    var global: Int
    var isPublisher: Bool
    /// Index among all senders, or -1.
    var senderIndex: Int = -1
    var slow: Bool
    /// Row in this worker's last-sequence table, or -1 for connections that do not receive.
    var receiverSlot: Int = -1
    var connectStartedAt: UInt64 = 0
    /// Line and token state, kept across reads: a line or a token may be split anywhere by the transport.
    var scanner = ReceiveScanner()
    var accepted: UInt64 = 0
    var onlineSeen = 0
    var missedReported = 0
    var errorLines = 0
    var paused = false
    var sent: UInt64 = 0
    /// The unsent tail of a short write (rare: a sender whose socket buffer filled up).
    var pending: [UInt8] = []

    init(global: Int, isPublisher: Bool, slow: Bool) {
        self.global = global
        self.isPublisher = isPublisher
        self.slow = slow
    }
}

/// What one worker measured, merged by the coordinator.
struct WorkerResult {
    var connected = 0
    var failed = 0
    var ready = 0
    var closedByServer = 0
    var deliveries: UInt64 = 0
    var windowDeliveries: UInt64 = 0
    var duplicates: UInt64 = 0
    var reordered: UInt64 = 0
    var gaps: UInt64 = 0
    var loss: UInt64 = 0
    var lossClients = 0
    var slowAccounted = 0
    var slowDroppedWithReason = 0
    var slowUnaccounted: UInt64 = 0
    var slowMissedReported: UInt64 = 0
    var onlineSeen = 0
    var errors: [String: Int] = [:]
    var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)  // µs
    var connectLatency = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)  // µs
}

final class Worker: @unchecked Sendable {
    let index: Int
    let options: LoadOptions
    let spec: ProtocolSpec
    let shared: Shared
    let loop: EventLoop
    let destination: SocketAddress
    let senderCount: Int

    let clients: UnsafeMutablePointer<Client>
    let clientCount: Int
    let receiverCount: Int
    /// lastSeq[receiverSlot * senderCount + sender]: the highest sequence number seen (0: none).
    let lastSeq: UnsafeMutablePointer<UInt64>
    /// Line starts per client, `ReceiveScanner.headBytes` each.
    let heads: UnsafeMutablePointer<UInt8>
    let readBuffer: UnsafeMutableRawBufferPointer
    let sendBuffer: UnsafeMutableRawBufferPointer
    /// Receiver slot whose view of the stream bounds in-flight messages (--rate 0), or -1.
    var watcherSlot = -1
    var localSenders: [Int] = []

    let messagePrefix: [UInt8]
    let messageSuffix: [UInt8]
    let classifier: LineClassifier

    var result = WorkerResult()
    // Progress deltas not yet added to the shared counters.
    private var reportedDeliveries = 0
    private var reportedSent = 0
    private var reportedOnline = 0
    private var totalSentLocal = 0
    private var nextToConnect = 0
    private var connectsInProgress = 0
    private var connectPhaseStart: UInt64 = 0
    private var stoppedSending = false
    private var drained = false
    private var resumedSlow = false
    private var lastDrainCheck: UInt64 = 0
    private var measureStart: UInt64 = .max
    private var measureEnd: UInt64 = .max
    private var sendStart: UInt64 = .max

    init(index: Int, options: LoadOptions, spec: ProtocolSpec, shared: Shared, members: [Client], destination: SocketAddress) throws {
        self.index = index
        self.options = options
        self.spec = spec
        self.shared = shared
        self.destination = destination
        self.loop = try EventLoop(maxEventsPerTurn: 1024)
        senderCount = options.sendsMessages ? options.senders : 0
        clientCount = members.count
        clients = .allocate(capacity: max(1, members.count))
        var slot = 0
        for (i, member) in members.enumerated() {
            var client = member
            if !client.isPublisher {
                client.receiverSlot = slot
                slot += 1
            }
            (clients + i).initialize(to: client)
            if client.senderIndex >= 0 { localSenders.append(i) }
        }
        receiverCount = slot
        let rows = max(1, receiverCount * max(1, senderCount))
        lastSeq = .allocate(capacity: rows)
        lastSeq.initialize(repeating: 0, count: rows)
        heads = .allocate(capacity: max(1, clientCount) * ReceiveScanner.headBytes)
        readBuffer = .allocate(byteCount: 256 * 1024, alignment: 64)
        sendBuffer = .allocate(byteCount: 256 * 1024, alignment: 64)
        for i in 0..<clientCount where !clients[i].isPublisher && clients[i].senderIndex < 0 && !clients[i].slow {
            watcherSlot = clients[i].receiverSlot
            break
        }
        let parts = spec.messageFormat.split(separator: "{payload}", maxSplits: 1, omittingEmptySubsequences: false)
        messagePrefix = Array(parts[0].utf8)
        messageSuffix = parts.count > 1 ? Array(parts[1].utf8) : []
        classifier = LineClassifier(readyPrefix: spec.readyPrefix, onlinePrefix: spec.onlinePrefix, onlineMarker: spec.onlineMarker,
                                    missedPrefix: spec.missedPrefix)
    }

    deinit {
        for i in 0..<clientCount where clients[i].fd >= 0 { Sys.close(clients[i].fd) }
        clients.deinitialize(count: clientCount)
        clients.deallocate()
        lastSeq.deallocate()
        heads.deallocate()
        readBuffer.deallocate()
        sendBuffer.deallocate()
    }

    // MARK: The loop

    func run() {
        while true {
            let phase = shared.currentPhase
            if phase == .done { break }
            let now = Sys.monotonicNanoseconds()
            switch phase {
            case .setup, .done: break
            case .connect, .hold: startConnects(now: now)
            case .send, .stopSending:
                if sendStart == .max {
                    sendStart = shared.sendStart
                    measureStart = shared.measureStart
                    measureEnd = shared.measureEnd
                    for i in 0..<clientCount where clients[i].slow { clients[i].paused = true }
                }
                if !stoppedSending {
                    if now >= measureEnd {
                        stopSending()
                    } else if now >= sendStart {
                        sendDue(now: now)
                    }
                }
            case .drain:
                if !stoppedSending { stopSending() }
                if !resumedSlow { resumeSlow() }
                if !drained && now - lastDrainCheck > 10_000_000 {
                    lastDrainCheck = now
                    if isDrained() {
                        drained = true
                        shared.workersDrained.add(1, ordering: .releasing)
                    }
                }
            }
            let timeout: Int32 = phase == .send || phase == .connect ? 1 : 5
            _ = try? loop.runOnce(timeoutMs: timeout) { token, readiness in
                if token == EventLoop.wakeToken { return }
                self.handle(Int(token), readiness)
            }
            publishProgress()
        }
        publishProgress()
    }

    private func publishProgress() {
        let deliveries = Int(result.deliveries)
        if deliveries != reportedDeliveries {
            shared.deliveries.add(deliveries - reportedDeliveries, ordering: .relaxed)
            reportedDeliveries = deliveries
        }
        if totalSentLocal != reportedSent {
            shared.sent.add(totalSentLocal - reportedSent, ordering: .relaxed)
            reportedSent = totalSentLocal
        }
        if result.onlineSeen != reportedOnline {
            shared.onlineSeen.add(result.onlineSeen - reportedOnline, ordering: .relaxed)
            reportedOnline = result.onlineSeen
        }
    }

    private func handle(_ c: Int, _ readiness: Readiness) {
        guard c < clientCount else { return }
        if clients[c].state == .connecting {
            guard !readiness.isDisjoint(with: [.writable, .error, .hangup]) else { return }
            if let error = Sys.socketError(clients[c].fd) {
                fail(c, "connect: \(error.reason)")
                return
            }
            connected(c)
        }
        let state = clients[c].state
        guard state == .awaitingReady || state == .ready else { return }
        if readiness.contains(.writable) && !clients[c].pending.isEmpty { flushPending(c) }
        if !readiness.isDisjoint(with: [.readable, .hangup, .error]) && !clients[c].paused { readAll(c) }
    }

    // MARK: Connecting

    private func startConnects(now: UInt64) {
        guard nextToConnect < clientCount else { return }
        if connectPhaseStart == 0 { connectPhaseStart = now }
        let perThreadRate = options.connectRate / Double(options.threads)
        var allowed = clientCount - nextToConnect
        if perThreadRate > 0 {
            let due = Int(Double(now - connectPhaseStart) / 1e9 * perThreadRate) + 1
            allowed = min(allowed, due - nextToConnect)
        }
        allowed = min(allowed, options.connectWindow - connectsInProgress)
        var started = 0
        while started < allowed && nextToConnect < clientCount {
            let c = nextToConnect
            nextToConnect += 1
            started += 1
            startConnect(c, now: now)
        }
    }

    private func startConnect(_ c: Int, now: UInt64) {
        let octet = 1 + clients[c].global % options.sourceAddresses
        let source = SocketAddress(parsing: "127.0.0.\(octet):0")
        clients[c].connectStartedAt = now
        do {
            let (fd, done) = try Sys.connectNonBlocking(to: destination, from: source,
                                                        receiveBuffer: clients[c].slow ? options.slowReceiveBuffer : nil)
            clients[c].fd = fd
            clients[c].state = .connecting
            connectsInProgress += 1
            do {
                try loop.register(fd, token: UInt64(c), interest: .connection)
            } catch {
                fail(c, "epoll_ctl: \(error)")
                return
            }
            if done { connected(c) }
        } catch {
            clients[c].state = .failed
            result.failed += 1
            result.errors["\(error)", default: 0] += 1
            shared.failed.add(1, ordering: .relaxed)
        }
    }

    private func connected(_ c: Int) {
        guard clients[c].state == .connecting else { return }
        connectsInProgress -= 1
        let now = Sys.monotonicNanoseconds()
        result.connected += 1
        result.connectLatency.record((now - clients[c].connectStartedAt) / 1000)
        shared.connected.add(1, ordering: .relaxed)
        clients[c].state = .awaitingReady
        if clients[c].isPublisher {
            becomeReady(c)
            return
        }
        if !spec.greeting.isEmpty {
            var greeting = spec.greeting.replacingAll("{name}", with: "\(options.namePrefix)\(clients[c].global)")
            let ok = greeting.withUTF8 { bytes -> Bool in
                if case .done(let n)? = try? Sys.write(clients[c].fd, UnsafeRawBufferPointer(bytes)), n == bytes.count { return true }
                return false
            }
            if !ok {
                fail(c, "greeting not accepted by the socket")
                return
            }
        }
        if classifier.readyPrefix.isEmpty { becomeReady(c) }
    }

    private func becomeReady(_ c: Int) {
        guard clients[c].state == .awaitingReady else { return }
        clients[c].state = .ready
        result.ready += 1
        shared.ready.add(1, ordering: .relaxed)
    }

    private func fail(_ c: Int, _ reason: String) {
        if clients[c].state == .connecting { connectsInProgress -= 1 }
        if clients[c].fd >= 0 { Sys.close(clients[c].fd) }
        clients[c].fd = -1
        clients[c].state = .failed
        result.failed += 1
        result.errors[reason, default: 0] += 1
        shared.failed.add(1, ordering: .relaxed)
    }

    // MARK: Reading

    private func readAll(_ c: Int) {
        while clients[c].fd >= 0 {
            let result: IOResult<Int>
            do {
                result = try Sys.read(clients[c].fd, into: readBuffer)
            } catch {
                closedByServer(c, "read: \(error)")
                return
            }
            switch result {
            case .wouldBlock: return
            case .done(0):
                closedByServer(c, "closed by server")
                return
            case .done(let n):
                consume(c, readBuffer.baseAddress!.assumingMemoryBound(to: UInt8.self), n, now: Sys.monotonicNanoseconds())
                if n < readBuffer.count { return }  // a short read: the socket is empty (saves the EAGAIN call)
            }
        }
    }

    private func closedByServer(_ c: Int, _ reason: String) {
        let wasReady = clients[c].state == .ready || clients[c].state == .awaitingReady
        Sys.close(clients[c].fd)
        clients[c].fd = -1
        clients[c].state = .closed
        if wasReady {
            result.closedByServer += 1
            shared.closedByServer.add(1, ordering: .relaxed)
            if clients[c].errorLines == 0 { result.errors[reason, default: 0] += 1 }
        }
    }

    @inline(__always)
    private func consume(_ c: Int, _ base: UnsafePointer<UInt8>, _ n: Int, now: UInt64) {
        // A copy, so that the callbacks may change the client while the scanner runs; stored back at the end.
        var scanner = clients[c].scanner
        let findTokens = senderCount > 0 && clients[c].receiverSlot >= 0
        scanner.consume(base, count: n, head: heads + c * ReceiveScanner.headBytes, headLimit: classifier.headLimit,
                        findTokens: findTokens,
                        token: { token in
                            // A sender index beyond Int is no sender of ours: `deliver` refuses it like any other.
                            deliver(c, sender: Int(exactly: token.sender) ?? -1, seq: token.seq, sentAt: token.sentAt, now: now)
                        },
                        line: { head in classifyLine(c, head) })
        clients[c].scanner = scanner
    }

    private func classifyLine(_ c: Int, _ head: LineHead) {
        switch classifier.classify(head, awaitingReady: clients[c].state == .awaitingReady) {
        case .ready:
            becomeReady(c)
        case .online:
            clients[c].onlineSeen += 1
            result.onlineSeen += 1
        case .missed(let count):
            // An unreadable count adds nothing: the shortfall then shows as unaccounted, never as hidden loss.
            if let count {
                let (sum, overflow) = clients[c].missedReported.addingReportingOverflow(count)
                clients[c].missedReported = overflow ? Int.max : sum
            }
        case .error(let code):
            clients[c].errorLines += 1
            result.errors[code, default: 0] += 1
        case .other:
            break
        }
    }

    @inline(__always)
    private func deliver(_ c: Int, sender: Int, seq: UInt64, sentAt: UInt64, now: UInt64) {
        guard sender >= 0 && sender < senderCount else { return }
        let slot = clients[c].receiverSlot * senderCount + sender
        let last = lastSeq[slot]
        if seq > last {
            if seq != last + 1 { result.gaps += 1 }
            lastSeq[slot] = seq
            clients[c].accepted += 1
            result.deliveries += 1
            if now >= measureStart && now < measureEnd { result.windowDeliveries += 1 }
            if sentAt >= measureStart && sentAt < measureEnd && now >= sentAt && !clients[c].slow {  // slow ones lag by design
                result.latency.record((now - sentAt) / 1000)
            }
        } else if seq == last {
            result.duplicates += 1
        } else {
            result.reordered += 1
        }
    }

    // MARK: Sending

    private var messageLength: Int { messagePrefix.count + options.payload + messageSuffix.count }

    private func sendDue(now: UInt64) {
        let maxBatch = min(256, sendBuffer.count / messageLength)
        for c in localSenders where clients[c].state == .ready && clients[c].pending.isEmpty {
            let sender = clients[c].senderIndex
            var due: Int
            if options.rate > 0 {
                let target = UInt64(Double(now - sendStart) / 1e9 * options.rate) + 1
                due = target > clients[c].sent ? Int(target - clients[c].sent) : 0
            } else if watcherSlot >= 0 {
                let acknowledged = lastSeq[watcherSlot * senderCount + sender]
                due = options.inFlight - Int(clients[c].sent - min(acknowledged, clients[c].sent))
            } else {
                due = options.inFlight
            }
            due = min(due, maxBatch)
            if due <= 0 { continue }
            var length = 0
            let buffer = sendBuffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
            for k in 0..<due {
                length += writeMessage(into: buffer + length, sender: sender, seq: clients[c].sent + UInt64(k) + 1, now: now)
            }
            let written: Int
            do {
                switch try Sys.write(clients[c].fd, UnsafeRawBufferPointer(start: buffer, count: length)) {
                case .wouldBlock: written = 0
                case .done(let n): written = n
                }
            } catch {
                closedByServer(c, "write: \(error)")
                continue
            }
            // Whole messages not begun are taken back; a message begun must be finished (its tail waits).
            let messages = written == length ? due : (written + messageLength - 1) / messageLength
            let committed = messages * messageLength
            if committed > written {
                clients[c].pending = Array(UnsafeBufferPointer(start: buffer + written, count: committed - written))
            }
            clients[c].sent += UInt64(messages)
            totalSentLocal += messages
        }
    }

    private func flushPending(_ c: Int) {
        let result = clients[c].pending.withUnsafeBytes { try? Sys.write(clients[c].fd, $0) }
        if case .done(let n)? = result {
            clients[c].pending.removeFirst(n)
        }
    }

    /// Writes one message (prefix, `[[sender,seq,now]]`, padding to the payload size, suffix); returns its length.
    @inline(__always)
    private func writeMessage(into buffer: UnsafeMutablePointer<UInt8>, sender: Int, seq: UInt64, now: UInt64) -> Int {
        var p = 0
        for byte in messagePrefix { buffer[p] = byte; p += 1 }
        let payloadStart = p
        buffer[p] = 91; buffer[p + 1] = 91; p += 2
        p += writeDecimal(UInt64(sender), into: buffer + p)
        buffer[p] = 44; p += 1
        p += writeDecimal(seq, into: buffer + p)
        buffer[p] = 44; p += 1
        p += writeDecimal(now, into: buffer + p)
        buffer[p] = 93; buffer[p + 1] = 93; p += 2
        let end = payloadStart + options.payload
        while p < end { buffer[p] = 120; p += 1 }  // 'x'
        for byte in messageSuffix { buffer[p] = byte; p += 1 }
        return p
    }

    @inline(__always)
    private func writeDecimal(_ value: UInt64, into buffer: UnsafeMutablePointer<UInt8>) -> Int {
        var digits = 1
        var rest = value / 10
        while rest > 0 { digits += 1; rest /= 10 }
        var v = value
        for k in stride(from: digits - 1, through: 0, by: -1) {
            buffer[k] = UInt8(48 + v % 10)
            v /= 10
        }
        return digits
    }

    private func stopSending() {
        stoppedSending = true
        for c in localSenders { shared.sentBySender[clients[c].senderIndex] = clients[c].sent }
        shared.workersStoppedSending.add(1, ordering: .releasing)
    }

    // MARK: Draining and results

    private func resumeSlow() {
        resumedSlow = true
        for c in 0..<clientCount where clients[c].paused {
            clients[c].paused = false
            if clients[c].fd >= 0 { readAll(c) }
        }
    }

    private func expected(for c: Int) -> UInt64 {
        var expected = shared.totalSent
        if clients[c].senderIndex >= 0 && !spec.senderGetsOwn { expected -= shared.sentBySender[clients[c].senderIndex] }
        return expected
    }

    private func isDrained() -> Bool {
        for c in 0..<clientCount where !clients[c].isPublisher && clients[c].state == .ready {
            let want = expected(for: c)
            if clients[c].slow {
                if clients[c].accepted + UInt64(clients[c].missedReported) < want { return false }
            } else if clients[c].accepted < want {
                return false
            }
        }
        return true
    }

    /// Final per-client accounting (after the coordinator published `.done`).
    func finish() -> WorkerResult {
        guard senderCount > 0 else { return result }
        for c in 0..<clientCount where !clients[c].isPublisher && clients[c].state != .failed {
            let want = expected(for: c)
            let got = clients[c].accepted
            if clients[c].slow {
                result.slowMissedReported += UInt64(clients[c].missedReported)
                if got + UInt64(clients[c].missedReported) >= want {
                    result.slowAccounted += 1
                } else if clients[c].state == .closed && clients[c].errorLines > 0 {
                    result.slowDroppedWithReason += 1
                } else {
                    result.slowUnaccounted += want - got - UInt64(clients[c].missedReported)
                }
            } else if got < want {
                result.loss += want - got
                result.lossClients += 1
            }
        }
        return result
    }
}
