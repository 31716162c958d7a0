// Systemd: sd_notify and socket activation through libsystemd (via the shim).

import CChatSys
import Glibc

public enum Systemd {
    /// Sends a notification (`READY=1`, `STATUS=…`, `WATCHDOG=1`, `STOPPING=1`, …) to `$NOTIFY_SOCKET`.
    /// Returns false when not running under a notifying service manager (not an error).
    @discardableResult
    public static func notify(_ state: String) -> Bool {
        CChatSys_sd_notify(0, state) > 0
    }

    /// Listening sockets passed by systemd (socket activation), with their names (`FileDescriptorName=`).
    /// Empty when the process was not socket-activated. Clears `LISTEN_*` so children do not inherit them.
    public static func listenFileDescriptors() -> [(fd: Int32, name: String)] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = CChatSys_sd_listen_fds_with_names(1, &names)
        guard count > 0 else { return [] }
        var result: [(Int32, String)] = []
        for index in 0..<Int(count) {
            let fd = CChatSys_SD_LISTEN_FDS_START + Int32(index)
            var name = "unknown"
            if let entry = names?[index] {
                name = String(cString: entry)
                free(entry)
            }
            result.append((fd, name))
        }
        free(names)
        return result
    }

    /// Whether `fd` is a listening TCP socket (what chatd can serve on).
    public static func isListeningTCPSocket(_ fd: Int32) -> Bool {
        CChatSys_sd_is_socket_inet(fd, 0, Int32(SOCK_STREAM.rawValue), 1, 0) > 0
    }

    /// The watchdog interval systemd asks for (`WatchdogSec=`), in microseconds, or nil if none.
    public static func watchdogMicroseconds() -> UInt64? {
        var usec: UInt64 = 0
        return CChatSys_sd_watchdog_enabled(0, &usec) > 0 ? usec : nil
    }
}
