// Process: this process's limits, CPU time, environment, threads and exit, and what /proc says about another
// process.

import CChatSys
import Glibc

/// A thread started by `Sys.startThread`.
public struct ThreadHandle {
    let thread: pthread_t
}

extension Sys {
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

    /// User + system CPU time of this process, in nanoseconds.
    @inline(never)
    public static func processCPUNanoseconds() -> UInt64 {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func ns(_ t: timeval) -> UInt64 { UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_usec) * 1_000 }
        return ns(usage.ru_utime) + ns(usage.ru_stime)
    }

    /// Clock ticks per second, the unit of utime/stime in /proc/PID/stat.
    public static var clockTicksPerSecond: Int { Int(sysconf(Int32(_SC_CLK_TCK))) }

    /// Ends the process with `status` (atexit handlers run, stdio is flushed).
    public static func exit(_ status: Int32) -> Never {
        Glibc.exit(status)
    }

    /// The value of environment variable `name`, or nil if it is not set.
    public static func environmentValue(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// Sleeps the calling thread for about `microseconds` (a signal may end it early).
    public static func sleep(microseconds: UInt32) {
        _ = usleep(microseconds)
    }

    /// Starts `body` on a new thread (joinable: see `join`).
    public static func startThread(_ body: @escaping () -> Void) -> ThreadHandle {
        final class Box { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }
        var thread = pthread_t()
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(&thread, nil, { argument in
            Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue().body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed")
        return ThreadHandle(thread: thread)
    }

    /// Waits for a thread started by `startThread` to end.
    public static func join(_ handle: ThreadHandle) {
        pthread_join(handle.thread, nil)
    }
}

/// What /proc says about another process (the server under test).
public enum ProcessStats {
    /// CPU time of every thread of `pid` in nanoseconds: the sum of /proc/PID/task/*/schedstat (exact, ns), or
    /// utime + stime from /proc/PID/stat (clock ticks) when schedstat is not available. nil if the process is gone.
    public static func cpuNanoseconds(pid: Int32) -> UInt64? {
        if let tasks = Sys.listDirectory("/proc/\(pid)/task"), !tasks.isEmpty {
            var total: UInt64 = 0
            var all = true
            for task in tasks {
                guard let bytes = Sys.readSmallFile("/proc/\(pid)/task/\(task)/schedstat"),
                      let first = String(decoding: bytes, as: UTF8.self).split(separator: " ").first,
                      let ns = UInt64(first) else { all = false; break }
                total += ns
            }
            if all { return total }
        }
        guard let bytes = Sys.readSmallFile("/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        // The command name (field 2) may contain spaces and parentheses: fields are counted after the last ')'.
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After ')': state is field 3, so utime (14) and stime (15) are at indexes 11 and 12.
        guard fields.count > 12, let utime = UInt64(fields[11]), let stime = UInt64(fields[12]) else { return nil }
        return (utime + stime) * 1_000_000_000 / UInt64(max(1, Sys.clockTicksPerSecond))
    }

    /// A `VmXXX:` value from /proc/PID/status in bytes (`VmRSS`, `VmHWM`), or nil.
    public static func memoryBytes(pid: Int32, field: String) -> UInt64? {
        guard let bytes = Sys.readSmallFile("/proc/\(pid)/status") else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix(field + ":") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kib = UInt64(parts[1].trimmingCharacters(in: "\t")) { return kib * 1024 }
        }
        return nil
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> Substring {
        var s = self
        while s.first == set { s = s.dropFirst() }
        return s
    }
}
