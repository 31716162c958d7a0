// Sockets: TCP listeners and connects, accept, socket options, local addresses, host name resolution.

import CChatSys
import Glibc

extension Sys {
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

    @inline(never)
    public static func shutdownWrite(_ fd: Int32) {
        // Best effort: the peer may already be gone, which is fine when we are closing anyway.
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

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
        let fd = Int32(try attempt("socket") { Int(Glibc.socket(Int32(destination.family), type, 0)) })
        // Before connect, so the window advertised in the handshake already reflects it.
        if let receiveBuffer { setReceiveBuffer(fd, bytes: receiveBuffer) }
        if let source {
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_IP), 24 /* IP_BIND_ADDRESS_NO_PORT */, &one, socklen_t(MemoryLayout<Int32>.size))
            if case .failure(let code) = attempt({ Int(source.withSockAddr { pointer, length in Glibc.bind(fd, pointer, length) }) }) {
                Glibc.close(fd)
                throw SysError("bind(\(source))", errno: code)
            }
        }
        switch attempt({ Int(destination.withSockAddr { pointer, length in Glibc.connect(fd, pointer, length) }) }) {
        case .success: return (fd, true)
        case .failure(EINPROGRESS): return (fd, false)
        case .failure(let code):
            Glibc.close(fd)
            throw SysError("connect(\(destination))", errno: code)
        }
    }

    /// The pending error of a socket (SO_ERROR), as the error of its `connect`: nil once a non-blocking connect
    /// has succeeded.
    @inline(never)
    public static func socketError(_ fd: Int32) -> SysError? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if case .failure(let code) = attempt({ Int(getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length)) }) {
            return SysError("getsockopt(SO_ERROR)", errno: code)
        }
        return value == 0 ? nil : SysError("connect", errno: value)
    }

    /// Sets SO_SNDBUF (the kernel doubles it and applies its minimum).
    @inline(never)
    public static func setSendBuffer(_ fd: Int32, bytes: Int32) throws(SysError) {
        try setOption(fd, SOL_SOCKET, SO_SNDBUF, bytes, "setsockopt(SO_SNDBUF)")
    }

    /// Turns off Nagle's algorithm (TCP_NODELAY): small chat lines leave at once (callers batch their own writes).
    @inline(never)
    public static func setNoDelay(_ fd: Int32) throws(SysError) {
        try setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "setsockopt(TCP_NODELAY)")
    }

    /// Sets SO_RCVBUF (the kernel doubles it and applies its minimum). Used to make slow consumers fill fast.
    @inline(never)
    public static func setReceiveBuffer(_ fd: Int32, bytes: Int32) {
        var value = bytes
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &value, socklen_t(MemoryLayout<Int32>.size))
    }

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
}
