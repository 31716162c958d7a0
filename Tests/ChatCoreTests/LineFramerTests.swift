@testable import ChatCore
import ChatTestSupport
import XCTest

final class LineFramerTests: XCTestCase {
    // A mix of LF, CRLF, empty lines (both kinds) and multi-byte UTF-8 that a split can cut mid-character.
    let mixedInput = Array("hello\nworld\r\n\n\r\nПривет 👋\nlast one\n".utf8)
    let mixedExpected: [Framed] = [.text("hello"), .text("world"), .text(""), .text(""), .text("Привет 👋"), .text("last one")]

    func testWholeInputInOneChunk() {
        let (events, pending) = frame([mixedInput], maxLineBytes: 64)
        XCTAssertEqual(events, mixedExpected)
        XCTAssertEqual(pending, 0)
    }

    func testEveryTwoWaySplit() {
        for cut in 0...mixedInput.count {
            let (events, pending) = frame([Array(mixedInput[..<cut]), Array(mixedInput[cut...])], maxLineBytes: 64)
            XCTAssertEqual(events, mixedExpected, "split at \(cut)")
            XCTAssertEqual(pending, 0, "split at \(cut)")
        }
    }

    func testEveryThreeWaySplit() {
        let n = mixedInput.count
        for i in 0...n {
            for j in i...n {
                let chunks = [Array(mixedInput[..<i]), Array(mixedInput[i..<j]), Array(mixedInput[j...])]
                let (events, pending) = frame(chunks, maxLineBytes: 64)
                XCTAssertEqual(events, mixedExpected, "split at \(i), \(j)")
                XCTAssertEqual(pending, 0)
            }
        }
    }

    func testOneByteChunks() {
        let (events, pending) = frame(mixedInput.map { [$0] }, maxLineBytes: 64)
        XCTAssertEqual(events, mixedExpected)
        XCTAssertEqual(pending, 0)
    }

    func testLinesAreReportedAsSoonAsTheirNewlineArrives() {
        var framer = LineFramer(maxLineBytes: 64)
        XCTAssertEqual(feed(&framer, Array("ab".utf8)), [])
        XCTAssertEqual(framer.pendingCount, 2)
        XCTAssertEqual(feed(&framer, Array("c".utf8)), [])
        XCTAssertEqual(framer.pendingCount, 3)
        XCTAssertEqual(feed(&framer, Array("d\nef".utf8)), [.text("abcd")])
        XCTAssertEqual(framer.pendingCount, 2, "only the unfinished tail is held")
        XCTAssertEqual(feed(&framer, Array("\n".utf8)), [.text("ef")])
        XCTAssertEqual(framer.pendingCount, 0, "pending drops to 0 after a complete line")
        XCTAssertFalse(framer.isDiscarding)
    }

    func testEmptyChunkDoesNothing() {
        var framer = LineFramer(maxLineBytes: 8)
        XCTAssertEqual(feed(&framer, []), [])
        XCTAssertEqual(feed(&framer, Array("x".utf8)), [])
        XCTAssertEqual(feed(&framer, []), [])
        XCTAssertEqual(feed(&framer, Array("\n".utf8)), [.text("x")])
    }

    func testCRLF() {
        XCTAssertEqual(frame([Array("a\r\nb\r\n".utf8)], maxLineBytes: 8).events, [.text("a"), .text("b")])
        // Only one CR before the LF is a terminator; an earlier one is content (TextCheck refuses it later).
        XCTAssertEqual(frame([Array("a\r\r\n".utf8)], maxLineBytes: 8).events, [.text("a\r")])
        // A CR elsewhere is content.
        XCTAssertEqual(frame([Array("a\rb\n".utf8)], maxLineBytes: 8).events, [.text("a\rb")])
        // CR and LF in separate chunks.
        XCTAssertEqual(frame([Array("abc\r".utf8), Array("\n".utf8)], maxLineBytes: 8).events, [.text("abc")])
        XCTAssertEqual(frame([Array("\r".utf8), Array("\n".utf8)], maxLineBytes: 8).events, [.text("")])
    }

