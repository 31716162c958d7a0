// LineFramer: splits a byte stream into lines, bounded in length, without copying whole lines.

/// What the framer found in the input.
public enum FramedLine {
    /// A complete line without its `\n` (and without a `\r` before it). Valid only inside the callback.
    case line(UnsafeRawBufferPointer)
    /// A line longer than the limit began; its bytes up to the next `\n` are discarded.
    /// Reported once per overlong line, as soon as the limit is crossed.
    case overlong
}

/// Splits bytes into `\n`-terminated lines of at most `maxLineBytes` bytes (excluding the terminator).
///
/// Lines that arrive whole inside one chunk are handed out in place, with no copy. Only the tail of a
/// chunk that ends mid-line is kept, in a buffer that exists only while such a partial line is pending:
/// most connections spend most of their life holding no input memory.
public struct LineFramer: ~Copyable {
    public let maxLineBytes: Int
    private var pending: [UInt8] = []
    private var discarding = false
    /// Counts partial lines begun (pending went from empty to non-empty), so the engine can tell a new
    /// partial line from the one it already timed (see `line-timeout`) without the framer knowing the time.
    public private(set) var partialSerial: UInt64 = 0

    public init(maxLineBytes: Int) {
        precondition(maxLineBytes > 0)
        self.maxLineBytes = maxLineBytes
    }

    /// Bytes of an unfinished line held between calls.
    public var pendingCount: Int { pending.count }

    /// Whether the framer is skipping the rest of an overlong line.
    public var isDiscarding: Bool { discarding }

    /// Feeds one chunk; calls `handle` for each line or overlong event, in order.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, _ handle: (FramedLine) -> Void) {
        _ = feedUntilStopped(chunk) { handle($0); return true }
    }

    /// Feeds one chunk until `handle` returns false; returns how many bytes of `chunk` were consumed (all of
    /// them unless `handle` stopped it). The engine stops when a client's replies pile up (see the input pause
    /// in `Server.consume`) and feeds the unconsumed rest later, so no line is lost or reordered.
    public mutating func feedUntilStopped(_ chunk: UnsafeRawBufferPointer, _ handle: (FramedLine) -> Bool) -> Int {
        guard let base = chunk.baseAddress, chunk.count > 0 else { return 0 }
        var start = 0
        let end = chunk.count
        while start < end {
            let remaining = UnsafeRawBufferPointer(start: base + start, count: end - start)
            guard let newline = Self.indexOfNewline(remaining) else {
                absorbPartial(remaining) { _ = handle($0) }
                return end
            }
            let piece = UnsafeRawBufferPointer(start: base + start, count: newline)
            start += newline + 1
            if discarding {
                discarding = false
                continue
            }
            let goOn: Bool
            if pending.isEmpty {
                goOn = emit(piece, handle)
            } else {
                if pending.count + piece.count > maxLineBytes + 1 {
                    // +1 allows the `\r` of a CRLF terminator to sit beyond the limit.
                    pending = []
                    if !handle(.overlong) { return start }
                    continue
                }
                pending.append(contentsOf: piece)
                let whole = pending
                pending = []  // frees it: an idle connection holds no input memory
                goOn = whole.withUnsafeBytes { emit($0, handle) }
            }
            if !goOn { return start }
        }
        return end
    }

    /// Drops a partial line that stayed incomplete too long (`line-timeout`) and skips the rest of it up to
    /// the next newline, as for an overlong line, so its tail never arrives as a line of its own. Returns the
    /// bytes dropped.
    public mutating func expirePartial() -> Int {
        let dropped = pending.count
        guard dropped > 0 else { return 0 }
        pending = []
        discarding = true
        return dropped
    }

    private func emit(_ raw: UnsafeRawBufferPointer, _ handle: (FramedLine) -> Bool) -> Bool {
        var line = raw
        if line.count > 0 && line[line.count - 1] == 13 {  // "\r\n" ends a line too
            line = UnsafeRawBufferPointer(rebasing: line.dropLast())
        }
        if line.count > maxLineBytes {
            return handle(.overlong)
        } else {
            return handle(.line(line))
        }
    }

    private mutating func absorbPartial(_ tail: UnsafeRawBufferPointer, _ handle: (FramedLine) -> Void) {
        if discarding { return }
        if pending.count + tail.count > maxLineBytes + 1 {
            // Report at once rather than at the newline: a peer that never sends one must not
            // make us hold (or wait for) an unbounded line.
            pending = []
            discarding = true
            handle(.overlong)
            return
        }
        if pending.isEmpty { partialSerial &+= 1 }
        // Grow by doubling, but never past the most a partial line may hold: Array's own growth could leave
        // a 4,097-byte partial line in an 8 KiB allocation, doubling what every half-typed line pins.
        let needed = pending.count + tail.count
        if pending.capacity < needed {
            pending.reserveCapacity(min(maxLineBytes + 1, max(needed, 2 * pending.capacity, 64)))
        }
        pending.append(contentsOf: tail)
    }

    /// Bytes the pending buffer has allocated (at most `maxLineBytes + 1`, plus the allocator's rounding).
    public var pendingCapacity: Int { pending.capacity }

    @inline(__always)
    static func indexOfNewline(_ bytes: UnsafeRawBufferPointer) -> Int? {
        // memchr is libc, not a syscall, but ChatCore stays libc-free: a simple scan the optimiser vectorises well enough.
        var i = 0
        let n = bytes.count
        while i < n {
            if bytes[i] == 10 { return i }
            i += 1
        }
        return nil
    }
}
