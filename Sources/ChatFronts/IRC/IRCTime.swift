// IRCTime: the IRCv3 server-time tag value, `YYYY-MM-DDThh:mm:ss.sssZ` (UTC, millisecond precision), written
// from a millisecond count without Foundation or a calendar library: the date comes from Howard Hinnant's
// days-to-civil algorithm ("chrono-Compatible Low-Level Date Algorithms"), which is exact for the proleptic
// Gregorian calendar over the whole range of a 64-bit day count.

public enum IRCTime {
    /// A UTC date and time of day.
    public struct Civil: Equatable, Sendable {
        public var year: Int64
        public var month: Int  // 1...12
        public var day: Int  // 1...31
        public var hour: Int
        public var minute: Int
        public var second: Int
        public var millisecond: Int
    }

    /// Bytes of a value whose year has four digits (every year before 10000).
    public static let formattedBytes = 24

    /// Splits milliseconds since 1970-01-01T00:00:00Z into a UTC date and time.
    public static func civil(milliseconds: UInt64) -> Civil {
        let millisecondsPerDay: UInt64 = 86_400_000
        let days = Int64(milliseconds / millisecondsPerDay)  // at most 2.2e11: far inside Int64
        var rest = Int(milliseconds % millisecondsPerDay)
        let millisecond = rest % 1000
        rest /= 1000
        let second = rest % 60
        rest /= 60
        let minute = rest % 60
        let hour = rest / 60

        // Days since 1970 to a date: shift the epoch to 0000-03-01 so that the leap day ends the year, then
        // split into 400-year eras, years of the era, and days of the year counted from March.
        let shifted = days + 719_468
        let era = shifted / 146_097  // shifted ≥ 0: no negative division to correct
        let dayOfEra = shifted - era * 146_097  // 0...146096
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365  // 0...399
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)  // 0...365, from March 1
        let monthFromMarch = (5 * dayOfYear + 2) / 153  // 0...11
        let day = Int(dayOfYear - (153 * monthFromMarch + 2) / 5 + 1)
        let month = Int(monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9)
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return Civil(year: year, month: month, day: day, hour: hour, minute: minute, second: second, millisecond: millisecond)
    }

    /// Appends the server-time value for `milliseconds` since the Unix epoch. Years past 9999 get as many
    /// digits as they need (ISO 8601's expanded form without the sign), so the value stays ordered and exact.
    public static func write(milliseconds: UInt64, into bytes: inout [UInt8]) {
        let t = civil(milliseconds: milliseconds)
        appendDigits(UInt64(t.year), minimumWidth: 4, into: &bytes)
        bytes.append(0x2D)  // -
        appendDigits(UInt64(t.month), minimumWidth: 2, into: &bytes)
        bytes.append(0x2D)
        appendDigits(UInt64(t.day), minimumWidth: 2, into: &bytes)
        bytes.append(0x54)  // T
        appendDigits(UInt64(t.hour), minimumWidth: 2, into: &bytes)
        bytes.append(0x3A)  // :
        appendDigits(UInt64(t.minute), minimumWidth: 2, into: &bytes)
        bytes.append(0x3A)
        appendDigits(UInt64(t.second), minimumWidth: 2, into: &bytes)
        bytes.append(0x2E)  // .
        appendDigits(UInt64(t.millisecond), minimumWidth: 3, into: &bytes)
        bytes.append(0x5A)  // Z
    }

    /// The server-time value as a String (allocates; for tests and logs).
    public static func string(milliseconds: UInt64) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(formattedBytes)
        write(milliseconds: milliseconds, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `value` in decimal, zero-padded to `minimumWidth`.
    static func appendDigits(_ value: UInt64, minimumWidth: Int, into bytes: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                     UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var v = value
        withUnsafeMutableBytes(of: &digits) { raw in
            let slots = raw.bindMemory(to: UInt64.self)
            repeat {
                slots[count] = v % 10
                v /= 10
                count += 1
            } while v > 0
            var width = count
            while width < minimumWidth {
                bytes.append(0x30)
                width += 1
            }
            while count > 0 {
                count -= 1
                bytes.append(0x30 + UInt8(slots[count]))
            }
        }
    }
}
