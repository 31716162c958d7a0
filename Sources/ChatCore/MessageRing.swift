// MessageRing: a room's rendered messages in one wire format, stored once, read by every member from its
// own cursor.

/// A byte ring of whole records addressed by absolute offsets.
///
/// A record is one message (or room event) as one wire format renders it: one or more complete lines (each
/// ends in `\n`). In the native format a record is one line; IRC may need several 512-byte lines for one
/// message, and they are still one record, so that counting records counts messages in every format.
///
/// `head` counts every byte ever appended; the ring holds `[tail, head)`, always whole records. Records are
/// numbered: `headSeq` is the number of the next record. Every ring of one room numbers the same message
/// alike (a ring made when a format's first reader arrives starts at the room's count, see `init`), so a
/// reader's missed count is exact whatever its format: a cursor below `tail` means its bytes were
/// overwritten and the reader missed `tailSeq - itsSeq` messages.
///
/// Where each record ends is kept in a small index beside the bytes (8 bytes per record held), so finding
/// a record's end or counting the records in a span is a binary search, not a scan for newlines.
///
/// Capacity is a power of two so that offset → index is a mask. It starts small and doubles, up to
/// `maxCapacity`, only when an append would overwrite bytes a reader still needs (the owner decides that,
/// see `Room`); a quiet room or one whose readers keep up stays small.
public final class MessageRing {
    public private(set) var capacity: Int
    /// The most the ring grows to for lagging readers. A single record longer than this still fits: the ring
    /// grows to hold it (see `capacity(toHold:)`), since refusing it would lose a message nobody was told about.
    public var maxCapacity: Int
    /// The size the ring starts at and shrinks back to once its readers have caught up.
    public let initialCapacity: Int
    public private(set) var head: UInt64 = 0
    public private(set) var tail: UInt64 = 0
    /// Records ever appended, counted from the room's first message (the sequence number of the next record).
    public private(set) var headSeq: UInt64
    /// Sequence number of the oldest record still held.
    public private(set) var tailSeq: UInt64
    private var storage: UnsafeMutableRawPointer
    private var mask: Int
    /// `ends[seq & endsMask]` is the offset just past record `seq`, for every record held.
    private var ends: UnsafeMutablePointer<UInt64>
    private var endsMask: Int

    /// `startSeq` numbers the first record: a ring made for a format that joins a room late starts at the
    /// room's message count, so the same message has the same number in every ring of the room.
    public init(initialCapacity: Int, maxCapacity: Int, startSeq: UInt64 = 0) {
        let initial = MessageRing.powerOfTwo(atLeast: max(64, initialCapacity))
        self.maxCapacity = max(initial, MessageRing.powerOfTwo(atLeast: maxCapacity))
        self.capacity = initial
        self.initialCapacity = initial
        self.mask = initial - 1
        self.storage = .allocate(byteCount: initial, alignment: 64)
        self.headSeq = startSeq
        self.tailSeq = startSeq
        self.ends = .allocate(capacity: 64)
        self.endsMask = 63
    }

    deinit {
        storage.deallocate()
        ends.deallocate()
    }

    public var usedBytes: Int { Int(head - tail) }
    public var freeBytes: Int { capacity - usedBytes }
    /// Records held.
    public var recordCount: Int { Int(headSeq - tailSeq) }
    /// Bytes of the record index (8 per record slot), for memory figures.
    public var indexBytes: Int { (endsMask + 1) * MemoryLayout<UInt64>.stride }

    /// The offset just past record `seq` (which must be held).
    @inline(__always)
    public func end(ofRecord seq: UInt64) -> UInt64 { ends[Int(truncatingIfNeeded: seq) & endsMask] }

    /// Bytes `[tail, tail + n)` rounded up to whole records: what making room for `n` more bytes would evict.
    public func evictionEnd(forAppending n: Int) -> UInt64 {
        let deficit = n - freeBytes
        if deficit <= 0 { return tail }
        return recordEnd(containing: tail + UInt64(deficit - 1))
    }

    /// The capacity `grow(toFit:)` would choose: doubled until `n` more bytes fit without eviction, at most
    /// `maxCapacity` (or the current capacity, if that is larger).
    public func capacity(toFit n: Int) -> Int {
        var newCapacity = capacity
        while newCapacity - usedBytes < n && newCapacity < maxCapacity { newCapacity *= 2 }
        return newCapacity
    }

    /// Doubles capacity until `n` more bytes fit without eviction, or until `maxCapacity`.
    public func grow(toFit n: Int) {
        resize(to: capacity(toFit: n))
    }

    /// The smallest power-of-two capacity that holds one record of `length` bytes.
    public static func capacity(toHold length: Int) -> Int { powerOfTwo(atLeast: max(64, length)) }