    func testExactLimitAccepted() {
        let limit = 8
        XCTAssertEqual(frame([Array("12345678\n".utf8)], maxLineBytes: limit).events, [.text("12345678")])
        // The CR of a CRLF may sit beyond the limit.
        XCTAssertEqual(frame([Array("12345678\r\n".utf8)], maxLineBytes: limit).events, [.text("12345678")])
        // Same, with every byte in its own chunk (the partial buffer then holds limit + 1 bytes).
        XCTAssertEqual(frame(Array("12345678\r\n".utf8).map { [$0] }, maxLineBytes: limit).events, [.text("12345678")])
        XCTAssertEqual(frame([Array("12345678".utf8), Array("\r".utf8), Array("\n".utf8)], maxLineBytes: limit).events,
                       [.text("12345678")])
    }

    func testOneOverLimitIsOverlong() {
        let limit = 8
        XCTAssertEqual(frame([Array("123456789\n".utf8)], maxLineBytes: limit).events, [.overlong])
        XCTAssertEqual(frame([Array("123456789\r\n".utf8)], maxLineBytes: limit).events, [.overlong])
        XCTAssertEqual(frame(Array("123456789\n".utf8).map { [$0] }, maxLineBytes: limit).events, [.overlong])
        XCTAssertEqual(frame(Array("123456789\r\n".utf8).map { [$0] }, maxLineBytes: limit).events, [.overlong])
    }

    func testOverlongInOneChunkThenFollowingLinesIntact() {
        var framer = LineFramer(maxLineBytes: 8)
        let input = Array("ok\n\(String(repeating: "x", count: 100))\nnext\nafter\n".utf8)
        XCTAssertEqual(feed(&framer, input), [.text("ok"), .overlong, .text("next"), .text("after")])
        XCTAssertEqual(framer.pendingCount, 0)
        XCTAssertFalse(framer.isDiscarding)
    }

    func testOverlongWithoutNewlineIsReportedAtOnceAndDiscardedUpToTheNewline() {
        var framer = LineFramer(maxLineBytes: 8)
        // No newline yet: reported as soon as the limit is crossed, and nothing is held.
        XCTAssertEqual(feed(&framer, Array("0123456789abc".utf8)), [.overlong])
        XCTAssertTrue(framer.isDiscarding)
        XCTAssertEqual(framer.pendingCount, 0)
        // More of the same line: not reported again, not held.
        XCTAssertEqual(feed(&framer, Array(String(repeating: "y", count: 10_000).utf8)), [])
        XCTAssertEqual(framer.pendingCount, 0)
        XCTAssertTrue(framer.isDiscarding)
        // The newline ends the discarded line; what follows is intact, including a partial line.
        XCTAssertEqual(feed(&framer, Array("tail\nnext\npart".utf8)), [.text("next")])
        XCTAssertFalse(framer.isDiscarding)
        XCTAssertEqual(framer.pendingCount, 4)
        XCTAssertEqual(feed(&framer, Array("ial\n".utf8)), [.text("partial")])
        XCTAssertEqual(framer.pendingCount, 0)
    }

    func testOverlongBuiltFromPendingThenCompletedInOneChunk() {
        var framer = LineFramer(maxLineBytes: 8)
        XCTAssertEqual(feed(&framer, Array("12345".utf8)), [])
        // The newline arrives in the chunk that crosses the limit: one overlong, the rest intact.
        XCTAssertEqual(feed(&framer, Array("6789abc\nfine\n".utf8)), [.overlong, .text("fine")])
        XCTAssertEqual(framer.pendingCount, 0)
        XCTAssertFalse(framer.isDiscarding)
    }

