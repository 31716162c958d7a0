// EventLoop: one epoll instance and its verbs: register, deregister, wait for one turn, wake up.

import CChatSys
import Glibc

/// A thin epoll loop. Each registration carries a 64-bit token chosen by the owner (chatd packs a
/// generation next to the fd, so an event for a descriptor closed and reused in the same batch is
/// recognised as stale and dropped).
public final class EventLoop {
    private let epollFD: Int32
    private let wakeFD: Int32
    private let events: UnsafeMutablePointer<epoll_event>
    private let capacity: Int32
    /// Token delivered for `wakeup()`; owners must not use it.
    public static let wakeToken = UInt64.max

    public init(maxEventsPerTurn: Int = 1024) throws(SysError) {
        epollFD = try Sys.epollCreate()
        do {
            wakeFD = try Sys.eventFD()
        } catch {
            Sys.close(epollFD)
            throw error
        }
        capacity = Int32(maxEventsPerTurn)
        events = .allocate(capacity: maxEventsPerTurn)
        try register(wakeFD, token: Self.wakeToken, interest: .input)
    }

    deinit {
        events.deallocate()
        Sys.close(wakeFD)
        Sys.close(epollFD)
    }

    public func register(_ fd: Int32, token: UInt64, interest: Interest) throws(SysError) {
        try Sys.epollControl(epollFD, EpollBackend.add, fd, events: EpollBackend.mask(for: interest), data: token)
    }

    /// Removes `fd`. Closing an fd removes it too; this is for descriptors that stay open.
    public func deregister(_ fd: Int32) {
        try? Sys.epollControl(epollFD, EpollBackend.delete, fd, events: 0, data: 0)
    }

    /// Waits up to `timeoutMs` (-1: forever, 0: just poll) and calls `handle` for each ready registration.
    /// Returns the number of events handled.
    @discardableResult
    public func runOnce(timeoutMs: Int32, _ handle: (UInt64, Readiness) -> Void) throws(SysError) -> Int {
        let count = try Sys.epollWait(epollFD, events, max: capacity, timeoutMs: timeoutMs)
        for index in 0..<count {
            let token = CChatSys_epoll_event_u64(events + index)
            if token == Self.wakeToken {
                _ = try? Sys.readCounter(wakeFD)
            }
            handle(token, EpollBackend.readiness(CChatSys_epoll_event_events(events + index)))
        }
        return count
    }

    /// Makes a blocked `runOnce` return (with `wakeToken`). Safe to call from any thread.
    public func wakeup() {
        Sys.signalEventFD(wakeFD)
    }
}
