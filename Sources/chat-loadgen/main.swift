// chat-loadgen: drives thousands of loopback clients against chatd (or another line-based chat server) and
// reports deliveries/s, latency percentiles, loss, connect rates and the server's CPU and memory.
//
// The coordinator (this thread) moves every worker through the phases connect → (hold) → send → drain → done,
// each bounded in time, samples the server's /proc counters at the edges of the measured window, and merges
// the workers' results. Exit status: 0 when every client connected and nothing was lost, 1 otherwise,
// 2 for bad arguments.

import ArgumentParser
import ChatSys
import Histogram

@inline(__always) func nowNs() -> UInt64 { Sys.monotonicNanoseconds() }

func sleepUntil(_ deadline: UInt64) {
    let now = nowNs()
    if deadline > now { Sys.sleep(microseconds: UInt32(min(1_000_000, (deadline - now) / 1000))) }
}

struct LoadGen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-loadgen",
        abstract: "Load generator for chatd: many loopback clients, latency histograms, loss counts, server CPU per delivery.",
        discussion: """
            Scenarios:
              fanout   N clients join; K of them send R msg/s each (or as fast as possible, --rate 0, with at most \
            --in-flight unseen messages per sender) for --duration s after --warmup s; everyone checks every message.
              connect  N clients connect at --connect-rate and join; with chatd (native) or any IRC \
            server, waits until every Online: (JOIN) line was delivered; reports connects/s and peak server RSS.
              idle     N named clients stay idle for --hold s; reports server RSS per connection.
              slow     fanout where --slow-clients stop reading: the others must lose nothing, the slow ones must be \
            told what they missed (SYS Missed) or be dropped with a reason.

            Each message carries [[SENDER,SEQ,SENT_NS]]; receivers find tokens in the raw bytes (across reads), so \
            the server's framing does not matter. Give --server-pid for server CPU ns per delivery and peak RSS.
            For chatd start it with --message-rate 0 --max-clients-per-address 0 --input-bytes-per-second 0 --connect-rate 0 (and --max-clients above N).
            Exit status: 0 if all clients connected and nothing was lost or reordered, 1 otherwise, 2 for bad usage.
            """
    )

    @OptionGroup var options: LoadOptions

    func run() throws {
        let report = try Coordinator(options: options).run()
        if options.json {
            print(report.json())
        } else {
            print(report.table())
        }
        if !report.problems.isEmpty {
            Sys.writeStandardError("chat-loadgen: FAILED: \(report.problems.joined(separator: "; "))\n")
            throw ExitCode(1)
        }
    }
}

final class Coordinator {
    let options: LoadOptions
    let spec: ProtocolSpec
    let shared: Shared
    var workers: [Worker] = []
    var threads: [ThreadHandle] = []
    var lastProgress: UInt64 = 0
    let started = nowNs()

    init(options: LoadOptions) {
        self.options = options
        self.spec = options.spec
        self.shared = Shared(senders: options.senders)
    }

    func run() throws -> Report {
        Sys.ignoreSIGPIPE()
        Sys.raiseOpenFileLimit(to: UInt64(options.clients + options.senders + 256))
        let limit = Sys.openFileLimit().soft
        let totalConnections = options.clients + (spec.separatePublishers && options.sendsMessages ? options.senders : 0)
        if UInt64(totalConnections + 64) > limit {
            Sys.writeStandardError("chat-loadgen: warning: \(totalConnections) connections but the fd limit is \(limit)\n")
        }
        guard let destination = SocketAddress(parsing: "\(options.host):\(options.port)") else {
            throw ValidationError("bad --host/--port")
        }
        var report = Report(options: options, spec: spec)
        let pid = options.serverPid
        report.serverRSSBefore = pid.flatMap { ProcessStats.memoryBytes(pid: $0, field: "VmRSS") }

        // Lay out clients over threads: receivers round-robin, then senders.
        var members = Array(repeating: [Client](), count: options.threads)
        let slowFrom = options.clients - options.slowClients
        for g in 0..<options.clients {
            var client = Client(global: g, isPublisher: false, slow: g >= slowFrom)
            if options.sendsMessages && !spec.separatePublishers && g < options.senders { client.senderIndex = g }
            members[g % options.threads].append(client)
        }
        if options.sendsMessages && spec.separatePublishers {
            for s in 0..<options.senders {
                var client = Client(global: options.clients + s, isPublisher: true, slow: false)
                client.senderIndex = s
                members[s % options.threads].append(client)
            }
        }
        for t in 0..<options.threads {
            workers.append(try Worker(index: t, options: options, spec: spec, shared: shared, members: members[t], destination: destination))
        }
        for worker in workers {
            threads.append(Sys.startThread { worker.run() })
        }

        // Connect and become ready.
        let connectStart = nowNs()
        shared.publish(.connect)
        let connectDeadline = connectStart + UInt64(options.connectTimeout * 1e9)
        while nowNs() < connectDeadline {
            let ready = shared.ready.load(ordering: .relaxed)
            let failed = shared.failed.load(ordering: .relaxed)
            let closed = shared.closedByServer.load(ordering: .relaxed)
            if ready + failed + closed >= totalConnections { break }
            progress("connect")
            Sys.sleep(microseconds: 2_000)
        }
        report.connectSeconds = Double(nowNs() - connectStart) / 1e9
        report.readyAfterConnect = shared.ready.load(ordering: .relaxed)

        switch options.scenario {
        case .connect:
            // Every Online: (IRC: JOIN) line delivered: client p (in join order) sees the announcements of p..N-1.
            if spec.onlinePrefix != nil || spec.onlineMarker != nil {
                let want = options.clients * (options.clients + 1) / 2
                report.onlineExpected = want
                let deadline = nowNs() + UInt64(options.connectTimeout * 1e9)
                while nowNs() < deadline && shared.onlineSeen.load(ordering: .relaxed) < want {
                    progress("online")
                    Sys.sleep(microseconds: 5_000)
                }
                report.onlineSeconds = Double(nowNs() - connectStart) / 1e9
            }
        case .idle:
            shared.publish(.hold)
            let until = nowNs() + UInt64(options.hold * 1e9)
            while nowNs() < until {
                progress("hold")
                sleepUntil(min(until, nowNs() + 500_000_000))
            }
            report.serverRSSIdle = pid.flatMap { ProcessStats.memoryBytes(pid: $0, field: "VmRSS") }
        case .fanout, .slow:
            try runSending(&report)
        }
        report.serverPeakRSS = pid.flatMap { ProcessStats.memoryBytes(pid: $0, field: "VmHWM") }
        report.serverRSSEnd = pid.flatMap { ProcessStats.memoryBytes(pid: $0, field: "VmRSS") }

        shared.publish(.done)
        for thread in threads { Sys.join(thread) }
        var merged = WorkerResult()
        for worker in workers { merged.merge(worker.finish()) }
        report.result = merged
        report.totalSent = shared.totalSent
        report.generatorCPU = Sys.processCPUNanoseconds()
        report.wallSeconds = Double(nowNs() - started) / 1e9
        report.evaluate()
        workers.removeAll()  // closes every connection
        return report
    }

