// Sys: the one thin layer over raw syscalls. Only this file reads errno.
//
// Every wrapper retries EINTR once here for all callers, returns EAGAIN as a value (an edge-triggered
// drain ends in EAGAIN every time, and a thrown error would cost an allocation each time), and throws
// a typed `SysError` naming the call otherwise. The wrappers are `@inline(never)` so that no ARC
// traffic the optimiser might move between the call and the errno read can clobber errno.

import CChatSys
import Glibc

/// A failed syscall: which call, and errno.
public struct SysError: Error, CustomStringConvertible, Equatable {
    public let call: String
    public let errno: Int32

    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// The outcome of a non-blocking I/O call.
public enum IOResult<Value> {
    case done(Value)
    case wouldBlock
}

public enum Sys {
    @inline(__always)
    private static func check(_ call: StaticString, _ body: () -> Int) throws(SysError) -> IOResult<Int> {
        while true {
            let result = body()
            if result >= 0 { return .done(result) }
            let code = Glibc.errno
            switch code {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case EBADF, EFAULT:
                // A wrong fd or pointer is our bug, never the peer's: stop before it corrupts someone else's fd.
                preconditionFailure("\(call): \(String(cString: strerror(code)))")
            default: throw SysError("\(call)", errno: code)
            }
        }
    }

    @inline(__always)
    private static func value(_ result: IOResult<Int>, _ call: StaticString) throws(SysError) -> Int {
        switch result {
        case .done(let n): return n
        case .wouldBlock: throw SysError("\(call)", errno: EAGAIN)
        }
    }

