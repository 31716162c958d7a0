// Errors: how a syscall fails. `SysError` (which call, and errno, with the predicates callers ask), `IOResult`
// (EAGAIN as a value), `ResolveError` for name resolution, and `Sys.attempt`, the one place errno is read.
//
// Every call whose failure is looked at goes through `attempt`, which retries EINTR for all callers (the few
// whose result is ignored on purpose, like `close` and best-effort socket options, read no errno at all).
// `check`, the wrappers' helper on top of it, returns EAGAIN as a value (an edge-triggered drain ends in
// EAGAIN every time, and a thrown error would cost an allocation each time) and throws a typed `SysError`
// naming the call otherwise. The wrappers are `@inline(never)` so that no ARC traffic the optimiser might
// move between the call and the errno read can clobber errno. Outside ChatSys nobody reads errno or names
// its constants: they ask a `SysError`.

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

    /// What the error means, in the C library's words (strerror).
    public var reason: String { String(cString: strerror(errno)) }

    public var description: String { "\(call): \(reason) (errno \(errno))" }

    /// EAGAIN/EWOULDBLOCK: a non-blocking descriptor had nothing to give or no room to take.
    public var isWouldBlock: Bool { errno == EAGAIN || errno == EWOULDBLOCK }
    /// EINTR: a signal arrived first (`attempt` retries these, so callers see them only from their own loops).
    public var isInterrupted: Bool { errno == EINTR }
    /// ECONNRESET: the peer reset the connection.
    public var isConnectionReset: Bool { errno == ECONNRESET }
    /// EPIPE: a write after the peer closed its side.
    public var isBrokenPipe: Bool { errno == EPIPE }
    /// EMFILE/ENFILE: this process, or the whole system, is out of file descriptors.
    public var isOutOfDescriptors: Bool { errno == EMFILE || errno == ENFILE }
    /// ENOBUFS/ENOMEM: the kernel is out of socket buffers or memory.
    public var isOutOfMemory: Bool { errno == ENOBUFS || errno == ENOMEM }
    /// An accept4 error that belongs to the pending connection, not the listener (accept(2): the connection was
    /// aborted, or a network error already pending on it), so accepting can go on.
    public var isFailedPendingConnection: Bool {
        switch errno {
        case ECONNABORTED, EPROTO, EPERM, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH:
            return true
        default:
            return false
        }
    }
}

/// The outcome of a non-blocking I/O call.
public enum IOResult<Value> {
    case done(Value)
    case wouldBlock
}

/// A host name that did not resolve (getaddrinfo reports its own codes, not errno).
public struct ResolveError: Error, CustomStringConvertible, Equatable {
    public let host: String
    public let reason: String
    public var description: String { "cannot resolve \(host): \(reason)" }
}

/// What one call returned: its (non-negative) result, or the errno it failed with.
enum Attempt {
    case success(Int)
    case failure(Int32)
}

public enum Sys {
    /// Runs `body`, a call that returns a negative value and sets errno when it fails, and retries it while it
    /// fails with EINTR. The only place in the project that reads errno.
    @inline(__always)
    static func attempt(_ body: () -> Int) -> Attempt {
        while true {
            let result = body()
            if result >= 0 { return .success(result) }
            let code = Glibc.errno
            if code != EINTR { return .failure(code) }
        }
    }

    /// `attempt` for calls whose failure is an error, whatever it is: the result, or a `SysError` naming `call`.
    @inline(__always)
    static func attempt(_ call: @autoclosure () -> String, _ body: () -> Int) throws(SysError) -> Int {
        switch attempt(body) {
        case .success(let result): return result
        case .failure(let code): throw SysError(call(), errno: code)
        }
    }

    /// The wrappers' helper: `attempt`, with EAGAIN as a value and EBADF/EFAULT as our own bug.
    @inline(__always)
    static func check(_ call: StaticString, _ body: () -> Int) throws(SysError) -> IOResult<Int> {
        switch attempt(body) {
        case .success(let result): return .done(result)
        case .failure(let code):
            switch code {
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case EBADF, EFAULT:
                // A wrong fd or pointer is our bug, never the peer's: stop before it corrupts someone else's fd.
                preconditionFailure("\(call): \(String(cString: strerror(code)))")
            default: throw SysError("\(call)", errno: code)
            }
        }
    }

    @inline(__always)
    static func value(_ result: IOResult<Int>, _ call: StaticString) throws(SysError) -> Int {
        switch result {
        case .done(let n): return n
        case .wouldBlock: throw SysError("\(call)", errno: EAGAIN)
        }
    }
}
