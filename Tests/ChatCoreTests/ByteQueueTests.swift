@testable import ChatCore
import ChatTestSupport
import XCTest

final class ByteQueueTests: XCTestCase {
    func testAppendConsumeAndRelease() {
        var queue = ByteQueue()
        XCTAssertTrue(queue.isEmpty)
        XCTAssertEqual(queue.readable.count, 0)
        XCTAssertNil(queue.readable.baseAddress, "an empty queue holds no memory")
        queue.append("hello\n")
        queue.append([0x41, 0x42])
        XCTAssertEqual(queue.count, 8)
        XCTAssertEqual(Array(queue.readable), Array("hello\nAB".utf8))
        queue.consume(3)
        XCTAssertEqual(Array(queue.readable), Array("lo\nAB".utf8))
        queue.consume(5)
        XCTAssertTrue(queue.isEmpty)
        XCTAssertNil(queue.readable.baseAddress, "the buffer is freed when the last byte is consumed")
        queue.append("again")
        XCTAssertEqual(Array(queue.readable), Array("again".utf8))
    }

    func testRandomOperationsMatchAnArray() {
        var rng = SeededRandom(seed: 99)
        var queue = ByteQueue()
        var model: [UInt8] = []
        for step in 0..<5000 {
            if Bool.random(using: &rng) || model.isEmpty {
                let bytes = (0..<Int.random(in: 0...700, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                queue.append(bytes)
                model += bytes
            } else {
                let n = Int.random(in: 0...model.count, using: &rng)
                queue.consume(n)
                model.removeFirst(n)
            }
            XCTAssertEqual(queue.count, model.count, "step \(step)")
            XCTAssertEqual(Array(queue.readable), model, "step \(step)")
            if Array(queue.readable) != model { return }
        }
    }
}