    func testOverlongAtExactlyLimitPlusOneHeldUntilNewlineOrNextByte() {
        // limit + 1 bytes might still be "limit bytes + CR", so the framer must wait.
        var framer = LineFramer(maxLineBytes: 8)
        XCTAssertEqual(feed(&framer, Array("123456789".utf8)), [])
        XCTAssertEqual(framer.pendingCount, 9)
        XCTAssertEqual(feed(&framer, Array("\nok\n".utf8)), [.overlong, .text("ok")])

        var second = LineFramer(maxLineBytes: 8)
        XCTAssertEqual(feed(&second, Array("123456789".utf8)), [])
        XCTAssertEqual(feed(&second, Array("0".utf8)), [.overlong])
        XCTAssertTrue(second.isDiscarding)
        XCTAssertEqual(feed(&second, Array("\nok\n".utf8)), [.text("ok")])
    }

    func testOverlongLinesSplitAtEveryPosition() {
        let input = Array(("short\n" + String(repeating: "z", count: 30) + "\nexactly8\n12345678\r\n123456789\n"
            + "1234567\r\r\nnine_byte\r\n\nok\n").utf8)
        let expected: [Framed] = [.text("short"), .overlong, .text("exactly8"), .text("12345678"), .overlong,
                                  .text("1234567\r"), .overlong, .text(""), .text("ok")]
        XCTAssertEqual(frame([input], maxLineBytes: 8).events, expected)
        XCTAssertEqual(frame(input.map { [$0] }, maxLineBytes: 8).events, expected)
        for cut in 0...input.count {
            let (events, pending) = frame([Array(input[..<cut]), Array(input[cut...])], maxLineBytes: 8)
            XCTAssertEqual(events, expected, "split at \(cut)")
            XCTAssertEqual(pending, 0)
        }
        for i in stride(from: 0, through: input.count, by: 1) {
            for j in stride(from: i, through: input.count, by: 3) {
                let chunks = [Array(input[..<i]), Array(input[i..<j]), Array(input[j...])]
                XCTAssertEqual(frame(chunks, maxLineBytes: 8).events, expected, "split at \(i), \(j)")
            }
        }
    }

    func testLinesInOneChunkAreHandedOutInPlace() {
        // Whole lines inside one chunk must not be copied: their buffer is the chunk itself.
        var framer = LineFramer(maxLineBytes: 64)
        let chunk = Array("abc\ndef\n".utf8)
        var addresses: [UnsafeRawPointer?] = []
        chunk.withUnsafeBytes { buffer in
            framer.feed(buffer) { event in
                if case .line(let line) = event { addresses.append(line.baseAddress) }
            }
            XCTAssertEqual(addresses, [buffer.baseAddress, buffer.baseAddress! + 4])
        }
    }

    /// Reference model: split on LF, strip one trailing CR, refuse lines over the limit.
    private func model(_ input: [UInt8], limit: Int) -> (events: [Framed], pending: Int) {
        var events: [Framed] = []
        var pieces = input.split(separator: 10, omittingEmptySubsequences: false).map(Array.init)
        let tail = pieces.removeLast()
        for var piece in pieces {
            if piece.last == 13 { piece.removeLast() }
            events.append(piece.count > limit ? .overlong : .line(piece))
        }
        // An unfinished tail is held only while it could still be a valid line (limit + a possible CR).
        if tail.count > limit + 1 { events.append(.overlong) }
        return (events, tail.count > limit + 1 ? 0 : tail.count)
    }

