// Room and Subscription: who reads which ring, and from where.

/// A chat room: its members, its topic, and one ring per wire format its readers use.
public final class Room {
    public let name: String
    /// `name` as UTF-8, for renderers.
    public let nameBytes: [UInt8]
    let key: String
    /// One ring per format in use here (`ChatHub.formats` index), made when the format's first reader joins
    /// and kept while the room exists (it is the room's recent history in that format). A message is
    /// rendered once per ring, never per member: a room with only native members pays nothing for IRC.
    var rings: [RoomRing?]
    /// Messages and room events published here: the sequence number the next one gets, in every ring.
    public internal(set) var messageCount: UInt64 = 0
    /// Current members, in join order (swap-removed, so order is not kept after leaves).
    var members: [Subscription] = []
    /// Former members still being sent what was posted while they were members.
    var draining: [Subscription] = []
    var isDirty = false
    /// Bumped on every change of membership or of a member's name, so fronts can cache listings.
    public internal(set) var version: UInt64 = 0
    /// A listing a front rendered from this room (native `/who`) and the `version` it was rendered at. Kept in
    /// the room, so it goes with the room (a cache keyed by identity elsewhere could outlive it).
    public var listingCache: (version: UInt64, bytes: [UInt8])?
    /// The topic, who set it, and when (wall-clock milliseconds); empty when none.
    public internal(set) var topic = ""
    public internal(set) var topicSetter = ""
    public internal(set) var topicTime: UInt64 = 0
    /// The modes the hub enforces (IRC operators set them; native rooms keep the defaults).
    public internal(set) var modes = RoomModes()
    /// Names invited (their `Names.key`), each let past `+i`, `+k` and `+l` once; cleared with `-i`. By name,
    /// as IRC invites are, not by object identity (a freed session's address can be reused).
    var invited: Set<String> = []
    /// When the room was made (wall-clock milliseconds; the lobby's is the hub's first wall-clock reading).
    public internal(set) var createdAt: UInt64

    /// The memory all rooms' rings share (see `RingMemory`).
    let memory: RingMemory
    let initialRingBytes: Int
    let maxRingBytes: Int

    init(name: String, key: String, limits: ChatLimits, memory: RingMemory, formatCount: Int, createdAt: UInt64) {
        self.name = name
        self.nameBytes = Array(name.utf8)
        self.key = key
        self.memory = memory
        self.createdAt = createdAt
        self.maxRingBytes = max(limits.ringBytes, limits.minimumRingBytes)
        self.initialRingBytes = min(limits.ringInitialBytes, maxRingBytes)
        self.rings = Array(repeating: nil, count: formatCount)
    }

    deinit {
        for case let slot? in rings { memory.usedBytes -= slot.ring.capacity }
    }

    public var memberCount: Int { members.count }
    var isUnused: Bool { members.isEmpty && draining.isEmpty }

    /// The ring of `format`, if a reader of that format was ever here.
    public func ring(_ format: Int) -> MessageRing? { rings[format]?.ring }

    /// The ring slot of `format`, made on first use, numbered from this room's message count.
    func slot(for format: Int) -> RoomRing {
        if let slot = rings[format] { return slot }
        let ring = MessageRing(initialCapacity: initialRingBytes, maxCapacity: maxRingBytes, startSeq: messageCount)
        memory.usedBytes += ring.capacity
        let slot = RoomRing(ring: ring, memory: memory)
        rings[format] = slot
        return slot
    }
}

/// One format's ring in a room and the subscriptions reading it (members and draining former members).
final class RoomRing {
    let ring: MessageRing
    let memory: RingMemory
    var readers: [Subscription] = []

    init(ring: MessageRing, memory: RingMemory) {
        self.ring = ring
        self.memory = memory
    }

