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
        guard let base = chunk.baseAddress, chunk.count > 0 else { return }
        var start = 0
        let end = chunk.count
        while start < end {
            let remaining = UnsafeRawBufferPointer(start: base + start, count: end - start)
            guard let newline = Self.indexOfNewline(remaining) else {
                absorbPartial(remaining, handle)
                return
            }
            let piece = UnsafeRawBufferPointer(start: base + start, count: newline)
            start += newline + 1
            if discarding {
                discarding = false
                continue
            }
            if pending.isEmpty {
                emit(piece, handle)
            } else {
                if pending.count + piece.count > maxLineBytes + 1 {
                    // +1 allows the `\r` of a CRLF terminator to sit beyond the limit.
                    pending.removeAll()
                    handle(.overlong)
                    continue
                }
                pending.append(contentsOf: piece)
                let whole = pending
                pending = []
                whole.withUnsafeBytes { emit($0, handle) }
            }
        }
    }

    private func emit(_ raw: UnsafeRawBufferPointer, _ handle: (FramedLine) -> Void) {
        var line = raw
        if line.count > 0 && line[line.count - 1] == 13 {  // "\r\n" ends a line too
            line = UnsafeRawBufferPointer(rebasing: line.dropLast())
        }
        if line.count > maxLineBytes {
            handle(.overlong)
        } else {
            handle(.line(line))
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
        pending.append(contentsOf: tail)
    }

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
