// SettingText: the strict number syntax and ranges behind every chatd setting, the file grammar, and the
// saturating seconds → nanoseconds conversion; and the token bucket at the extremes a rate could take.

import ChatCore
import XCTest

final class SettingTextTests: XCTestCase {
    func testIntegerSyntaxIsStrict() {
        XCTAssertEqual(SettingNumber.integer("0"), .value(0))
        XCTAssertEqual(SettingNumber.integer("10000"), .value(10_000))
        XCTAssertEqual(SettingNumber.integer("10_000"), .value(10_000))
        XCTAssertEqual(SettingNumber.integer("007"), .value(7))
        XCTAssertEqual(SettingNumber.integer("9223372036854775807"), .value(Int.max))
        XCTAssertEqual(SettingNumber.integer("9223372036854775808"), .tooLarge)
        XCTAssertEqual(SettingNumber.integer("99999999999999999999"), .tooLarge)
        for bad in ["", " ", "-0", "-1", "+1", "0x10", "1e3", "1.0", "1 ", " 1", "1_", "_1", "1__0", "nan", "inf", "١", "１"] {
            XCTAssertEqual(SettingNumber.integer(bad), .malformed, bad)
        }
        XCTAssertEqual(SettingNumber.integer("99999999999999999999x"), .malformed, "syntax is checked past an overflow")
    }

    func testDecimalSyntaxIsStrict() {
        XCTAssertEqual(SettingNumber.decimal("10"), .value(10))
        XCTAssertEqual(SettingNumber.decimal("0.25"), .value(0.25))
        XCTAssertEqual(SettingNumber.decimal("1_000.5"), .value(1000.5))
        XCTAssertEqual(SettingNumber.decimal("0.000_001"), .value(0.000001))
        XCTAssertEqual(SettingNumber.decimal("100000000000"), .value(1e11), "well-formed: the range refuses it")
        XCTAssertEqual(SettingNumber.decimal(String(repeating: "9", count: 31)), .tooLarge)
        for bad in ["", ".", ".5", "5.", "1.2.3", "-0", "-0.0", "+1", "1e11", "1E11", "0x1p3", "nan", "NaN", "inf", "infinity",
                    "1_", "1._5", "1_.5", "1 000", "10s", "١٠"] {
            XCTAssertEqual(SettingNumber.decimal(bad), .malformed, bad)
        }
    }

    func testRangesAreClosedAndRefuseNonFiniteValues() {
        let range = SettingRange(0.01...86_400)
        XCTAssertTrue(range.contains(0.01))
        XCTAssertTrue(range.contains(86_400.0))
        XCTAssertFalse(range.contains(0.0))
        XCTAssertFalse(range.contains(86_400.001))
        XCTAssertFalse(range.contains(Double.nan))
        XCTAssertFalse(range.contains(Double.infinity))
        XCTAssertEqual(range.description, "0.01 to 86400")
        let off = SettingRange(1...1000, zeroMeans: "off")
        XCTAssertTrue(off.contains(0))
        XCTAssertFalse(off.contains(0.5))
        XCTAssertFalse(off.contains(Int.max))
        XCTAssertFalse(off.contains(Int.min))
        XCTAssertEqual(off.description, "0 (off) or 1 to 1000")
        XCTAssertEqual(SettingRange.format(1e300), "1e+300", "formatting never traps")
        XCTAssertEqual(SettingRange.format(.nan), "nan")
    }

    func testSaturatingNanoseconds() {
        XCTAssertEqual(Nanoseconds.saturating(seconds: 1.5), 1_500_000_000)
        XCTAssertEqual(Nanoseconds.saturating(seconds: .nan), 0)
        XCTAssertEqual(Nanoseconds.saturating(seconds: -1), 0)
        XCTAssertEqual(Nanoseconds.saturating(seconds: 1e11), Nanoseconds.maximum)
        XCTAssertEqual(Nanoseconds.saturating(seconds: .infinity), Nanoseconds.maximum)
    }

    func testFileGrammar() throws {
        let entries = try ConfigText.parse(bytes: [0xEF, 0xBB, 0xBF] + Array("# c\r\n a = 1 # note\r\n\nb=\"x y\"\n\tc =\n".utf8))
        XCTAssertEqual(entries, [.init(key: "a", value: "1", line: 2), .init(key: "b", value: "x y", line: 4),
                                 .init(key: "c", value: "", line: 5)])
        XCTAssertThrowsError(try ConfigText.parse("a = 1\nno equals sign\n")) {
            XCTAssertEqual($0 as? ConfigText.Failure, .init(line: 2, message: "expected key = value, got \"no equals sign\""))
        }
        XCTAssertThrowsError(try ConfigText.parse(bytes: Array("a = 1\n= 2\n".utf8))) { XCTAssertEqual(($0 as? ConfigText.Failure)?.line, 2) }
        XCTAssertThrowsError(try ConfigText.parse(bytes: [0x61, 0x3D, 0xC3, 0x28])) { XCTAssertEqual(($0 as? ConfigText.Failure)?.line, 1) }
        XCTAssertThrowsError(try ConfigText.parse(bytes: Array("a = \u{85}\n".utf8))) {
            XCTAssertEqual(($0 as? ConfigText.Failure)?.message, "control character U+0085 is not allowed")
        }
        // CR only as part of CRLF: a lone CR would let a key hide what follows it on a terminal.
        XCTAssertThrowsError(try ConfigText.parse("a = 1\rb = 2\n")) {
            XCTAssertEqual(($0 as? ConfigText.Failure)?.message, "control character U+000D is not allowed")
        }
        // Error text quotes at most 60 characters of what it got.
        XCTAssertThrowsError(try ConfigText.parse(String(repeating: "x", count: 5000))) {
            XCTAssertLessThan("\($0)".count, 120)
        }
    }

    /// The bucket at rates and bursts far outside chatd's ranges (which the settings refuse): no trap, and
    /// a sensible answer.
    func testTokenBucketAtExtremesNeverTraps() {
        var huge = TokenBucket(ratePerSecond: 1e308, burst: 1e300, now: 0)
        for t in 0..<1000 { XCTAssertTrue(huge.take(now: UInt64(t))) }
        XCTAssertTrue(huge.take(now: .max))
        var fast = TokenBucket(ratePerSecond: 1e308, burst: 2, now: 0)
        XCTAssertTrue(fast.take(now: 0))
        XCTAssertTrue(fast.take(now: 0))
        XCTAssertFalse(fast.take(now: 0), "no time passed: no refill, however high the rate")
        XCTAssertTrue(fast.take(now: 1), "refill is capped at the burst, not infinite")
        var odd = TokenBucket(ratePerSecond: .nan, burst: .nan, now: 0)
        _ = odd.take(now: 1)
        _ = odd.take(now: .max)
        var slow = TokenBucket(ratePerSecond: 0.001, burst: 1, now: 0)
        XCTAssertTrue(slow.take(now: 0))
        XCTAssertFalse(slow.take(now: 999_000_000_000))
        XCTAssertTrue(slow.take(now: 1_000_000_000_000))
        XCTAssertTrue(slow.take(now: .max), "a refill after 584 years stays finite")
    }
}
