// LoadSys: the syscalls a load generator needs and a server does not: non-blocking connects from a chosen
// source address, SO_ERROR, socket buffer sizes, our own CPU time, and /proc reads about another process.

import CChatSys
import Glibc

extension Sys {
    /// Starts a non-blocking TCP connect to `destination`, optionally from `source` (port 0: the kernel picks
    /// one at connect time). Returns the fd and whether the connect completed at once (loopback often does).
    ///
    /// `IP_BIND_ADDRESS_NO_PORT` makes bind defer choosing the port to connect, so the 4-tuple, not the bare
    /// (address, port), has to be unique: that is what lets one source address carry ~28k connections, and
    /// several source addresses (127.0.0.1, 127.0.0.2, ...) carry more.
    @inline(never)
    public static func connectNonBlocking(to destination: SocketAddress, from source: SocketAddress?,
                                          receiveBuffer: Int32? = nil) throws(SysError) -> (fd: Int32, connected: Bool) {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = Int32(Glibc.socket(Int32(destination.family), type, 0))
        if fd < 0 { throw SysError("socket", errno: Glibc.errno) }
        // Before connect, so the window advertised in the handshake already reflects it.
        if let receiveBuffer { setReceiveBuffer(fd, bytes: receiveBuffer) }
        if let source {
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_IP), 24 /* IP_BIND_ADDRESS_NO_PORT */, &one, socklen_t(MemoryLayout<Int32>.size))
            let rc = source.withSockAddr { pointer, length in Glibc.bind(fd, pointer, length) }
            if rc != 0 {
                let code = Glibc.errno
                Glibc.close(fd)
                throw SysError("bind(\(source))", errno: code)
            }
        }
        while true {
            let rc = destination.withSockAddr { pointer, length in Glibc.connect(fd, pointer, length) }
            if rc == 0 { return (fd, true) }
            let code = Glibc.errno
            switch code {
            case EINTR: continue
            case EINPROGRESS: return (fd, false)
            default:
                Glibc.close(fd)
                throw SysError("connect(\(destination))", errno: code)
            }
        }
    }

    /// The pending error of a socket (SO_ERROR): 0 once a non-blocking connect has succeeded.
    @inline(never)
    public static func socketError(_ fd: Int32) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) != 0 { return Glibc.errno }
        return value
    }

    /// Sets SO_RCVBUF (the kernel doubles it and applies its minimum). Used to make slow consumers fill fast.
    @inline(never)
    public static func setReceiveBuffer(_ fd: Int32, bytes: Int32) {
        var value = bytes
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    /// User + system CPU time of this process, in nanoseconds.
    @inline(never)
    public static func processCPUNanoseconds() -> UInt64 {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func ns(_ t: timeval) -> UInt64 { UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_usec) * 1_000 }
        return ns(usage.ru_utime) + ns(usage.ru_stime)
    }

    /// The whole contents of a small file (procfs), or nil if it cannot be read.
    @inline(never)
    public static func readSmallFile(_ path: String) -> [UInt8]? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && Glibc.errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    /// Names in a directory (without `.` and `..`), or nil.
    @inline(never)
    public static func listDirectory(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Clock ticks per second, the unit of utime/stime in /proc/PID/stat.
    public static var clockTicksPerSecond: Int { Int(sysconf(Int32(_SC_CLK_TCK))) }
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
