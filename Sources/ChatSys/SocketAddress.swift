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

    /// The network this address is counted under by per-address limits: an IPv4 address itself (also when it
    /// arrives IPv4-mapped, `::ffff:a.b.c.d`), or the first `ipv6PrefixLength` bits of an IPv6 address: one
    /// host usually holds a whole /64, so counting exact IPv6 addresses would let it take 2^64 of them.
    public func networkKey(ipv6PrefixLength: Int) -> AddressKey {
        switch storage {
        case .v4(let address, _):
            return AddressKey(high: 0, low: UInt64(UInt32(bigEndian: address)), family: 4)
        case .v6(let octets, _, _):
            if octets[0..<10].allSatisfy({ $0 == 0 }) && octets[10] == 0xFF && octets[11] == 0xFF {
                let v4 = octets[12...].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                return AddressKey(high: 0, low: UInt64(v4), family: 4)
            }
            var high: UInt64 = 0
            var low: UInt64 = 0
            for i in 0..<8 { high = high << 8 | UInt64(octets[i]) }
            for i in 8..<16 { low = low << 8 | UInt64(octets[i]) }
            let bits = max(0, min(128, ipv6PrefixLength))
            if bits <= 64 {
                high = bits == 0 ? 0 : high & (UInt64.max << (64 - bits))
                low = 0
            } else if bits < 128 {
                low &= UInt64.max << (128 - bits)
            }
            return AddressKey(high: high, low: low, family: 6)
        case .other:
            return AddressKey(high: 0, low: 0, family: 0)
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

/// A network for per-address accounting (see `SocketAddress.networkKey`): hashable, fixed-size, no text.
public struct AddressKey: Hashable, Sendable {
    let high: UInt64
    let low: UInt64
    let family: UInt8

    public static let unknown = AddressKey(high: 0, low: 0, family: 0)
}