    /// Moves the held records into a buffer of `newCapacity` bytes (a power of two). Shrinking evicts the
    /// oldest records that no longer fit, exactly as appends do (readers below the new tail are told what
    /// they missed).
    public func resize(to newCapacity: Int) {
        precondition(newCapacity >= 64 && newCapacity & (newCapacity - 1) == 0, "ring capacity must be a power of two")
        guard newCapacity != capacity else { return }
        while usedBytes > newCapacity { evictOldest() }
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 64)
        var offset = tail
        forEachSpan(from: tail, to: head) { span in
            Self.copy(span, into: fresh, capacity: newCapacity, at: offset)
            offset += UInt64(span.count)
        }
        storage.deallocate()
        storage = fresh
        capacity = newCapacity
        mask = newCapacity - 1
        // The index follows the bytes down, so a ring that shrank does not keep a large index.
        let wanted = Self.powerOfTwo(atLeast: max(64, recordCount * 2))
        if wanted * 2 <= endsMask + 1 { resizeIndex(to: wanted) }
    }

    /// Appends one record made of `prefix`, `body` and a `\n` (a one-line record), evicting the oldest records
    /// if needed. It must fit in `capacity` (the owner grows the ring first if it does not). Returns the
    /// record's `[start, end)` offsets.
    @discardableResult
    public func appendLine(_ prefix: UnsafeRawBufferPointer, _ body: UnsafeRawBufferPointer) -> Range<UInt64> {
        let length = prefix.count + body.count + 1
        precondition(length <= capacity, "record longer than the ring")
        evict(toFit: length)
        let start = head
        copyIn(prefix)
        copyIn(body)
        var newline: UInt8 = 10
        withUnsafeBytes(of: &newline) { copyIn($0) }
        noteRecordEnd()
        return start..<head
    }

    /// Appends one record of whole lines (`bytes` is non-empty and ends in `\n`), as `appendLine` does.
    @discardableResult
    public func appendRecord(_ bytes: UnsafeRawBufferPointer) -> Range<UInt64> {
        precondition(bytes.count > 0 && bytes.count <= capacity && bytes[bytes.count - 1] == 10, "a record is whole lines that fit the ring")
        evict(toFit: bytes.count)
        let start = head
        copyIn(bytes)
        noteRecordEnd()
        return start..<head
    }

    @inline(__always)
    private func noteRecordEnd() {
        if recordCount > endsMask { resizeIndex(to: (endsMask + 1) * 2) }
        ends[Int(truncatingIfNeeded: headSeq) & endsMask] = head
        headSeq += 1
    }

    private func resizeIndex(to slots: Int) {
        let fresh = UnsafeMutablePointer<UInt64>.allocate(capacity: slots)
        var seq = tailSeq
        while seq < headSeq {
            fresh[Int(truncatingIfNeeded: seq) & (slots - 1)] = end(ofRecord: seq)
            seq += 1
        }
        ends.deallocate()
        ends = fresh
        endsMask = slots - 1
    }

    @inline(__always)
    private func evictOldest() {
        tail = end(ofRecord: tailSeq)
        tailSeq += 1
    }

    private func evict(toFit n: Int) {
        while freeBytes < n { evictOldest() }
    }

    private func copyIn(_ bytes: UnsafeRawBufferPointer) {
        Self.copy(bytes, into: storage, capacity: capacity, at: head)
        head += UInt64(bytes.count)
    }

    /// Copies `bytes` into a ring buffer of `capacity` (a power of two) at absolute `offset`, wrapping at the end.
    @inline(__always)
    private static func copy(_ bytes: UnsafeRawBufferPointer, into buffer: UnsafeMutableRawPointer, capacity: Int, at offset: UInt64) {
        guard bytes.count > 0 else { return }
        let index = Int(offset) & (capacity - 1)
        let first = min(bytes.count, capacity - index)
        (buffer + index).copyMemory(from: bytes.baseAddress!, byteCount: first)
        if first < bytes.count {
            buffer.copyMemory(from: bytes.baseAddress! + first, byteCount: bytes.count - first)
        }
    }

    @inline(__always)
    public func byte(at offset: UInt64) -> UInt8 {
        storage.load(fromByteOffset: Int(offset) & mask, as: UInt8.self)
    }

    /// The number of the first record held that ends after `offset`: the record containing `offset`, or
    /// `headSeq` when `offset >= head`. Records ending at or before `offset` are the ones before it.
    public func seq(after offset: UInt64) -> UInt64 {
        var low = tailSeq
        var high = headSeq
        while low < high {
            let mid = low + (high - low) / 2
            if end(ofRecord: mid) <= offset { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// The offset just past the record containing `offset` (which must be held), or `head`.
    public func recordEnd(containing offset: UInt64) -> UInt64 {
        let seq = seq(after: offset)
        return seq < headSeq ? end(ofRecord: seq) : head
    }

    /// Whether `offset` is where a record starts (or `head`).
    public func isRecordBoundary(_ offset: UInt64) -> Bool {
        offset == tail || offset == head || recordEnd(containing: offset - 1) == offset
    }

    /// Counts the records ending inside `(from, to]`, for offsets held.
    public func countRecords(from: UInt64, to: UInt64) -> Int {
        Int(seq(after: to) - seq(after: from))
    }

    /// Calls `body` with the one or two contiguous spans holding `[from, to)` (which must be held).
    @inline(__always)
    public func forEachSpan(from: UInt64, to: UInt64, _ body: (UnsafeRawBufferPointer) -> Void) {
        precondition(from >= tail && to <= head && from <= to, "range not held by the ring")
        if from == to { return }
        let index = Int(from) & mask
        let length = Int(to - from)
        let first = min(length, capacity - index)
        body(UnsafeRawBufferPointer(start: storage + index, count: first))
        if first < length {
            body(UnsafeRawBufferPointer(start: storage, count: length - first))
        }
    }

    static func powerOfTwo(atLeast n: Int) -> Int {
        var p = 1
        while p < n { p <<= 1 }
        return p
    }
}
