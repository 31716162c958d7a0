@testable import ChatCore
import ChatTestSupport
import XCTest

final class MessageRingTests: XCTestCase {
    /// Appends `prefix` + `body` + LF.
    @discardableResult
    private func append(_ ring: MessageRing, _ prefix: String, _ body: String) -> Range<UInt64> {
        let p = Array(prefix.utf8)
        let b = Array(body.utf8)
        return p.withUnsafeBytes { pp in b.withUnsafeBytes { bb in ring.appendLine(pp, bb) } }
    }

    private func spans(_ ring: MessageRing, _ from: UInt64, _ to: UInt64) -> [[UInt8]] {
        var result: [[UInt8]] = []
        ring.forEachSpan(from: from, to: to) { result.append(Array($0)) }
        return result
    }

    private func content(_ ring: MessageRing, _ from: UInt64? = nil, _ to: UInt64? = nil) -> String {
        String(decoding: spans(ring, from ?? ring.tail, to ?? ring.head).flatMap { $0 }, as: UTF8.self)
    }

    /// What the ring must hold, kept by the test: every line ever appended, with its offsets.
    private struct Model {
        var lines: [(start: UInt64, bytes: [UInt8])] = []
        var head: UInt64 = 0

        mutating func append(_ text: String) -> Range<UInt64> {
            let bytes = Array((text + "\n").utf8)
            lines.append((head, bytes))
            head += UInt64(bytes.count)
            return (head - UInt64(bytes.count))..<head
        }

        func index(startingAt offset: UInt64) -> Int? { lines.firstIndex { $0.start == offset } }

        func text(from seq: Int) -> String {
            String(decoding: lines[seq...].flatMap(\.bytes), as: UTF8.self)
        }
    }

    /// Every invariant the ring promises, checked against the model.
    private func verify(_ ring: MessageRing, _ model: Model, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(ring.head, model.head, "head", file: file, line: line)
        XCTAssertEqual(ring.headSeq, UInt64(model.lines.count), "headSeq", file: file, line: line)
        XCTAssertLessThanOrEqual(ring.usedBytes, ring.capacity, file: file, line: line)
        XCTAssertEqual(ring.freeBytes, ring.capacity - ring.usedBytes, file: file, line: line)
        guard let first = model.index(startingAt: ring.tail) ?? (ring.tail == ring.head ? model.lines.count : nil) else {
            return XCTFail("tail \(ring.tail) is not a line start", file: file, line: line)
        }
        XCTAssertEqual(ring.tailSeq, UInt64(first), "tailSeq", file: file, line: line)
        XCTAssertEqual(content(ring), model.text(from: first), "held bytes", file: file, line: line)
        // The spans: one if the held bytes do not cross the end of storage, two if they do.
        let wraps = (Int(ring.tail) & (ring.capacity - 1)) + ring.usedBytes > ring.capacity
        let expectedSpans = ring.usedBytes == 0 ? 0 : (wraps ? 2 : 1)
        XCTAssertEqual(spans(ring, ring.tail, ring.head).count, expectedSpans, "span count", file: file, line: line)
        // lineEnd for every held offset.
        for seq in first..<model.lines.count {
            let (start, bytes) = model.lines[seq]
            let end = start + UInt64(bytes.count)
            for offset in stride(from: start, to: end, by: max(1, bytes.count / 3)) {
                XCTAssertEqual(ring.recordEnd(containing: offset), end, "recordEnd(\(offset))", file: file, line: line)
            }
            XCTAssertEqual(ring.byte(at: end - 1), 10, file: file, line: line)
        }
        // countLineEnds between any two held line starts.
        for a in first..<model.lines.count {
            XCTAssertEqual(ring.countRecords(from: model.lines[a].start, to: model.head), model.lines.count - a,
                           file: file, line: line)
            XCTAssertEqual(ring.countRecords(from: ring.tail, to: model.lines[a].start), a - first, file: file, line: line)
        }
    }

    func testCapacityIsAPowerOfTwoAndAtLeast64() {
        let small = MessageRing(initialCapacity: 10, maxCapacity: 10)
        XCTAssertEqual(small.capacity, 64)
        XCTAssertEqual(small.maxCapacity, 64)
        let odd = MessageRing(initialCapacity: 100, maxCapacity: 1000)
        XCTAssertEqual(odd.capacity, 128)
        XCTAssertEqual(odd.maxCapacity, 1024)
        let inverted = MessageRing(initialCapacity: 4096, maxCapacity: 100)
        XCTAssertEqual(inverted.maxCapacity, 4096, "max is never below the initial capacity")
        XCTAssertEqual(MessageRing.powerOfTwo(atLeast: 1), 1)
        XCTAssertEqual(MessageRing.powerOfTwo(atLeast: 576), 1024)
        XCTAssertEqual(MessageRing.powerOfTwo(atLeast: 1024), 1024)
    }

