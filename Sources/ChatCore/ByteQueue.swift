// ByteQueue: a bounded FIFO of bytes for a session's private output (replies, errors, notices).

/// A growable FIFO of bytes that holds memory only while it holds bytes.
///
/// Idle connections are the common case in a chat server, so the buffer is freed as soon as the
/// last byte is consumed: an idle session costs no output memory at all.
public struct ByteQueue: ~Copyable {
    private var storage: UnsafeMutableRawPointer?
    private var capacity = 0
    private var readIndex = 0
    private var writeIndex = 0

    public init() {}

    deinit { storage?.deallocate() }

    /// Bytes waiting to be written.
    public var count: Int { writeIndex - readIndex }
    public var isEmpty: Bool { writeIndex == readIndex }

    /// The unread bytes as one contiguous span (valid until the next mutation).
    public var readable: UnsafeRawBufferPointer {
        guard let storage else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: storage + readIndex, count: count)
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        reserveTail(bytes.count)
        (storage! + writeIndex).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        writeIndex += bytes.count
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    public mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Marks `n` bytes as written; frees the buffer when it empties.
    public mutating func consume(_ n: Int) {
        precondition(n <= count, "consumed more than queued")
        readIndex += n
        if readIndex == writeIndex { release() }
    }

    public mutating func release() {
        storage?.deallocate()
        storage = nil
        capacity = 0
        readIndex = 0
        writeIndex = 0
    }

    private mutating func reserveTail(_ n: Int) {
        if capacity - writeIndex >= n { return }
        let live = count
        if let storage, capacity - live >= n, readIndex >= live {
            // Enough room if the live bytes move to the front, and they do not overlap their new place.
            storage.copyMemory(from: storage + readIndex, byteCount: live)
            readIndex = 0
            writeIndex = live
            return
        }
        var newCapacity = max(256, capacity)
        while newCapacity - live < n { newCapacity *= 2 }
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        if let storage {
            fresh.copyMemory(from: storage + readIndex, byteCount: live)
            storage.deallocate()
        }
        storage = fresh
        capacity = newCapacity
        readIndex = 0
        writeIndex = live
    }
}