    func testRandomInputsAndChunkingsMatchTheModel() {
        var rng = SeededRandom(seed: 0xF4A3E)
        let alphabet: [UInt8] = Array("abcXYZ 019".utf8) + [13, 13, 0xD0, 0x9F, 0xF0, 0x9F]
        for iteration in 0..<3000 {
            let limit = Int.random(in: 1...12, using: &rng)
            var input: [UInt8] = []
            for _ in 0..<Int.random(in: 0...8, using: &rng) {
                for _ in 0..<Int.random(in: 0...(limit * 2 + 2), using: &rng) {
                    input.append(alphabet.randomElement(using: &rng)!)
                }
                if Bool.random(using: &rng) { input.append(13) }
                input.append(10)
            }
            for _ in 0..<Int.random(in: 0...(limit + 3), using: &rng) { input.append(alphabet.randomElement(using: &rng)!) }
            var chunks: [[UInt8]] = []
            var i = 0
            while i < input.count {
                let n = Int.random(in: 1...max(1, input.count - i), using: &rng)
                let size = Bool.random(using: &rng) ? min(n, 3) : n
                chunks.append(Array(input[i..<(i + size)]))
                i += size
            }
            let expected = model(input, limit: limit)
            let got = frame(chunks, maxLineBytes: limit)
            XCTAssertEqual(got.events, expected.events, "iteration \(iteration), limit \(limit), input \(input), chunks \(chunks)")
            XCTAssertEqual(got.pending, expected.pending, "iteration \(iteration)")
            if got.events != expected.events { return }
        }
    }

    /// The engine's input pause: feeding stops after the line whose handler said so, the count says how far
    /// it got, and feeding the rest later frames exactly what one uninterrupted feed would have.
    func testFeedStopsWhereTheHandlerSaysAndTheRestFramesTheSame() {
        let input = Array("one\ntwo\r\n\nthree\nfour".utf8)
        for stopAfter in 1...4 {
            var framer = LineFramer(maxLineBytes: 64)
            var events: [Framed] = []
            var rest = input[...]
            var calls = 0
            while !rest.isEmpty {
                let used = Array(rest).withUnsafeBytes { buffer in
                    framer.feedUntilStopped(buffer) { event in
                        switch event {
                        case .line(let line): events.append(.line(Array(line)))
                        case .overlong: events.append(.overlong)
                        }
                        calls += 1
                        return calls % stopAfter != 0
                    }
                }
                XCTAssertGreaterThan(used, 0)
                rest = rest.dropFirst(used)
            }
            XCTAssertEqual(events, [.text("one"), .text("two"), .text(""), .text("three")], "stop after \(stopAfter)")
            XCTAssertEqual(framer.pendingCount, 4)
        }
    }

    /// line-timeout: an expired partial line is dropped and so is its rest up to the newline, so the tail of a
    /// half-typed line never arrives as a line of its own; the next line frames normally.
    func testExpiredPartialLineIsDroppedUpToItsNewline() {
        var framer = LineFramer(maxLineBytes: 64)
        XCTAssertEqual(feed(&framer, Array("half-typ".utf8)), [])
        let serial = framer.partialSerial
        XCTAssertEqual(framer.expirePartial(), 8)
        XCTAssertEqual(framer.pendingCount, 0)
        XCTAssertEqual(framer.pendingCapacity, 0, "the partial line's memory is freed")
        XCTAssertEqual(framer.expirePartial(), 0)
        XCTAssertEqual(feed(&framer, Array("ed tail\nnext\npart".utf8)), [.text("next")])
        XCTAssertNotEqual(framer.partialSerial, serial, "a new partial line is told apart from the expired one")
    }

    /// A partial line never holds more than the line limit allows (Array's doubling would allow ~2x), and its
    /// buffer is freed when the line completes.
    func testPartialLineBufferIsBoundedByTheLimitAndFreed() {
        var framer = LineFramer(maxLineBytes: 4096)
        for _ in 0..<4097 { _ = feed(&framer, [0x61]) }
        XCTAssertEqual(framer.pendingCount, 4097)
        XCTAssertLessThan(framer.pendingCapacity, 4097 + 64, "pending capacity \(framer.pendingCapacity)")
        XCTAssertEqual(feed(&framer, [10]), [.overlong])
        XCTAssertEqual(framer.pendingCapacity, 0, "freed when the line ended")
        for _ in 0..<4000 { _ = feed(&framer, [0x62]) }
        XCTAssertLessThan(framer.pendingCapacity, 4097 + 64)
        XCTAssertEqual(feed(&framer, [10]), [.text(String(repeating: "b", count: 4000))])
        XCTAssertEqual(framer.pendingCapacity, 0)
    }
}