    func testAppendReturnsTheLineRange() {
        let ring = MessageRing(initialCapacity: 64, maxCapacity: 64)
        let r1 = append(ring, "MSG a: ", "hi")
        XCTAssertEqual(r1, 0..<10)
        let r2 = append(ring, "", "x")
        XCTAssertEqual(r2, 10..<12)
        XCTAssertEqual(content(ring), "MSG a: hi\nx\n")
        XCTAssertEqual(content(ring, r2.lowerBound, r2.upperBound), "x\n")
        XCTAssertEqual(ring.headSeq, 2)
        XCTAssertEqual(ring.tailSeq, 0)
        XCTAssertEqual(ring.usedBytes, 12)
    }

    func testWrapAroundGivesTwoSpansAndEvictsWholeLines() {
        let ring = MessageRing(initialCapacity: 64, maxCapacity: 64)
        var model = Model()
        // 10-byte lines: six fit (60 bytes); the seventh evicts the first whole line and wraps.
        for i in 0..<6 {
            XCTAssertEqual(append(ring, "line ", "\(i)...") , model.append("line \(i)..."))
        }
        verify(ring, model)
        XCTAssertEqual(ring.tail, 0)
        XCTAssertEqual(spans(ring, ring.tail, ring.head).count, 1)

        XCTAssertEqual(append(ring, "line ", "6..."), model.append("line 6..."))
        verify(ring, model)
        XCTAssertEqual(ring.tail, 10, "exactly one whole line evicted")
        XCTAssertEqual(ring.tailSeq, 1)
        let parts = spans(ring, ring.tail, ring.head)
        XCTAssertEqual(parts.count, 2, "held bytes cross the end of storage")
        XCTAssertEqual(parts[0].count, 54)
        XCTAssertEqual(parts[1].count, 6)
        XCTAssertEqual(content(ring), "line 1...\nline 2...\nline 3...\nline 4...\nline 5...\nline 6...\n")
        // The newest line alone is split too.
        XCTAssertEqual(spans(ring, 60, 70).map(\.count), [4, 6])
        XCTAssertEqual(content(ring, 60, 70), "line 6...\n")
        // A range that does not cross the end is one span.
        XCTAssertEqual(spans(ring, 10, 60).count, 1)
        XCTAssertTrue(spans(ring, 30, 30).isEmpty)
    }

    func testEvictionOfVariableLinesAdvancesTailAndSeqByWholeLines() {
        let ring = MessageRing(initialCapacity: 64, maxCapacity: 64)
        var model = Model()
        model.lines.reserveCapacity(1000)
        var rng = SeededRandom(seed: 64)
        for i in 0..<1000 {
            let body = String(repeating: Character(UnicodeScalar(UInt8(97 + i % 26))), count: Int.random(in: 0...62, using: &rng))
            let predictedTail = ring.evictionEnd(forAppending: body.utf8.count + 1)
            let oldTail = ring.tail
            XCTAssertEqual(append(ring, "", body), model.append(body))
            XCTAssertEqual(ring.tail, predictedTail, "evictionEnd predicts the tail after the append")
            if ring.tail != oldTail {
                // The line that now sits at the tail starts where the previous line ended.
                XCTAssertNotNil(model.index(startingAt: ring.tail))
            }
            verify(ring, model)
        }
    }

    func testLineEndAndCountLineEnds() {
        let ring = MessageRing(initialCapacity: 64, maxCapacity: 64)
        append(ring, "ab", "c")      // 0..<4
        append(ring, "", "")         // 4..<5: an empty line is just "\n"
        append(ring, "xy", "zzz")    // 5..<11
        XCTAssertEqual(ring.recordEnd(containing: 0), 4)
        XCTAssertEqual(ring.recordEnd(containing: 3), 4)
        XCTAssertEqual(ring.recordEnd(containing: 4), 5)
        XCTAssertEqual(ring.recordEnd(containing: 5), 11)
        XCTAssertEqual(ring.recordEnd(containing: 10), 11)
        XCTAssertEqual(ring.recordEnd(containing: 11), 11, "at head: head")
        XCTAssertEqual(ring.countRecords(from: 0, to: 11), 3)
        XCTAssertEqual(ring.countRecords(from: 0, to: 3), 0)
        XCTAssertEqual(ring.countRecords(from: 0, to: 4), 1)
        XCTAssertEqual(ring.countRecords(from: 2, to: 5), 2)
        XCTAssertEqual(ring.countRecords(from: 5, to: 5), 0)
    }

