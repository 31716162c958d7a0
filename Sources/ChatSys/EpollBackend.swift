// EpollBackend: the only file that knows epoll's constants and event layout.

import CChatSys
import Glibc

/// What a descriptor is ready for, as reported by one event.
public struct Readiness: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let readable = Readiness(rawValue: 1)
    public static let writable = Readiness(rawValue: 2)
    /// The peer closed its side (EPOLLRDHUP) or the connection hung up (EPOLLHUP).
    public static let hangup = Readiness(rawValue: 4)
    public static let error = Readiness(rawValue: 8)
}

/// What a registration asks to be told about.
public enum Interest: Sendable {
    /// Sockets: readable, writable and peer-closed, edge-triggered. Registered once for the fd's whole life:
    /// the loop reads and writes until EAGAIN, so it never needs to change the mask (no epoll_ctl per write).
    case connection
    /// Listeners, timers, signals, wakeups: readable, edge-triggered (drained until EAGAIN each time).
    case input
}

enum EpollBackend {
    static func mask(for interest: Interest) -> UInt32 {
        switch interest {
        case .connection:
            return EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue
        case .input:
            return EPOLLIN.rawValue | EPOLLET.rawValue
        }
    }

    static let add = Int32(EPOLL_CTL_ADD)
    static let delete = Int32(EPOLL_CTL_DEL)

    @inline(__always)
    static func readiness(_ events: UInt32) -> Readiness {
        var readiness: Readiness = []
        if events & EPOLLIN.rawValue != 0 { readiness.insert(.readable) }
        if events & EPOLLOUT.rawValue != 0 { readiness.insert(.writable) }
        if events & (EPOLLRDHUP.rawValue | EPOLLHUP.rawValue) != 0 { readiness.insert(.hangup) }
        if events & EPOLLERR.rawValue != 0 { readiness.insert(.error) }
        return readiness
    }
}