    private func runSending(_ report: inout Report) throws {
        let pid = options.serverPid
        let sendStart = nowNs() + 50_000_000
        shared.sendStart = sendStart
        shared.measureStart = sendStart + UInt64(options.warmup * 1e9)
        shared.measureEnd = shared.measureStart + UInt64(options.duration * 1e9)
        shared.publish(.send)
        while nowNs() < shared.measureStart {
            progress("warmup")
            sleepUntil(min(shared.measureStart, nowNs() + 200_000_000))
        }
        let cpuStart = pid.flatMap { ProcessStats.cpuNanoseconds(pid: $0) }
        let ownStart = Sys.processCPUNanoseconds()
        let deliveriesStart = shared.deliveries.load(ordering: .relaxed)
        while nowNs() < shared.measureEnd {
            progress("send")
            sleepUntil(min(shared.measureEnd, nowNs() + 200_000_000))
        }
        let cpuEnd = pid.flatMap { ProcessStats.cpuNanoseconds(pid: $0) }
        report.generatorWindowCPU = Sys.processCPUNanoseconds() - ownStart
        report.progressDeliveriesInWindow = shared.deliveries.load(ordering: .relaxed) - deliveriesStart
        if let cpuStart, let cpuEnd { report.serverWindowCPU = cpuEnd - cpuStart }

        shared.publish(.stopSending)
        let stopDeadline = nowNs() + 5_000_000_000
        while shared.workersStoppedSending.load(ordering: .acquiring) < workers.count && nowNs() < stopDeadline { Sys.sleep(microseconds: 1_000) }
        var total: UInt64 = 0
        for s in 0..<options.senders { total += shared.sentBySender[s] }
        shared.totalSent = total
        let drainStart = nowNs()
        shared.publish(.drain)
        let drainDeadline = drainStart + UInt64(options.drainTimeout * 1e9)
        while shared.workersDrained.load(ordering: .acquiring) < workers.count && nowNs() < drainDeadline {
            progress("drain")
            Sys.sleep(microseconds: 2_000)
        }
        report.drainSeconds = Double(nowNs() - drainStart) / 1e9
    }

    private func progress(_ phase: String) {
        guard !options.quiet else { return }
        let now = nowNs()
        if lastProgress == 0 { lastProgress = now; return }
        guard now - lastProgress >= 2_000_000_000 else { return }
        lastProgress = now
        let line = "chat-loadgen: \(phase) t=\(Report.fixed(Double(now - started) / 1e9, 1))s"
            + " connected=\(shared.connected.load(ordering: .relaxed)) ready=\(shared.ready.load(ordering: .relaxed))"
            + " failed=\(shared.failed.load(ordering: .relaxed)) closed=\(shared.closedByServer.load(ordering: .relaxed))"
            + " sent=\(shared.sent.load(ordering: .relaxed)) delivered=\(shared.deliveries.load(ordering: .relaxed))"
            + ((spec.onlinePrefix != nil || spec.onlineMarker != nil) && options.scenario == .connect ? " online=\(shared.onlineSeen.load(ordering: .relaxed))" : "")
        Sys.writeStandardError(line + "\n")
    }
}

extension WorkerResult {
    mutating func merge(_ other: WorkerResult) {
        connected += other.connected
        failed += other.failed
        ready += other.ready
        closedByServer += other.closedByServer
        deliveries += other.deliveries
        windowDeliveries += other.windowDeliveries
        duplicates += other.duplicates
        reordered += other.reordered
        gaps += other.gaps
        loss += other.loss
        lossClients += other.lossClients
        slowAccounted += other.slowAccounted
        slowDroppedWithReason += other.slowDroppedWithReason
        slowUnaccounted += other.slowUnaccounted
        slowMissedReported += other.slowMissedReported
        onlineSeen += other.onlineSeen
        for (key, value) in other.errors { errors[key, default: 0] += value }
        latency.add(other.latency)
        connectLatency.add(other.connectLatency)
    }
}

LoadGen.main()