    func testCountLineEndsAcrossTheWrap() {
        let ring = MessageRing(initialCapacity: 64, maxCapacity: 64)
        for i in 0..<20 { append(ring, "n", "\(i % 10)") }  // 3-byte lines: wraps several times
        XCTAssertEqual(ring.capacity, 64)
        XCTAssertEqual(ring.usedBytes, 60)
        XCTAssertEqual(ring.countRecords(from: ring.tail, to: ring.head), 20 - Int(ring.tailSeq))
        XCTAssertEqual(ring.countRecords(from: ring.tail, to: ring.head), 20)
        XCTAssertEqual(spans(ring, ring.tail, ring.head).count, 1)
        for i in 20..<30 { append(ring, "n", "\(i % 10)") }
        // 21 three-byte lines fit in 64 bytes; the rest were evicted one whole line at a time.
        XCTAssertEqual(ring.usedBytes, 63)
        XCTAssertEqual(ring.tailSeq, 9)
        XCTAssertEqual(spans(ring, ring.tail, ring.head).count, 2)
        XCTAssertEqual(ring.countRecords(from: ring.tail, to: ring.head), 21)
        XCTAssertEqual(content(ring), (9..<30).map { "n\($0 % 10)\n" }.joined())
    }

    func testGrowPreservesContentAcrossTheWrap() {
        let ring = MessageRing(initialCapacity: 64, maxCapacity: 256)
        var model = Model()
        for i in 0..<9 { XCTAssertEqual(append(ring, "g", "\(i)-abcdef"), model.append("g\(i)-abcdef")) }  // 10-byte lines
        XCTAssertEqual(spans(ring, ring.tail, ring.head).count, 2, "precondition: the held bytes wrap")
        verify(ring, model)
        let (tail, head, tailSeq, headSeq) = (ring.tail, ring.head, ring.tailSeq, ring.headSeq)
        let before = content(ring)

        ring.grow(toFit: 100)
        XCTAssertEqual(ring.capacity, 256, "doubled until 100 more bytes fit: 64 -> 128 is not enough with 60 held")
        XCTAssertEqual(content(ring), before)
        XCTAssertEqual(ring.tail, tail)
        XCTAssertEqual(ring.head, head)
        XCTAssertEqual(ring.tailSeq, tailSeq)
        XCTAssertEqual(ring.headSeq, headSeq)
        verify(ring, model)
        // Appends continue without eviction until the new capacity is used.
        for i in 9..<28 { XCTAssertEqual(append(ring, "g", "\(i)-abc"), model.append("g\(i)-abc")) }
        verify(ring, model)
        XCTAssertEqual(ring.tail, tail, "no eviction yet")
        // At the maximum, grow is a no-op and eviction resumes.
        ring.grow(toFit: 1000)
        XCTAssertEqual(ring.capacity, 256)
        for i in 28..<60 { XCTAssertEqual(append(ring, "g", "\(i)-abc"), model.append("g\(i)-abc")) }
        verify(ring, model)
        XCTAssertGreaterThan(ring.tail, tail)
    }

    func testGrowDoesNothingWhenTheLineAlreadyFits() {
        let ring = MessageRing(initialCapacity: 64, maxCapacity: 1024)
        append(ring, "", "abc")
        ring.grow(toFit: 60)
        XCTAssertEqual(ring.capacity, 64)
        ring.grow(toFit: 61)
        XCTAssertEqual(ring.capacity, 128)
        XCTAssertEqual(content(ring), "abc\n")
    }

    func testEvictionEnd() {
        let ring = MessageRing(initialCapacity: 64, maxCapacity: 64)
        append(ring, "", String(repeating: "a", count: 19))  // 0..<20
        append(ring, "", String(repeating: "b", count: 19))  // 20..<40
        append(ring, "", String(repeating: "c", count: 19))  // 40..<60
        XCTAssertEqual(ring.evictionEnd(forAppending: 4), 0, "fits: nothing to evict")
        XCTAssertEqual(ring.evictionEnd(forAppending: 5), 20, "one byte short: the whole first line goes")
        XCTAssertEqual(ring.evictionEnd(forAppending: 24), 20)
        XCTAssertEqual(ring.evictionEnd(forAppending: 25), 40)
        XCTAssertEqual(ring.evictionEnd(forAppending: 64), 60)
    }

    func testRandomizedAgainstModelWithGrowth() {
        var rng = SeededRandom(seed: 0xBEEF)
        for round in 0..<20 {
            let ring = MessageRing(initialCapacity: 64, maxCapacity: 64 << Int.random(in: 0...4, using: &rng))
            var model = Model()
            for step in 0..<300 {
                if Int.random(in: 0..<10, using: &rng) == 0 {
                    ring.grow(toFit: Int.random(in: 1...ring.maxCapacity, using: &rng))
                }
                let length = Int.random(in: 0...min(ring.capacity - 1, 90), using: &rng)
                let body = String((0..<length).map { _ in Character(UnicodeScalar(UInt8.random(in: 0x20...0x7E, using: &rng))) })
                XCTAssertEqual(append(ring, "", body), model.append(body), "round \(round) step \(step)")
                verify(ring, model)
            }
        }
    }
}
