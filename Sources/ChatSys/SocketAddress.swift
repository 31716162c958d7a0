// SocketAddress: an IPv4 or IPv6 address and port, parsed from and printed as `HOST:PORT` / `[HOST]:PORT`.

import Glibc

public struct SocketAddress: Sendable, Equatable, CustomStringConvertible {
    private enum Storage: Sendable, Equatable {
        case v4(address: UInt32, port: UInt16)  // both in network byte order, as in sockaddr_in
        case v6(address: [UInt8], port: UInt16, scope: UInt32)
        case other
    }

    private let storage: Storage

    init(_ raw: sockaddr_storage) {
        var raw = raw
        switch Int32(raw.ss_family) {
        case AF_INET:
            storage = withUnsafeBytes(of: &raw) { bytes in
                let address = bytes.load(as: sockaddr_in.self)
                return .v4(address: address.sin_addr.s_addr, port: address.sin_port)
            }
        case AF_INET6:
            storage = withUnsafeBytes(of: &raw) { bytes in
                var address = bytes.load(as: sockaddr_in6.self)
                let octets = withUnsafeBytes(of: &address.sin6_addr) { Array($0) }
                return .v6(address: octets, port: address.sin6_port, scope: address.sin6_scope_id)
            }
        default:
            storage = .other
        }
    }

    /// Parses `HOST:PORT`, `[IPV6]:PORT` or `:PORT` (all IPv4 interfaces). Hosts are numeric, or `localhost`.
    public init?(parsing text: String) {
        var host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard let port = UInt16(portText) else { return nil }
        if host.isEmpty { host = "0.0.0.0" }
        if host == "localhost" { host = "127.0.0.1" }
        var v4 = in_addr()
        if inet_pton(AF_INET, String(host), &v4) == 1 {
            storage = .v4(address: v4.s_addr, port: port.bigEndian)
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, String(host), &v6) == 1 {
            storage = .v6(address: withUnsafeBytes(of: &v6) { Array($0) }, port: port.bigEndian, scope: 0)
            return
        }
        return nil
    }

    public var port: UInt16 {
        switch storage {
        case .v4(_, let port), .v6(_, let port, _): return UInt16(bigEndian: port)
        case .other: return 0
        }
    }

    public var family: sa_family_t {
        switch storage {
        case .v4: return sa_family_t(AF_INET)
        case .v6: return sa_family_t(AF_INET6)
        case .other: return sa_family_t(AF_UNSPEC)
        }
    }

    /// The host part, for per-address accounting and logs.
    public var host: String {
        switch storage {
        case .v4(var address, _):
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        case .v6(let octets, _, _):
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            octets.withUnsafeBytes { _ = inet_ntop(AF_INET6, $0.baseAddress, &text, socklen_t(text.count)) }
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        case .other:
            return "unknown"
        }
    }

    public var description: String {
        switch storage {
        case .v4: return "\(host):\(port)"
        case .v6: return "[\(host)]:\(port)"
        case .other: return "unknown"
        }
    }

    func withSockAddr<R, E: Error>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R) throws(E) -> R {
        switch storage {
        case .v4(let address, let port):
            var raw = sockaddr_in()
            raw.sin_family = sa_family_t(AF_INET)
            raw.sin_port = port
            raw.sin_addr.s_addr = address
            return try withUnsafePointer(to: &raw) { pointer throws(E) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(E) in
                    try body(address, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case .v6(let octets, let port, let scope):
            var raw = sockaddr_in6()
            raw.sin6_family = sa_family_t(AF_INET6)
            raw.sin6_port = port
            raw.sin6_scope_id = scope
            withUnsafeMutableBytes(of: &raw.sin6_addr) { $0.copyBytes(from: octets) }
            return try withUnsafePointer(to: &raw) { pointer throws(E) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(E) in
                    try body(address, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        case .other:
            preconditionFailure("cannot bind an unknown address family")
        }
    }
}
