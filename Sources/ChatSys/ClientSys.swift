// ClientSys: the syscalls the interactive client needs and the daemon does not: terminal modes and size,
// host name resolution, a private non-blocking descriptor for stdin, and blocking writes to stdout.

import CChatSys
import Glibc

/// A host name that did not resolve (getaddrinfo reports its own codes, not errno).
public struct ResolveError: Error, CustomStringConvertible, Equatable {
    public let host: String
    public let reason: String
    public var description: String { "cannot resolve \(host): \(reason)" }
}

extension Sys {
    // MARK: Terminals

    @inline(never)
    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    @inline(never)
    public static func terminalAttributes(_ fd: Int32) throws(SysError) -> termios {
        var attributes = termios()
        try retryingEINTR("tcgetattr") { tcgetattr(fd, &attributes) }
        return attributes
    }

    /// Applies `attributes` once pending output is written (TCSADRAIN), keeping typed-ahead input.
    @inline(never)
    public static func setTerminalAttributes(_ fd: Int32, _ attributes: termios) throws(SysError) {
        var attributes = attributes
        try retryingEINTR("tcsetattr") { tcsetattr(fd, TCSADRAIN, &attributes) }
    }

    /// `attributes` turned into raw input for a line editor: bytes arrive one read at a time, unechoed,
    /// with Ctrl-C/Ctrl-Z/Ctrl-S as plain bytes. Output processing (`\n` → `\r\n`) stays on.
    public static func rawInputAttributes(from attributes: termios) -> termios {
        var raw = attributes
        raw.c_iflag &= ~tcflag_t(BRKINT | ICRNL | INPCK | ISTRIP | IXON)
        raw.c_cflag |= tcflag_t(CS8)
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | IEXTEN | ISIG)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        return raw
    }

    /// The terminal's width in columns, or nil if `fd` is not a terminal or reports none.
    @inline(never)
    public static func terminalColumns(_ fd: Int32) -> Int? {
        var size = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }

    /// Arms a fatal-signal handler (SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE) that puts `attributes`
    /// back on `fd` before the process dies, so a crash never leaves the shell in raw mode.
    public static func restoreTerminalOnFatalSignals(_ fd: Int32, _ attributes: termios) {
        var attributes = attributes
        CChatSys_restore_terminal_on_fatal_signals(fd, &attributes)
    }

    // MARK: Descriptors

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

    /// Runs a call that returns -1 and sets errno on failure, retrying EINTR (Sys's own `check` is private
    /// to Sys.swift; these calls never return EAGAIN).
    @inline(__always)
    fileprivate static func retryingEINTR(_ call: StaticString, _ body: () -> Int32) throws(SysError) {
        while body() < 0 {
            let code = Glibc.errno
            if code != EINTR { throw SysError("\(call)", errno: code) }
        }
    }

    // MARK: Names and time

    /// The addresses of `host` (a name or a numeric address), IPv4 and IPv6, in getaddrinfo's order.
    @inline(never)
    public static func resolve(host: String, port: UInt16) throws(ResolveError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0 else {
            throw ResolveError(host: host, reason: String(cString: gai_strerror(rc)))
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var entry = list
        while let info = entry {
            if let raw = info.pointee.ai_addr, Int(info.pointee.ai_addrlen) <= MemoryLayout<sockaddr_storage>.size {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { target in
                    target.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: Int(info.pointee.ai_addrlen)))
                }
                let address = SocketAddress(storage)
                if address.family != sa_family_t(AF_UNSPEC) && !addresses.contains(address) { addresses.append(address) }
            }
            entry = info.pointee.ai_next
        }
        if addresses.isEmpty { throw ResolveError(host: host, reason: "no IPv4 or IPv6 address") }
        return addresses
    }

    /// The local wall-clock time of day.
    public static func localTimeOfDay() -> (hour: Int, minute: Int, second: Int) {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        return (Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }
}
