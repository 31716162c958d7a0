// Room and Subscription: who reads which ring, and from where.

/// A chat room: its ring of rendered lines and the subscriptions reading it.
public final class Room {
    public let name: String
    let key: String
    public let ring: MessageRing
    /// Current members, in join order (swap-removed, so order is not kept after leaves).
    var members: [Subscription] = []
    /// Former members still being sent what was posted while they were members.
    var draining: [Subscription] = []
    var isDirty = false
    /// The `/who` reply, rendered once per membership change or rename (see `ChatHub.membershipChanged`).
    var whoReply: [UInt8]?

    /// The memory all rooms' rings share (see `RingMemory`).
    let memory: RingMemory

    init(name: String, key: String, limits: ChatLimits, memory: RingMemory) {
        self.name = name
        self.key = key
        self.memory = memory
        let maxBytes = max(limits.ringBytes, limits.minimumRingBytes)
        self.ring = MessageRing(initialCapacity: min(limits.ringInitialBytes, maxBytes), maxCapacity: maxBytes)
        memory.usedBytes += ring.capacity
    }

    deinit { memory.usedBytes -= ring.capacity }

    public var memberCount: Int { members.count }
    var isUnused: Bool { members.isEmpty && draining.isEmpty }

    /// Appends one line. When the ring is full it grows if some reader still needs the bytes that would be
    /// overwritten (and all rings together stay within `RingMemory.limit`), and overwrites them otherwise; the
    /// readers concerned are told at their next flush how many lines they missed.
    @discardableResult
    func append(_ prefix: UnsafeRawBufferPointer, _ body: UnsafeRawBufferPointer) -> Range<UInt64> {
        let length = prefix.count + body.count + 1
        if length > ring.capacity {
            // A line longer than the ring: a long line (max-line-bytes above the 16 KiB a ring starts with), or
            // a room made before SIGHUP raised max-line-bytes. Refusing it would lose a message nobody is told
            // about, so the ring always grows to hold it; this is bounded by max-line-bytes, and the sweep
            // (`shrinkIfCaughtUp`) gives the memory back once the readers have it.
            var wanted = MessageRing.capacity(toHold: length)
            if readerNeedsBytesEvicted(byAppending: length) {
                wanted = max(wanted, ring.capacity(toFit: length))
            }
            resize(to: wanted)
        } else if ring.freeBytes < length && ring.capacity < ring.maxCapacity {
            // Runs once per ring-full of bytes, so the member scan is amortised over many appends.
            if readerNeedsBytesEvicted(byAppending: length) {
                let wanted = ring.capacity(toFit: length)
                if memory.allowsGrowth(from: ring.capacity, to: wanted) { resize(to: wanted) }
            }
        }
        return ring.appendLine(prefix, body)
    }

    private func readerNeedsBytesEvicted(byAppending length: Int) -> Bool {
        let evictionEnd = ring.evictionEnd(forAppending: length)
        return members.contains(where: { $0.cursor < evictionEnd }) || draining.contains(where: { $0.cursor < evictionEnd })
    }

    private func resize(to capacity: Int) {
        memory.usedBytes += capacity - ring.capacity
        ring.resize(to: capacity)
    }

    /// Gives back the memory a ring grew to for a reader that has since caught up: when every reader needs at
    /// most a quarter of the ring, it shrinks to twice what they need (at least its initial size), keeping the
    /// newest lines. Called between turns, when every cursor rests on a line boundary.
    func shrinkIfCaughtUp() {
        guard ring.capacity > ring.initialCapacity else { return }
        var oldest = ring.head
        for subscription in members { oldest = min(oldest, subscription.cursor) }
        for subscription in draining { oldest = min(oldest, subscription.cursor) }
        // A reader the ring already overran recovers (and is told) at its next flush; leave it its bytes till then.
        guard oldest >= ring.tail else { return }
        let needed = Int(ring.head - oldest)
        let target = max(ring.initialCapacity, MessageRing.capacity(toHold: needed * 2))
        if target * 2 <= ring.capacity { resize(to: target) }
    }
}

/// The memory of all rooms' rings together, bounded by `ChatLimits.ringsMaxBytes`.
///
/// A ring's first 16 KiB and growth to hold a single line are never refused (bounded by max-rooms and
/// max-line-bytes); growth for a lagging reader is refused when it would take the total past the limit, so
/// that reader is overrun sooner and told what it missed, instead of the process growing without bound.
public final class RingMemory {
    public var limit: Int
    /// Bytes allocated by all rings now.
    public internal(set) var usedBytes = 0

    init(limit: Int) { self.limit = limit }

    func allowsGrowth(from old: Int, to new: Int) -> Bool {
        usedBytes - old + new <= limit
    }
}

