// Test support: line-oriented TCP clients (the in-process server, clock and waits are in ChatTestSupport).
// Every wait is a poll on a condition with a deadline; nothing sleeps to synchronise.

import ChatTestSupport
import Foundation
import Glibc
import XCTest

enum ClientError: Error, CustomStringConvertible {
    case connect(Int32)
    case timeout(String)
    case closed(String)
    var description: String {
        switch self {
        case .connect(let e): return "connect: errno \(e)"
        case .timeout(let what): return "timed out waiting for \(what)"
        case .closed(let what): return "connection closed while waiting for \(what)"
        }
    }
}

/// A TCP client speaking lines, with deadline-bounded reads.
final class LineClient: @unchecked Sendable {
    let fd: Int32
    private var buffer: [UInt8] = []
    private(set) var isClosed = false
    /// Every line received so far, in order.
    private(set) var received: [String] = []
    private var consumed = 0

    init(port: UInt16, host: String = "127.0.0.1", receiveBuffer: Int32? = nil) throws {
        let v6 = host.contains(":")
        fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        let rc: Int32
        if v6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            inet_pton(AF_INET6, host, &address.sin6_addr)
            rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            inet_pton(AF_INET, host, &address.sin_addr)
            rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        if rc != 0 {
            let e = errno
            Glibc.close(fd)
            throw ClientError.connect(e)
        }
    }

    private var released = false

    deinit { if !released { Glibc.close(fd) } }

    /// Closes with SO_LINGER 0, so the kernel sends an RST (discarding whatever the server had in flight).
    func reset() {
        guard !released else { return }
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        Glibc.close(fd)
        released = true
        isClosed = true
    }

    func send(_ text: String) {
        sendBytes(Array(text.utf8))
    }

    func sendBytes(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    func shutdownWrite() { Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// Reads whatever is available within `timeout` seconds into `received`. Returns false at EOF.
    @discardableResult
    func pump(timeout: Double) -> Bool {
        if isClosed { return false }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, Int32(max(0, timeout * 1000)))
        if ready <= 0 { return true }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) {
            isClosed = true
            return false
        }
        if n > 0 { absorb(chunk[0..<n]) }
        return true
    }

    func absorb(_ bytes: ArraySlice<UInt8>) {
        buffer.append(contentsOf: bytes)
        while let newline = buffer.firstIndex(of: 10) {
            received.append(String(decoding: buffer[..<newline], as: UTF8.self))
            buffer.removeSubrange(...newline)
        }
    }

    /// Waits for the next line (after those already returned by `nextLine`/`expect`) that satisfies `match`.
    @discardableResult
    func expect(_ what: String, timeout: Double = 5, _ match: (String) -> Bool) throws -> String {
        let deadline = monotonic() + timeout
        while true {
            while consumed < received.count {
                let line = received[consumed]
                consumed += 1
                if match(line) { return line }
            }
            if isClosed { throw ClientError.closed(what) }
            let left = deadline - monotonic()
            if left <= 0 { throw ClientError.timeout(what) }
            pump(timeout: min(left, 0.5))
        }
    }

    /// Waits for a line starting with `prefix`.
    @discardableResult
    func expect(prefix: String, timeout: Double = 5) throws -> String {
        try expect("a line starting with \"\(prefix)\"", timeout: timeout) { $0.hasPrefix(prefix) }
    }

    /// Waits until the server closes the connection; returns the lines received meanwhile.
    func expectClose(timeout: Double = 5) throws -> [String] {
        let deadline = monotonic() + timeout
        while !isClosed {
            if monotonic() > deadline { throw ClientError.timeout("the server to close the connection") }
            pump(timeout: 0.2)
        }
        let rest = Array(received[consumed...])
        consumed = received.count
        return rest
    }

    /// Connects, sends `name`, and waits for the welcome.
    static func named(_ name: String, port: UInt16) throws -> LineClient {
        let client = try LineClient(port: port)
        client.send(name + "\n")
        try client.expect(prefix: "SYS Welcome: \(name)")
        return client
    }
}

/// Reads many clients at once with one poll, until `done` or the deadline.
func pumpAll(_ clients: [LineClient], timeout: Double, until done: () -> Bool) -> Bool {
    let deadline = monotonic() + timeout
    var pollers = clients.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
    var chunk = [UInt8](repeating: 0, count: 65536)
    while !done() {
        let left = deadline - monotonic()
        if left <= 0 { return false }
        for i in pollers.indices { pollers[i].revents = 0 }
        let ready = poll(&pollers, nfds_t(pollers.count), Int32(min(left, 0.5) * 1000))
        if ready <= 0 { continue }
        for (index, poller) in pollers.enumerated() where poller.revents != 0 {
            let n = chunk.withUnsafeMutableBytes { recv(poller.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { clients[index].absorb(chunk[0..<n]) }
            if n == 0 { pollers[index].events = 0 }
        }
    }
    return true
}
