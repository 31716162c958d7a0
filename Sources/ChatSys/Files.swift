// Files: reading a small regular file (the configuration) without ever blocking the caller.
//
// chatd reads its configuration on the event loop thread when SIGHUP arrives, so reading must neither block
// (a FIFO with no writer would stall every client) nor run away (a device like /dev/zero never ends, a wrong
// path may name a huge file). Hence: open with O_NONBLOCK, fstat the descriptor actually opened (no
// check-then-open race), refuse anything that is not a regular file, refuse a size over the limit, and read at
// most limit + 1 bytes even if the file grows or lies about its size (procfs reports 0).

import Glibc

/// Why a file could not be read; each case says what the caller should tell the user.
public enum FileReadError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(errno: Int32)
    /// A directory, FIFO, socket or device: named by `kind` ("a directory").
    case notRegular(kind: String)
    /// Larger than the limit (in bytes).
    case tooLarge(limit: Int)
    case readFailed(errno: Int32)

    public var description: String {
        switch self {
        case .cannotOpen(let code): return "cannot open: \(String(cString: strerror(code)))"
        case .notRegular(let kind): return "\(kind), not a regular file"
        case .tooLarge(let limit): return "larger than \(limit) bytes"
        case .readFailed(let code): return "cannot read: \(String(cString: strerror(code)))"
        }
    }
}

extension Sys {
    /// The whole contents of the regular file at `path`, at most `limit` bytes; never blocks.
    @inline(never)
    public static func readRegularFile(_ path: String, limit: Int) throws(FileReadError) -> [UInt8] {
        precondition(limit >= 0 && limit < Int.max)
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer. O_NOCTTY: a terminal
        // device must not become our controlling terminal before fstat refuses it.
        let fd: Int32
        switch attempt({ Int(Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) }) {
        case .success(let opened): fd = Int32(opened)
        case .failure(let code): throw .cannotOpen(errno: code)
        }
        defer { Sys.close(fd) }
        var info = stat()
        if case .failure(let code) = attempt({ Int(fstat(fd, &info)) }) { throw .readFailed(errno: code) }
        let type = info.st_mode & S_IFMT
        guard type == S_IFREG else { throw .notRegular(kind: Self.fileKind(type)) }
        if info.st_size > limit { throw .tooLarge(limit: limit) }
        var bytes = [UInt8](repeating: 0, count: limit + 1)
        var total = 0
        reading: while total <= limit {
            let outcome = bytes.withUnsafeMutableBytes { buffer in
                attempt { Glibc.read(fd, buffer.baseAddress! + total, buffer.count - total) }
            }
            switch outcome {
            case .failure(let code): throw .readFailed(errno: code)
            case .success(0): break reading
            case .success(let n): total += n
            }
        }
        if total > limit { throw .tooLarge(limit: limit) }
        bytes.removeLast(bytes.count - total)
        return bytes
    }

    private static func fileKind(_ type: mode_t) -> String {
        switch type {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFLNK: return "a symbolic link"
        default: return "an unknown kind of file"
        }
    }
}

extension Sys {
    /// The whole contents of a small file (procfs), or nil if it cannot be read.
    @inline(never)
    public static func readSmallFile(_ path: String) -> [UInt8]? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while case .success(let n) = chunk.withUnsafeMutableBytes({ buffer in attempt { Glibc.read(fd, buffer.baseAddress, buffer.count) } }),
              n > 0 {
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

    /// The device and inode of what `fd` is open on (fstat), or nil if it is not open.
    @inline(never)
    public static func deviceAndInode(of fd: Int32) -> (device: UInt64, inode: UInt64)? {
        var status = stat()
        guard case .success = attempt({ Int(fstat(fd, &status)) }) else { return nil }
        return (UInt64(status.st_dev), UInt64(status.st_ino))
    }
}
