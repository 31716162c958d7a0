@testable import ChatCore
import XCTest

final class TokenBucketTests: XCTestCase {
    let second: UInt64 = 1_000_000_000

    func testBurstThenRefusal() {
        let t0: UInt64 = 42 * second
        var bucket = TokenBucket(ratePerSecond: 10, burst: 5, now: t0)
        for i in 0..<5 { XCTAssertTrue(bucket.take(now: t0), "token \(i) of the burst") }
        XCTAssertFalse(bucket.take(now: t0))
        XCTAssertFalse(bucket.take(now: t0))
    }

    func testRefillOverTime() {
        let t0: UInt64 = 7 * second
        var bucket = TokenBucket(ratePerSecond: 10, burst: 5, now: t0)
        for _ in 0..<5 { XCTAssertTrue(bucket.take(now: t0)) }
        XCTAssertFalse(bucket.take(now: t0))
        // 10/s: 50 ms is half a token, not enough.
        XCTAssertFalse(bucket.take(now: t0 + second / 20))
        // 100 ms after the start: one token.
        XCTAssertTrue(bucket.take(now: t0 + second / 10))
        XCTAssertFalse(bucket.take(now: t0 + second / 10))
        // Half-tokens accumulate across calls: two more 50 ms steps make one token.
        XCTAssertFalse(bucket.take(now: t0 + second / 10 + second / 20))
        XCTAssertTrue(bucket.take(now: t0 + second / 10 + second / 10))
    }

    func testRefillIsCappedAtBurst() {
        let t0: UInt64 = 0
        var bucket = TokenBucket(ratePerSecond: 10, burst: 5, now: t0)
        for _ in 0..<5 { XCTAssertTrue(bucket.take(now: t0)) }
        let later = t0 + 3600 * second
        for i in 0..<5 { XCTAssertTrue(bucket.take(now: later), "token \(i)") }
        XCTAssertFalse(bucket.take(now: later), "an hour of idling buys only `burst` tokens")
    }

    func testSustainedRate() {
        var bucket = TokenBucket(ratePerSecond: 20, burst: 1, now: 0)
        var granted = 0
        // Ask every millisecond for 10 s: 20/s plus the initial token.
        for ms in 0..<10_000 {
            if bucket.take(now: UInt64(ms) * 1_000_000) { granted += 1 }
        }
        XCTAssertEqual(Double(granted), 200, accuracy: 1)
    }

    func testZeroRateIsUnlimited() {
        var bucket = TokenBucket(ratePerSecond: 0, burst: 1, now: 0)
        for _ in 0..<10_000 { XCTAssertTrue(bucket.take(now: 0)) }
    }

    func testBurstBelowOneStillAllowsOneLine() {
        var bucket = TokenBucket(ratePerSecond: 1, burst: 0, now: 0)
        XCTAssertEqual(bucket.burst, 1)
        XCTAssertTrue(bucket.take(now: 0))
        XCTAssertFalse(bucket.take(now: 0))
        XCTAssertTrue(bucket.take(now: second))
    }

    func testClockGoingBackwardsGrantsNothing() {
        var bucket = TokenBucket(ratePerSecond: 10, burst: 1, now: 10 * second)
        XCTAssertTrue(bucket.take(now: 10 * second))
        XCTAssertFalse(bucket.take(now: 5 * second))
        XCTAssertFalse(bucket.take(now: 10 * second))
        XCTAssertTrue(bucket.take(now: 10 * second + second / 10))
    }
}
