// Time: monotonic and wall clocks, periodic timerfds, the local time of day.

import CChatSys
import Glibc

extension Sys {
    /// A periodic monotonic timerfd, non-blocking.
    @inline(never)
    public static func periodicTimer(intervalNanoseconds: Int) throws(SysError) -> Int32 {
        let flags = Int32(TFD_NONBLOCK) | Int32(TFD_CLOEXEC)
        let fd = Int32(try value(check("timerfd_create") { Int(timerfd_create(CLOCK_MONOTONIC, flags)) }, "timerfd_create"))
        let interval = timespec(tv_sec: intervalNanoseconds / 1_000_000_000, tv_nsec: intervalNanoseconds % 1_000_000_000)
        var spec = itimerspec(it_interval: interval, it_value: interval)
        do throws(SysError) {
            _ = try check("timerfd_settime") { Int(timerfd_settime(fd, 0, &spec, nil)) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Monotonic time in nanoseconds.
    @inline(__always)
    public static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// Wall-clock time in milliseconds since 1970 (UTC), for the times messages carry (IRC `server-time`).
    /// A clock set before 1970 reads as 0.
    @inline(__always)
    public static func realtimeMilliseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        guard now.tv_sec >= 0 else { return 0 }
        return UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec / 1_000_000)
    }

    /// The local wall-clock time of day.
    public static func localTimeOfDay() -> (hour: Int, minute: Int, second: Int) {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        return (Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// Local time with milliseconds and UTC offset, e.g. `2025-01-31T12:00:00.123+0100` (log lines).
    public static func localTimestampWithMilliseconds() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        localtime_r(&seconds, &parts)
        var date = [CChar](repeating: 0, count: 32)
        var zone = [CChar](repeating: 0, count: 8)
        _ = strftime(&date, date.count, "%Y-%m-%dT%H:%M:%S", &parts)
        _ = strftime(&zone, zone.count, "%z", &parts)
        let millis = Int(now.tv_nsec / 1_000_000)
        let padded = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return String(decoding: date.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            + "." + padded + String(decoding: zone.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
