// Worker: one thread, one epoll loop, a slice of the clients. Connects, greets, sends, and finds tokens in
// everything it reads. Nothing here allocates per message: clients live in one manually allocated array,
// bytes go through one read buffer and one send buffer, counters are plain integers.

import ChatSys
import Glibc
import Histogram

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
    /// Bytes of the current line's start collected so far (up to `Worker.headBytes`), for classifying lines.
    var headCount = 0
    // Token parser state, kept across reads: a token may be split anywhere by the transport.
    var tokenState: UInt8 = 0
    var tokenField: UInt8 = 0
    var tokenSender: UInt64 = 0
    var tokenSeq: UInt64 = 0
    var tokenTime: UInt64 = 0
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
    /// Room per client for a line's start; only a run counting join lines (`onlineMarker`) collects all 64
    /// (an IRC JOIN's source can be 30-odd bytes), others 32, as before (fan-out copies less per line).
    static let headBytes = 64
    let headLimit: Int
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
    /// Line starts per client, `headBytes` each.
    let heads: UnsafeMutablePointer<UInt8>
    let readBuffer: UnsafeMutableRawBufferPointer
    let sendBuffer: UnsafeMutableRawBufferPointer
    /// Receiver slot whose view of the stream bounds in-flight messages (--rate 0), or -1.
    var watcherSlot = -1
    var localSenders: [Int] = []

    let messagePrefix: [UInt8]
    let messageSuffix: [UInt8]
    let readyPrefix: [UInt8]
    let onlinePrefix: [UInt8]
    let onlineMarker: [UInt8]
    let missedPrefix: [UInt8]

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
        heads = .allocate(capacity: max(1, clientCount) * Self.headBytes)
        readBuffer = .allocate(byteCount: 256 * 1024, alignment: 64)
        sendBuffer = .allocate(byteCount: 256 * 1024, alignment: 64)
        for i in 0..<clientCount where !clients[i].isPublisher && clients[i].senderIndex < 0 && !clients[i].slow {
            watcherSlot = clients[i].receiverSlot
            break
        }
        let parts = spec.messageFormat.split(separator: "{payload}", maxSplits: 1, omittingEmptySubsequences: false)
        messagePrefix = Array(parts[0].utf8)
        messageSuffix = parts.count > 1 ? Array(parts[1].utf8) : []
        readyPrefix = Array(spec.readyPrefix.utf8)
        onlinePrefix = Array((spec.onlinePrefix ?? "").utf8)
        onlineMarker = Array((spec.onlineMarker ?? "").utf8)
        headLimit = onlineMarker.isEmpty ? 32 : Self.headBytes
        missedPrefix = Array((spec.missedPrefix ?? "").utf8)
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
            let error = Sys.socketError(clients[c].fd)
            if error != 0 {
                fail(c, "connect: \(String(cString: strerror(error)))")
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
        if readyPrefix.isEmpty { becomeReady(c) }
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
        var i = 0
        let head = heads + c * Self.headBytes
        while i < n {
            let newlinePointer = memchr(base + i, 10, n - i)
            let lineEnd = newlinePointer.map { UnsafeRawPointer($0) - UnsafeRawPointer(base) } ?? n
            let collected = clients[c].headCount
            if collected < headLimit {
                let take = min(headLimit - collected, lineEnd - i)
                (head + collected).update(from: base + i, count: take)
                clients[c].headCount = collected + take
            }
            if senderCount > 0 && clients[c].receiverSlot >= 0 { scanTokens(c, base, from: i, to: lineEnd, now: now) }
            if newlinePointer == nil { return }
            classifyLine(c, head)
            clients[c].headCount = 0
            clients[c].tokenState = 0
            i = lineEnd + 1
        }
    }

    private func classifyLine(_ c: Int, _ head: UnsafeMutablePointer<UInt8>) {
        let count = clients[c].headCount
        func starts(with prefix: [UInt8]) -> Bool {
            guard !prefix.isEmpty, count >= prefix.count else { return false }
            for k in 0..<prefix.count where head[k] != prefix[k] { return false }
            return true
        }
        func contains(_ marker: [UInt8]) -> Bool {
            guard !marker.isEmpty, count >= marker.count else { return false }
            var k = 0
            while k + marker.count <= count {
                if head[k] == marker[0] {
                    var m = 1
                    while m < marker.count && head[k + m] == marker[m] { m += 1 }
                    if m == marker.count { return true }
                }
                k += 1
            }
            return false
        }
        if clients[c].state == .awaitingReady && starts(with: readyPrefix) {
            becomeReady(c)
        } else if starts(with: onlinePrefix) || contains(onlineMarker) {
            clients[c].onlineSeen += 1
            result.onlineSeen += 1
        } else if starts(with: missedPrefix) {
            var value = 0
            var k = missedPrefix.count
            while k < count, head[k] >= 48, head[k] <= 57 {
                value = value * 10 + Int(head[k] - 48)
                k += 1
            }
            clients[c].missedReported += value
        } else if count >= 4 && (head[0] == 69 && head[1] == 82 && head[2] == 82 && head[3] == 32  // "ERR "
                                 || head[0] == 45 && head[1] == 69 && head[2] == 82 && head[3] == 82) {  // "-ERR"
            clients[c].errorLines += 1
            var end = 4
            while end < count && head[end] != 32 && head[end] != 13 { end += 1 }
            let code = String(decoding: UnsafeBufferPointer(start: head, count: end), as: UTF8.self)
            result.errors[code, default: 0] += 1
        }
    }

    /// Finds `[[SENDER,SEQ,SENT_NS]]` tokens in `[from, to)` of one line, resuming a token split by a read.
    @inline(__always)
    private func scanTokens(_ c: Int, _ base: UnsafePointer<UInt8>, from: Int, to: Int, now: UInt64) {
        var j = from
        var state = clients[c].tokenState
        while j < to {
            if state == 0 {
                guard let bracket = memchr(base + j, 91, to - j) else { break }
                j = UnsafeRawPointer(bracket) - UnsafeRawPointer(base) + 1
                state = 1
                continue
            }
            let byte = base[j]
            j += 1
            switch state {
            case 1:
                if byte == 91 {
                    state = 2
                    clients[c].tokenField = 0
                    clients[c].tokenSender = 0
                    clients[c].tokenSeq = 0
                    clients[c].tokenTime = 0
                } else {
                    state = 0
                }
            case 2:
                if byte >= 48 && byte <= 57 {
                    let digit = UInt64(byte - 48)
                    switch clients[c].tokenField {
                    case 0: clients[c].tokenSender = clients[c].tokenSender &* 10 &+ digit
                    case 1: clients[c].tokenSeq = clients[c].tokenSeq &* 10 &+ digit
                    default: clients[c].tokenTime = clients[c].tokenTime &* 10 &+ digit
                    }
                } else if byte == 44 && clients[c].tokenField < 2 {
                    clients[c].tokenField += 1
                } else if byte == 93 && clients[c].tokenField == 2 {
                    state = 3
                } else {
                    state = byte == 91 ? 1 : 0
                }
            default:
                if byte == 93 {
                    deliver(c, sender: Int(truncatingIfNeeded: clients[c].tokenSender), seq: clients[c].tokenSeq,
                            sentAt: clients[c].tokenTime, now: now)
                    state = 0
                } else {
                    state = byte == 91 ? 1 : 0
                }
            }
        }
        clients[c].tokenState = state
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
