// Signals: signalfd for the signals the daemon handles, and SIGPIPE ignored.

import CChatSys
import Glibc

/// The signals chatd and its tools handle, by name, so that callers need not import the C library.
public enum SignalNumber {
    public static let hangup = SIGHUP
    public static let interrupt = SIGINT
    public static let terminate = SIGTERM
    public static let windowChange = SIGWINCH
}

extension Sys {
    /// Blocks `signals` for the calling thread (and threads it creates later) and returns a signalfd that
    /// receives them instead. Call before starting other threads.
    @inline(never)
    public static func signalFD(_ signals: [Int32]) throws(SysError) -> Int32 {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        // pthread functions return the error instead of setting errno.
        let rc = pthread_sigmask(SIG_BLOCK, &set, nil)
        if rc != 0 { throw SysError("pthread_sigmask", errno: rc) }
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
}
