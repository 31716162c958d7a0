// Shared: what the coordinating thread and the worker threads tell each other (phases, times, progress).

import Synchronization

enum Phase: Int {
    case setup = 0, connect, hold, send, stopSending, drain, done
}

/// State shared across threads. Plain fields are written before the phase that publishes them (a releasing
/// store) and read after observing that phase (an acquiring load).
final class Shared: @unchecked Sendable {
    let phase = Atomic<Int>(Phase.setup.rawValue)
    // Progress counters (relaxed; summed by the coordinator for the progress line and phase decisions).
    let connected = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let ready = Atomic<Int>(0)
    let closedByServer = Atomic<Int>(0)
    let onlineSeen = Atomic<Int>(0)
    let deliveries = Atomic<Int>(0)
    let sent = Atomic<Int>(0)
    let workersStoppedSending = Atomic<Int>(0)
    let workersDrained = Atomic<Int>(0)

    // Times (monotonic ns), set by the coordinator before it publishes `.send`.
    var sendStart: UInt64 = 0
    var measureStart: UInt64 = 0
    var measureEnd: UInt64 = 0
    /// Messages sent per sender, written by each worker for its own senders before it counts itself in
    /// `workersStoppedSending`; `totalSent` is set by the coordinator before it publishes `.drain`.
    let sentBySender: UnsafeMutablePointer<UInt64>
    var totalSent: UInt64 = 0

    init(senders: Int) {
        sentBySender = .allocate(capacity: max(1, senders))
        sentBySender.initialize(repeating: 0, count: max(1, senders))
    }

    deinit { sentBySender.deallocate() }

    var currentPhase: Phase { Phase(rawValue: phase.load(ordering: .acquiring))! }

    func publish(_ phase: Phase) { self.phase.store(phase.rawValue, ordering: .releasing) }
}
