// Errors: how a syscall fails. `SysError` (which call, and errno), `IOResult` (EAGAIN as a value), the checked
// call every wrapper goes through, and `ResolveError` for name resolution.
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

/// A host name that did not resolve (getaddrinfo reports its own codes, not errno).
public struct ResolveError: Error, CustomStringConvertible, Equatable {
    public let host: String
    public let reason: String
    public var description: String { "cannot resolve \(host): \(reason)" }
}

public enum Sys {
    @inline(__always)
    static func check(_ call: StaticString, _ body: () -> Int) throws(SysError) -> IOResult<Int> {
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
    static func value(_ result: IOResult<Int>, _ call: StaticString) throws(SysError) -> Int {
        switch result {
        case .done(let n): return n
        case .wouldBlock: throw SysError("\(call)", errno: EAGAIN)
        }
    }
}