    // MARK: Descriptors

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
    public static func shutdownWrite(_ fd: Int32) {
        // Best effort: the peer may already be gone, which is fine when we are closing anyway.
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
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

    // MARK: Sockets

    @inline(never)
    public static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32, _ call: StaticString) throws(SysError) {
        var value = value
        _ = try check(call) { Int(setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))) }
    }

    /// A non-blocking, close-on-exec TCP listener bound to `address` with SO_REUSEADDR.
    @inline(never)
    public static func listenTCP(_ address: SocketAddress, backlog: Int32) throws(SysError) -> Int32 {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = Int32(try value(check("socket") { Int(socket(Int32(address.family), type, 0)) }, "socket"))
        do throws(SysError) {
            try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)")
            if address.family == sa_family_t(AF_INET6) {
                try setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1, "setsockopt(IPV6_V6ONLY)")
            }
            _ = try address.withSockAddr { pointer, length throws(SysError) in
                try check("bind") { Int(Glibc.bind(fd, pointer, length)) }
            }
            _ = try check("listen") { Int(Glibc.listen(fd, backlog)) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Accepts one connection as non-blocking and close-on-exec.
    @inline(never)
    public static func accept(_ listener: Int32) throws(SysError) -> IOResult<(fd: Int32, peer: SocketAddress)> {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let flags = Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let result = try withUnsafeMutablePointer(to: &storage) { pointer throws(SysError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(SysError) in
                try check("accept4") { Int(CChatSys_accept4(listener, address, &length, flags)) }
            }
        }
        switch result {
        case .wouldBlock: return .wouldBlock
        case .done(let fd): return .done((Int32(fd), SocketAddress(storage)))
        }
    }

    @inline(never)
    public static func localAddress(_ fd: Int32) throws(SysError) -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { pointer throws(SysError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(SysError) in
                try check("getsockname") { Int(getsockname(fd, address, &length)) }
            }
        }
        return SocketAddress(storage)
    }

    /// Turns on TCP keepalive with short probes, so peers that vanished (half-open connections) are found
    /// in minutes, not the kernel default of two hours.
    @inline(never)
    public static func enableKeepalive(_ fd: Int32, idleSeconds: Int32, intervalSeconds: Int32, probes: Int32) throws(SysError) {
        try setOption(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "setsockopt(SO_KEEPALIVE)")
        try setOption(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, idleSeconds, "setsockopt(TCP_KEEPIDLE)")
        try setOption(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, intervalSeconds, "setsockopt(TCP_KEEPINTVL)")
        try setOption(fd, Int32(IPPROTO_TCP), TCP_KEEPCNT, probes, "setsockopt(TCP_KEEPCNT)")
    }

    // MARK: epoll, eventfd, timerfd, signalfd

    @inline(never)
    public static func epollCreate() throws(SysError) -> Int32 {
        Int32(try value(check("epoll_create1") { Int(epoll_create1(Int32(EPOLL_CLOEXEC))) }, "epoll_create1"))
    }

    @inline(never)
    public static func epollControl(_ epfd: Int32, _ op: Int32, _ fd: Int32, events: UInt32, data: UInt64) throws(SysError) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = data
        _ = try check("epoll_ctl") { Int(epoll_ctl(epfd, op, fd, &event)) }
    }

    @inline(never)
    public static func epollWait(_ epfd: Int32, _ events: UnsafeMutablePointer<epoll_event>, max: Int32, timeoutMs: Int32) throws(SysError) -> Int {
        let result = try check("epoll_wait") { Int(epoll_wait(epfd, events, max, timeoutMs)) }
        switch result {
        case .done(let n): return n
        case .wouldBlock: return 0
        }
    }

    @inline(never)
    public static func eventFD() throws(SysError) -> Int32 {
        let flags = Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC)
        return Int32(try value(check("eventfd") { Int(eventfd(0, flags)) }, "eventfd"))
    }

    /// Adds 1 to an eventfd (a wakeup). Safe from any thread.
    @inline(never)
    public static func signalEventFD(_ fd: Int32) {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { Glibc.write(fd, $0.baseAddress, 8) }
    }

    /// Reads and resets an eventfd or timerfd counter (0 if nothing was pending).
    @inline(never)
    public static func readCounter(_ fd: Int32) throws(SysError) -> UInt64 {
        var counter: UInt64 = 0
        let result = try withUnsafeMutableBytes(of: &counter) { buffer throws(SysError) in
            try check("read(counter)") { Glibc.read(fd, buffer.baseAddress, 8) }
        }
        if case .wouldBlock = result { return 0 }
        return counter
    }

    /// A periodic monotonic timerfd, non-blocking.
    @inline(never)
    public static func periodicTimer(intervalNanoseconds: Int) throws(SysError) -> Int32 {
        let flags = Int32(TFD_NONBLOCK) | Int32(TFD_CLOEXEC)
        let fd = Int32(try value(check("timerfd_create") { Int(timerfd_create(CLOCK_MONOTONIC, flags)) }, "timerfd_create"))
        let interval = timespec(tv_sec: intervalNanoseconds / 1_000_000_000, tv_nsec: intervalNanoseconds % 1_000_000_000)
        var spec = itimerspec(it_interval: interval, it_value: interval)
        do throws(SysError) {
            _ = try check("timerfd_settime") { Int(timerfd_settime(fd, 0, &spec, nil)) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Blocks `signals` for the calling thread (and threads it creates later) and returns a signalfd that
    /// receives them instead. Call before starting other threads.
    @inline(never)
    public static func signalFD(_ signals: [Int32]) throws(SysError) -> Int32 {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        _ = try check("pthread_sigmask") {
            let rc = pthread_sigmask(SIG_BLOCK, &set, nil)
            if rc != 0 { Glibc.errno = rc; return -1 }
            return 0
        }
        let flags = Int32(SFD_NONBLOCK) | Int32(SFD_CLOEXEC)
        return Int32(try value(check("signalfd") { Int(signalfd(-1, &set, flags)) }, "signalfd"))
    }

    /// The next pending signal number from a signalfd, or nil.
    @inline(never)
    public static func readSignal(_ fd: Int32) throws(SysError) -> Int32? {
        var info = signalfd_siginfo()
        let result = try withUnsafeMutableBytes(of: &info) { buffer throws(SysError) in
            try check("read(signalfd)") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
        }
        if case .done(let n) = result, n == MemoryLayout<signalfd_siginfo>.size { return Int32(info.ssi_signo) }
        return nil
    }

    public static func ignoreSIGPIPE() {
        // A write to a socket the peer reset must fail with EPIPE, never kill the daemon.
        signal(SIGPIPE, SIG_IGN)
    }

    /// Monotonic time in nanoseconds.
    @inline(__always)
    public static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// Wall-clock time in milliseconds since 1970 (UTC), for the times messages carry (IRC `server-time`).
    /// A clock set before 1970 reads as 0.
    @inline(__always)
    public static func realtimeMilliseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        guard now.tv_sec >= 0 else { return 0 }
        return UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec / 1_000_000)
    }

    // MARK: Limits

    @inline(never)
    public static func openFileLimit() -> (soft: UInt64, hard: UInt64) {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
    }

    /// Raises the soft fd limit as far as the hard limit allows (chatd holds one fd per client).
    @inline(never)
    public static func raiseOpenFileLimit(to wanted: UInt64) {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let target = min(wanted, UInt64(limit.rlim_max))
        if target > UInt64(limit.rlim_cur) {
            limit.rlim_cur = rlim_t(target)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
    }
}
