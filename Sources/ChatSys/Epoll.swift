// Epoll: the epoll instance's syscalls and eventfd wakeups (the loop itself is EventLoop/EpollBackend).

import CChatSys
import Glibc

extension Sys {
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
}
