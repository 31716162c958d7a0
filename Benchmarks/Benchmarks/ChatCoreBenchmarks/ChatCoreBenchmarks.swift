// ChatCore micro-benchmarks: the per-message hot path (ring append, fan-out flush planning, line framing,
// command parsing). Each reports wall clock, throughput and mallocs; the hot path must allocate nothing.

import Benchmark
import ChatCore

/// A hub with `members` named clients in the lobby, rate limiting off, every session flushed once so that the
/// measurement starts from a steady state (welcome lines written, cursors caught up).
final class FanOutFixture {
    let hub: ChatHub
    let sessions: [Session]
    let iovecs: UnsafeMutablePointer<(UnsafeRawPointer?, Int)>
    let capacity = 64
    var now: UInt64 = 1

    init(members: Int) {
        var limits = ChatLimits()
        limits.messageRate = 0
        let hub = ChatHub(limits: limits)
        self.hub = hub
        var sessions: [Session] = []
        for i in 0..<members {
            let session = Session(id: UInt64(i), peer: "127.0.0.1:\(i)", now: 0, limits: limits)
            session.slot = i
            hub.open(session)
            Array("user\(i)".utf8).withUnsafeBytes { hub.receive($0, from: session, now: 0) }
            sessions.append(session)
        }
        self.sessions = sessions
        iovecs = .allocate(capacity: capacity)
        flushAll()
    }

    deinit { iovecs.deallocate() }

    /// What the engine does at the end of a turn, minus the syscall: plan each writev and report it all written.
    @inline(__always)
    @discardableResult
    func flushAll() -> Int {
        var bytes = 0
        hub.forEachSessionToFlush { session in
            hub.prepareFlush(session)
            var count = 0
            var total = 0
            let vectors = iovecs
            let limit = capacity
            hub.forEachPendingSpan(of: session) { span in
                vectors[count] = (span.baseAddress, span.count)
                count += 1
                total += span.count
                return count < limit
            }
            hub.didWrite(total, to: session)
            bytes += total
        }
        return bytes
    }
}

let message: [UInt8] = Array("hello everyone, this is a chat line of a typical length for the benchmark".utf8)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000
    )

    Benchmark("MessageRing.appendLine (80 B)") { benchmark in
        let ring = MessageRing(initialCapacity: 1 << 20, maxCapacity: 1 << 20)
        let prefix = Array("MSG #lobby alice: ".utf8)
        benchmark.startMeasurement()
        prefix.withUnsafeBytes { prefix in
            message.withUnsafeBytes { body in
                for _ in benchmark.scaledIterations {
                    blackHole(ring.appendLine(prefix, body))
                }
            }
        }
    }

    for members in [1, 100, 10_000] {
        // One iteration: one member posts a line, and the end-of-turn flush plans one writev per other member.
        let scaling: BenchmarkScalingFactor = members >= 10_000 ? .one : (members >= 100 ? .kilo : .kilo)
        Benchmark("Fan-out: post + flush planning, \(members) member(s)",
                  configuration: .init(scalingFactor: scaling)) { benchmark in
            let fixture = FanOutFixture(members: members)
            let sender = fixture.sessions[0]
            benchmark.startMeasurement()
            message.withUnsafeBytes { line in
                for _ in benchmark.scaledIterations {
                    fixture.hub.receive(line, from: sender, now: 1)
                    blackHole(fixture.flushAll())
                }
            }
        }
    }

    Benchmark("LineFramer.feed (64 KiB of 80 B lines)") { benchmark in
        var chunk: [UInt8] = []
        while chunk.count < 64 * 1024 - 81 { chunk += message; chunk.append(10) }
        chunk += Array(message.prefix(20))  // ends mid-line, as reads do
        var framer = LineFramer(maxLineBytes: 4096)
        var lines = 0
        benchmark.startMeasurement()
        chunk.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations {
                framer.feed(bytes) { framed in
                    if case .line = framed { lines += 1 }
                }
            }
        }
        blackHole(lines)
    }

    Benchmark("CommandParser.parse (message line)") { benchmark in
        benchmark.startMeasurement()
        message.withUnsafeBytes { line in
            for _ in benchmark.scaledIterations { blackHole(CommandParser.parse(line)) }
        }
    }

    Benchmark("CommandParser.parse (/join dev)") { benchmark in
        let line = Array("/join dev".utf8)
        benchmark.startMeasurement()
        line.withUnsafeBytes { line in
            for _ in benchmark.scaledIterations { blackHole(CommandParser.parse(line)) }
        }
    }
}
