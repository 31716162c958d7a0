// Descriptors: reading, writing and closing file descriptors and setting their flags.

import CChatSys
import Glibc

/// One buffer of a gathered write (`writev`).
public typealias IOVector = iovec

extension Sys {
    @inline(never)
    public static func close(_ fd: Int32) {
        // Linux releases the fd even when close reports EINTR: retrying could close a reused fd.
        _ = Glibc.close(fd)
    }

    @inline(never)
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SysError) -> IOResult<Int> {
        try check("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    @inline(never)
    public static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SysError) -> IOResult<Int> {
        try check("write") { Glibc.write(fd, bytes.baseAddress, bytes.count) }
    }

    @inline(never)
    public static func writev(_ fd: Int32, _ vectors: UnsafePointer<iovec>, count: Int) throws(SysError) -> IOResult<Int> {
        try check("writev") { Glibc.writev(fd, vectors, Int32(count)) }
    }

    @inline(never)
    public static func setNonBlocking(_ fd: Int32) throws(SysError) {
        let flags = try value(check("fcntl(F_GETFL)") { Int(fcntl(fd, F_GETFL)) }, "fcntl(F_GETFL)")
        _ = try check("fcntl(F_SETFL)") { Int(fcntl(fd, F_SETFL, Int32(flags) | O_NONBLOCK)) }
    }

    @inline(never)
    public static func setCloseOnExec(_ fd: Int32) throws(SysError) {
        _ = try check("fcntl(F_SETFD)") { Int(fcntl(fd, F_SETFD, FD_CLOEXEC)) }
    }

    @inline(never)
    public static func openDevNull() throws(SysError) -> Int32 {
        Int32(try value(check("open(/dev/null)") { Int(open("/dev/null", O_RDONLY | O_CLOEXEC)) }, "open(/dev/null)"))
    }

    /// A new, non-blocking, close-on-exec descriptor for what `fd` refers to (a terminal or a pipe), via
    /// /proc/self/fd. It has its own file status flags, so O_NONBLOCK never leaks to the shell that
    /// shares the original descriptor. nil when that cannot be done (e.g. `fd` is a socket).
    @inline(never)
    public static func reopenNonBlocking(_ fd: Int32) -> Int32? {
        let copy = open("/proc/self/fd/\(fd)", O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        return copy >= 0 ? copy : nil
    }

    /// Writes all of `bytes`, waiting (poll) whenever the descriptor is non-blocking and full.
    @inline(never)
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SysError) {
        var offset = 0
        while offset < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            switch try write(fd, rest) {
            case .done(let n): offset += n
            case .wouldBlock:
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&poller, 1, -1)
            }
        }
    }

    /// Writes `bytes` with as few write(2) calls as the kernel allows (one for up to PIPE_BUF bytes to a pipe, so
    /// lines from several threads never interleave), retrying a partial write; gives up at the first error or
    /// when a non-blocking descriptor is full, never waiting. Returns whether everything was written.
    @discardableResult
    @inline(never)
    public static func writeOrGiveUp(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            guard case .success(let n) = attempt({ Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset) }),
                  n > 0 else { return false }
            offset += n
        }
        return true
    }

    /// Writes `text` to stderr (fd 2), best effort (`writeOrGiveUp`).
    public static func writeStandardError(_ text: String) {
        var text = text
        _ = text.withUTF8 { writeOrGiveUp(2, UnsafeRawBufferPointer($0)) }
    }
}
