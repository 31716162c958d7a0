// MessageRing: a room's rendered lines, stored once, read by every member from its own cursor.

/// A byte ring of complete lines addressed by absolute offsets.
///
/// `head` counts every byte ever appended; the ring holds `[tail, head)`, always whole lines (each ends
/// in `\n`). Readers keep absolute cursors, so a cursor below `tail` means its bytes were overwritten:
/// the reader missed `tailSeq - itsSeq` lines, which is how slow consumers are told what they lost.
///
/// Capacity is a power of two so that offset → index is a mask. It starts small and doubles, up to
/// `maxCapacity`, only when an append would overwrite bytes a reader still needs (the owner decides that,
/// see `Room`); a quiet room or one whose readers keep up stays small.
public final class MessageRing {
    public private(set) var capacity: Int
    /// The most the ring grows to for lagging readers. A single line longer than this still fits: the ring
    /// grows to hold it (see `resize(toHold:)`), since refusing it would lose a message nobody was told about.
    public var maxCapacity: Int
    /// The size the ring starts at and shrinks back to once its readers have caught up.
    public let initialCapacity: Int
    public private(set) var head: UInt64 = 0
    public private(set) var tail: UInt64 = 0
    /// Lines ever appended (the sequence number of the next line).
    public private(set) var headSeq: UInt64 = 0
    /// Sequence number of the oldest line still held.
    public private(set) var tailSeq: UInt64 = 0
    private var storage: UnsafeMutableRawPointer
    private var mask: Int

    public init(initialCapacity: Int, maxCapacity: Int) {
        let initial = MessageRing.powerOfTwo(atLeast: max(64, initialCapacity))
        self.maxCapacity = max(initial, MessageRing.powerOfTwo(atLeast: maxCapacity))
        self.capacity = initial
        self.initialCapacity = initial
        self.mask = initial - 1
        self.storage = .allocate(byteCount: initial, alignment: 64)
    }

    deinit { storage.deallocate() }

    public var usedBytes: Int { Int(head - tail) }
    public var freeBytes: Int { capacity - usedBytes }

    /// Bytes `[tail, tail + n)` rounded up to whole lines: what making room for `n` more bytes would evict.
    public func evictionEnd(forAppending n: Int) -> UInt64 {
        let deficit = n - freeBytes
        if deficit <= 0 { return tail }
        return lineEnd(containing: tail + UInt64(deficit - 1))
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

    /// The smallest power-of-two capacity that holds one line of `length` bytes.
    public static func capacity(toHold length: Int) -> Int { powerOfTwo(atLeast: max(64, length)) }

    /// Moves the held lines into a buffer of `newCapacity` bytes (a power of two). Shrinking evicts the oldest
    /// lines that no longer fit, exactly as appends do (readers below the new tail are told what they missed).
    public func resize(to newCapacity: Int) {
        precondition(newCapacity >= 64 && newCapacity & (newCapacity - 1) == 0, "ring capacity must be a power of two")
        guard newCapacity != capacity else { return }
        while usedBytes > newCapacity {
            tail = lineEnd(containing: tail)
            tailSeq += 1
        }
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
    }

    /// Appends one line made of `prefix`, `body` and a `\n`, evicting the oldest lines if needed.
    /// The line must fit in `capacity` (the owner grows the ring first if it does not). Returns the line's `[start, end)` offsets.
    @discardableResult
    public func appendLine(_ prefix: UnsafeRawBufferPointer, _ body: UnsafeRawBufferPointer) -> Range<UInt64> {
        let length = prefix.count + body.count + 1
        precondition(length <= capacity, "line longer than the ring")
        evict(toFit: length)
        let start = head
        copyIn(prefix)
        copyIn(body)
        var newline: UInt8 = 10
        withUnsafeBytes(of: &newline) { copyIn($0) }
        headSeq += 1
        return start..<head
    }

    private func evict(toFit n: Int) {
        while freeBytes < n {
            tail = lineEnd(containing: tail)
            tailSeq += 1
        }
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

    /// The offset just past the `\n` that ends the line containing `offset` (which must be held).
    public func lineEnd(containing offset: UInt64) -> UInt64 {
        var position = offset
        while position < head {
            if byte(at: position) == 10 { return position + 1 }
            position += 1
        }
        return head
    }

    /// Counts the lines ending inside `[from, to)`.
    public func countLineEnds(from: UInt64, to: UInt64) -> Int {
        var lines = 0
        forEachSpan(from: from, to: to) { span in
            for b in span where b == 10 { lines += 1 }
        }
        return lines
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
