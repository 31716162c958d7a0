// Bytes: libc's byte search. memchr is libc, not a syscall, but only ChatSys touches libc; the load generator's
// scanner needs it (a loop in Swift, even eight bytes at a time, made chat-loadgen the bottleneck of its own
// benchmarks: 1.5 to 4 times the CPU per delivery with 64 B to 1 KiB messages).

import Glibc

extension Sys {
    /// The index of the first `byte` in `base[from..<to]`, or nil.
    @inlinable
    public static func firstIndex(of byte: UInt8, in base: UnsafePointer<UInt8>, from: Int, to: Int) -> Int? {
        guard from < to, let found = memchr(base + from, Int32(byte), to - from) else { return nil }
        return UnsafeRawPointer(found) - UnsafeRawPointer(base)
    }
}