/// One session's reading position in one room's ring.
final class Subscription {
    unowned let session: Session
    let room: Room
    /// Absolute ring offset of the next byte to send; always at a line start between flushes.
    var cursor: UInt64
    /// Sequence number of the line at `cursor`.
    var cursorSeq: UInt64
    /// The session's own lines, which it must not be sent back: `[start, end)` ranges above `cursor`, ascending.
    var skips: [Range<UInt64>] = []
    /// Set when the session left: it is sent lines up to here (what was posted while it was a member), then dropped.
    var endOffset: UInt64?
    var endSeq: UInt64 = 0
    /// `MSG #room name: `, rendered once per join or rename so a message costs two copies into the ring.
    var messagePrefix: [UInt8] = []
    /// Position in `room.members` or `room.draining`, for O(1) removal.
    var indexInRoom = 0

    init(session: Session, room: Room) {
        self.session = session
        self.room = room
        self.cursor = room.ring.head
        self.cursorSeq = room.ring.headSeq
    }

    /// The offset this subscription reads up to.
    var target: UInt64 { endOffset ?? room.ring.head }

    var hasPending: Bool { cursor < target }

    func renderPrefix(name: String) {
        messagePrefix = Array("MSG #\(room.name) \(name): ".utf8)
    }

    /// If the ring overwrote bytes this subscription had not sent, moves it to the oldest line held and
    /// returns how many lines it missed (its own lines excluded: those it would not have been sent).
    func recoverFromOverrun() -> Int {
        let ring = room.ring
        guard cursor < ring.tail else { return 0 }
        var ownLines = 0
        while let first = skips.first, first.lowerBound < ring.tail {
            skips.removeFirst()
            ownLines += 1
        }
        let lastSeq = endOffset.map { end in end <= ring.tail ? endSeq : ring.tailSeq } ?? ring.tailSeq
        let missed = Int(lastSeq - cursorSeq) - ownLines
        if let end = endOffset, end <= ring.tail {
            cursor = end
            cursorSeq = endSeq
        } else {
            cursor = ring.tail
            cursorSeq = ring.tailSeq
        }
        return max(0, missed)
    }

    /// Calls `body` with each span of ring bytes due, in order: up to `target`, around the skipped lines.
    /// Returns false if `body` did.
    @inline(__always)
    func forEachDueSpan(_ body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        let ring = room.ring
        let end = target
        var position = cursor
        var skipIndex = 0
        while position < end {
            var segmentEnd = end
            if skipIndex < skips.count {
                let skip = skips[skipIndex]
                if skip.lowerBound <= position {
                    position = skip.upperBound
                    skipIndex += 1
                    continue
                }
                segmentEnd = min(end, skip.lowerBound)
            }
            var keepGoing = true
            ring.forEachSpan(from: position, to: segmentEnd) { span in
                if keepGoing { keepGoing = body(span) }
            }
            if !keepGoing { return false }
            position = segmentEnd
        }
        return true
    }

    /// Records that `budget` bytes of the due spans were written. Returns the bytes left over for what comes
    /// next in the session's output. A write that ends mid-line moves the rest of that line to `carry`, so the
    /// cursor always rests on a line boundary (which keeps missed-line counts exact and lines whole).
    func advance(by budget: Int, carry: inout ByteQueue) -> Int {
        let ring = room.ring
        var budget = budget
        let end = target
        while cursor < end {
            if let skip = skips.first, skip.lowerBound <= cursor {
                cursor = skip.upperBound
                cursorSeq += 1
                skips.removeFirst()
                continue
            }
            if budget == 0 { break }
            let segmentEnd = min(end, skips.first?.lowerBound ?? end)
            let length = Int(segmentEnd - cursor)
            if budget >= length {
                // The common case: everything due was written. Only when lines were skipped or the write
                // stopped short do we pay for counting line ends.
                if segmentEnd == ring.head && skips.isEmpty {
                    cursorSeq = ring.headSeq
                } else {
                    cursorSeq += UInt64(ring.countLineEnds(from: cursor, to: segmentEnd))
                }
                cursor = segmentEnd
                budget -= length
                continue
            }
            let stop = cursor + UInt64(budget)
            cursorSeq += UInt64(ring.countLineEnds(from: cursor, to: stop))
            cursor = stop
            budget = 0
            if ring.byte(at: cursor - 1) != 10 {
                let lineEnd = ring.lineEnd(containing: cursor)
                ring.forEachSpan(from: cursor, to: lineEnd) { carry.append($0) }
                cursor = lineEnd
                cursorSeq += 1
            }
            break
        }
        return budget
    }
}