    /// Appends one record. When the ring is full it grows if some reader still needs the bytes that would be
    /// overwritten (and all rings together stay within `RingMemory.limit`), and overwrites them otherwise; the
    /// readers concerned are told at their next flush how many messages they missed.
    @discardableResult
    func append(_ record: UnsafeRawBufferPointer) -> Range<UInt64> {
        let length = record.count
        if length > ring.capacity {
            // A record longer than the ring: a long line (max-line-bytes above the 16 KiB a ring starts with), or
            // a room made before SIGHUP raised max-line-bytes. Refusing it would lose a message nobody is told
            // about, so the ring always grows to hold it; this is bounded by max-line-bytes, and the sweep
            // (`shrinkIfCaughtUp`) gives the memory back once the readers have it.
            var wanted = MessageRing.capacity(toHold: length)
            if readerNeedsBytesEvicted(byAppending: length) {
                wanted = max(wanted, ring.capacity(toFit: length))
            }
            resize(to: wanted)
        } else if ring.freeBytes < length && ring.capacity < ring.maxCapacity {
            // Runs once per ring-full of bytes, so the reader scan is amortised over many appends.
            if readerNeedsBytesEvicted(byAppending: length) {
                let wanted = ring.capacity(toFit: length)
                if memory.allowsGrowth(from: ring.capacity, to: wanted) { resize(to: wanted) }
            }
        }
        return ring.appendRecord(record)
    }

    private func readerNeedsBytesEvicted(byAppending length: Int) -> Bool {
        let evictionEnd = ring.evictionEnd(forAppending: length)
        return readers.contains(where: { $0.cursor < evictionEnd })
    }

    private func resize(to capacity: Int) {
        memory.usedBytes += capacity - ring.capacity
        ring.resize(to: capacity)
    }

    /// Gives back the memory a ring grew to for a reader that has since caught up: when every reader needs at
    /// most a quarter of the ring, it shrinks to twice what they need (at least its initial size), keeping the
    /// newest records. Called between turns, when every cursor rests on a record boundary.
    func shrinkIfCaughtUp() {
        guard ring.capacity > ring.initialCapacity else { return }
        var oldest = ring.head
        for subscription in readers { oldest = min(oldest, subscription.cursor) }
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

/// One session's reading position in one room's ring (the ring of the session's format).
final class Subscription {
    unowned let session: Session
    let room: Room
    let slot: RoomRing
    let ring: MessageRing
    /// Absolute ring offset of the next byte to send; always at a record start between flushes.
    var cursor: UInt64
    /// Sequence number of the record at `cursor`.
    var cursorSeq: UInt64
    /// Records this session must not be sent (its own messages, unless it echoes them; duplicates of a
    /// departure it already gets from another room): `[start, end)` ranges above `cursor`, ascending.
    var skips: [Range<UInt64>] = []
    /// Set when the session left: it is sent records up to here (what was posted while it was a member), then dropped.
    var endOffset: UInt64?
    var endSeq: UInt64 = 0
    /// Position in `room.members` or `room.draining`, for O(1) removal.
    var indexInRoom = 0
    /// Position in `slot.readers`, for O(1) removal.
    var indexInSlot = 0
    /// Member privileges in this room (channel operator, voice), as fronts show them.
    var privileges: MemberPrivileges = []

    init(session: Session, room: Room, slot: RoomRing) {
        self.session = session
        self.room = room
        self.slot = slot
        self.ring = slot.ring
        self.cursor = slot.ring.head
        self.cursorSeq = slot.ring.headSeq
    }

    /// The offset this subscription reads up to.
    var target: UInt64 { endOffset ?? ring.head }

    var hasPending: Bool { cursor < target }

    /// If the ring overwrote bytes this subscription had not sent, moves it to the oldest line held and
    /// returns how many messages it missed (its skipped records excluded: those it would not have been sent).
    func recoverFromOverrun() -> Int {
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
    /// next in the session's output. A write that ends mid-record moves the rest of that record to `carry`, so the
    /// cursor always rests on a record boundary (which keeps missed counts exact and records whole).
    func advance(by budget: Int, carry: inout ByteQueue) -> Int {
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
                // The common case: everything due was written. Only when records were skipped or the write
                // stopped short do we pay for counting records.
                if segmentEnd == ring.head && skips.isEmpty {
                    cursorSeq = ring.headSeq
                } else {
                    cursorSeq += UInt64(ring.countRecords(from: cursor, to: segmentEnd))
                }
                cursor = segmentEnd
                budget -= length
                continue
            }
            let stop = cursor + UInt64(budget)
            cursorSeq += UInt64(ring.countRecords(from: cursor, to: stop))
            cursor = stop
            budget = 0
            if !ring.isRecordBoundary(cursor) {
                // The rest of a record cut by the write (several lines, in IRC) goes first next time.
                let recordEnd = ring.recordEnd(containing: cursor)
                ring.forEachSpan(from: cursor, to: recordEnd) { carry.append($0) }
                cursor = recordEnd
                cursorSeq += 1
            }
            break
        }
        return budget
    }
}
