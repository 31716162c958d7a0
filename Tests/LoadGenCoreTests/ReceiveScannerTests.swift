// chat-loadgen's receive side, byte by byte: every "0 lost" in Benchmarks/README.md is the number of tokens
// this scanner found, so each way it could find too many (a hidden loss) or too few (a false alarm) is here.

import ChatFronts
import ChatTestSupport
import LoadGenCore
import XCTest

/// What one scan saw: the tokens in order, and each completed line's head.
private struct Seen: Equatable {
    var tokens: [MessageToken] = []
    var lines: [[UInt8]] = []
    var wholeLines: [Bool] = []
}

/// Feeds `bytes` to one scanner in pieces cut at `cuts` (offsets), as reads would deliver them.
private func feed(_ bytes: [UInt8], cuts: [Int], headLimit: Int = ReceiveScanner.headBytes, findTokens: Bool = true,
                  token: (MessageToken) -> Void, line: (LineHead) -> Void) {
    var scanner = ReceiveScanner()
    let head = UnsafeMutablePointer<UInt8>.allocate(capacity: ReceiveScanner.headBytes)
    defer { head.deallocate() }
    var start = 0
    for end in cuts.sorted() + [bytes.count] where end >= start {
        bytes[start..<end].withUnsafeBufferPointer { piece in
            guard let base = piece.baseAddress else { return }
            scanner.consume(base, count: piece.count, head: head, headLimit: headLimit, findTokens: findTokens, token: token,
                            line: line)
        }
        start = end
    }
}

/// What a scanner fed `bytes` in pieces saw.
private func scan(_ bytes: [UInt8], cuts: [Int] = [], findTokens: Bool = true) -> Seen {
    var seen = Seen()
    feed(bytes, cuts: cuts, findTokens: findTokens, token: { seen.tokens.append($0) }, line: { line in
        seen.lines.append(Array(line.bytes))
        seen.wholeLines.append(line.isWholeLine)
    })
    return seen
}

private func scan(_ text: String, cuts: [Int] = []) -> Seen { scan(Array(text.utf8), cuts: cuts) }

private func token(_ sender: UInt64, _ seq: UInt64, _ sentAt: UInt64) -> MessageToken {
    MessageToken(sender: sender, seq: seq, sentAt: sentAt)
}

/// The text chat-loadgen puts in a message: the token, then padding.
private func payload(_ t: MessageToken, padding: Int = 12) -> String {
    "[[\(t.sender),\(t.seq),\(t.sentAt)]]" + String(repeating: "x", count: padding)
}

/// How the servers show a message to a receiver, one per wire format the benchmarks use.
private let wireLines: [(name: String, render: @Sendable (String) -> String)] = [
    ("native", { "MSG #lobby lg17: \($0)\n" }),
    ("native action", { "ACT #lobby lg17 \($0)\n" }),
    ("irc", { ":lg17!lg17@127.0.0.1 PRIVMSG #lobby :\($0)\r\n" }),
    ("irc tagged", { "@time=2026-12-03T08:00:00.123Z :lg17!lg17@127.0.0.1 PRIVMSG #lobby :\($0)\r\n" }),
    ("irc action", { ":lg17!lg17@127.0.0.1 PRIVMSG #lobby :\u{1}ACTION \($0)\u{1}\r\n" }),
    ("irc nick with brackets", { ":[lg]17!~u@h PRIVMSG #lobby :\($0)\r\n" }),
    ("nio", { "(127.0.0.1:50000) - \($0)\n" }),
    ("redis", { "$40\r\n\($0)\r\n" }),
]

/// The token rule written the slow, obvious way, line by line: the leftmost `[[D,D,D]]` (each D one or more
/// digits that fit UInt64), then the next one after it.
private func referenceTokens(_ bytes: [UInt8]) -> [MessageToken] {
    var found: [MessageToken] = []
    for line in bytes.split(separator: 10, omittingEmptySubsequences: false) {
        let line = Array(line)
        var i = 0
        while i + 1 < line.count {
            guard line[i] == 91, line[i + 1] == 91 else { i += 1; continue }
            var k = i + 2
            var fields: [UInt64] = []
            var ok = true
            for index in 0..<3 {
                let start = k
                while k < line.count, line[k] >= 48, line[k] <= 57 { k += 1 }
                guard k > start, let value = UInt64(String(decoding: line[start..<k], as: UTF8.self)) else { ok = false; break }
                fields.append(value)
                let want: UInt8 = index < 2 ? 44 : 93
                guard k < line.count, line[k] == want else { ok = false; break }
                k += 1
            }
            if ok, k < line.count, line[k] == 93 {
                found.append(token(fields[0], fields[1], fields[2]))
                i = k + 1
            } else {
                i += 1
            }
        }
    }
    return found
}

final class TokenScanningTests: XCTestCase {
    func testOneTokenInEveryWireFormat() {
        let t = token(3, 42, 1_234_567_890)
        for (name, render) in wireLines {
            let text = render(payload(t))
            let seen = scan(text)
            XCTAssertEqual(seen.tokens, [t], name)
            XCTAssertEqual(seen.lines.count, text.utf8.filter { $0 == 10 }.count, name)
        }
    }

    func testATokenSplitAtEveryByteIsFoundOnce() {
        let t = token(19, 1_000_001, 987_654_321_012_345)
        for (name, render) in wireLines {
            let bytes = Array(render(payload(t)).utf8)
            for cut in 0...bytes.count {
                XCTAssertEqual(scan(bytes, cuts: [cut]).tokens, [t], "\(name), cut at \(cut)")
            }
            // One byte per read: every state of the scanner is carried across a read.
            XCTAssertEqual(scan(bytes, cuts: Array(0...bytes.count)).tokens, [t], "\(name), one byte per read")
        }
    }

    func testSeveralTokensPerReadAndPerLine() {
        let tokens = (1...50).map { token(UInt64($0 % 7), UInt64($0), UInt64($0) * 1000) }
        // 50 lines in one read.
        var text = ""
        for (index, t) in tokens.enumerated() { text += wireLines[index % wireLines.count].render(payload(t)) }
        XCTAssertEqual(scan(text).tokens, tokens)
        // Several tokens on one line, adjacent or apart.
        XCTAssertEqual(scan("MSG #lobby a: [[1,2,3]][[4,5,6]] and [[7,8,9]]\n").tokens,
                       [token(1, 2, 3), token(4, 5, 6), token(7, 8, 9)])
    }

    func testTokensNeverSpanALine() {
        XCTAssertEqual(scan("MSG #r a: [[1,2\n3]]\n").tokens, [])
        XCTAssertEqual(scan("MSG #r a: [[1,2,3]\n]\n").tokens, [])
        XCTAssertEqual(scan("MSG #r a: [\n[1,2,3]]\n").tokens, [])
        // A token cut off by the line break does not swallow the next line's token, split or not.
        let text = "MSG #r a: [[1,2\nMSG #r a: [[4,5,6]]\n"
        for cut in 0...text.utf8.count {
            XCTAssertEqual(scan(text, cuts: [cut]).tokens, [token(4, 5, 6)], "cut at \(cut)")
        }
    }

    func testMalformedTokensAreNotCounted() {
        let garbage = ["[[1,2]]", "[[1,2,3,4]]", "[[,2,3]]", "[[1,,3]]", "[[1,2,]]", "[[,,]]", "[[]]", "[[a,b,c]]",
                       "[ [1,2,3]]", "[[1,2,3] ]", "[[1,2,3]", "[[-1,2,3]]", "[[+1,2,3]]", "[[1 ,2,3]]", "[[1,2,3]x]",
                       "[[1;2;3]]", "[[1.0,2,3]]", "[[0x1,2,3]]", "[[1,2,3)]", "((1,2,3))", "[1,2,3]", "[[１,2,3]]",
                       "[[1,2,3\u{0}]]", "[[1\r,2,3]]"]
        for text in garbage {
            XCTAssertEqual(scan("MSG #r a: \(text)\n").tokens, [], text)
            // Nor do they hide a good token after them.
            XCTAssertEqual(scan("MSG #r a: \(text)[[7,8,9]]\n").tokens, [token(7, 8, 9)], text)
        }
    }

    /// A `[` just before a token (`[[[`), or a token cut short before one, must not make the scanner skip it.
    func testBracketsBeforeATokenDoNotHideIt() {
        for prefix in ["[", "[[", "[[[", "[[1", "[[1,", "[[1,2", "[[1,2,", "[[1,2,3", "[[1,2,3]", "]", "]]", "[]", "x["] {
            let seen = scan("MSG #r a: \(prefix)[[5,6,7]]\n")
            XCTAssertEqual(seen.tokens, [token(5, 6, 7)], prefix)
        }
    }

    func testHugeNumbersAreRefusedWithoutTrapping() {
        let max = UInt64.max
        XCTAssertEqual(scan("MSG #r a: [[\(max),\(max),\(max)]]\n").tokens, [token(max, max, max)])
        for field in 0..<3 {
            for big in ["18446744073709551616", "99999999999999999999", "184467440737095516150", String(repeating: "9", count: 400)] {
                var parts = ["1", "2", "3"]
                parts[field] = big
                let text = "MSG #r a: [[\(parts.joined(separator: ","))]][[4,5,6]]\n"
                XCTAssertEqual(scan(text).tokens, [token(4, 5, 6)], "field \(field): \(big.prefix(30))")
            }
        }
        // Leading zeros are digits like any other; the value is what counts.
        XCTAssertEqual(scan("MSG #r a: [[\(String(repeating: "0", count: 40))1,2,3]]\n").tokens, [token(1, 2, 3)])
    }

    func testTokensAreIgnoredWhenTheClientDoesNotCount() {
        let seen = scan(Array("MSG #r a: [[1,2,3]]\n".utf8), findTokens: false)
        XCTAssertEqual(seen.tokens, [])
        XCTAssertEqual(seen.lines.count, 1)
    }

    /// Random lines in every wire format, with tokens, near-tokens and noise, cut into random reads: the scanner
    /// finds exactly what the slow reference finds, in order.
    func testRandomStreamsMatchTheReference() {
        let alphabet = Array("[[[]]],,,0123456789 x\r:#@!".utf8)
        for seed in 0..<300 {
            var random = SeededRandom(seed: UInt64(seed))
            var text = ""
            for _ in 0..<(1 + random.below(12)) {
                var content = ""
                for _ in 0..<random.below(4) {
                    switch random.below(4) {
                    case 0:
                        content += payload(token(UInt64(random.below(20)), random.next() % 1_000_000, random.next()),
                                           padding: random.below(5))
                    case 1:
                        content += "[[\(random.below(100)),\(random.below(100))"  // a token cut short
                    default:
                        content += String(decoding: (0..<random.below(16)).map { _ in alphabet[random.below(alphabet.count)] },
                                          as: UTF8.self)
                    }
                }
                text += wireLines[random.below(wireLines.count)].render(content)
            }
            let bytes = Array(text.utf8)
            let cuts = (0..<random.below(8)).map { _ in random.below(bytes.count + 1) }
            XCTAssertEqual(scan(bytes, cuts: cuts).tokens, referenceTokens(bytes), "seed \(seed): \(text.debugDescription)")
        }
    }

    /// Bytes of every value, NUL and invalid UTF-8 included: no trap, and only real tokens count.
    func testArbitraryBytesNeverTrap() {
        for seed in 0..<100 {
            var random = SeededRandom(seed: 1_000 + UInt64(seed))
            let bytes = (0..<random.below(2_000)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let cuts = (0..<random.below(10)).map { _ in random.below(bytes.count + 1) }
            XCTAssertEqual(scan(bytes, cuts: cuts).tokens, referenceTokens(bytes), "seed \(seed)")
        }
    }
}

final class LineTests: XCTestCase {
    private let native = LineClassifier(readyPrefix: NativeVocabulary.welcomePrefix,
                                        onlinePrefix: NativeVocabulary.onlinePrefix(room: "lobby"),
                                        missedPrefix: NativeVocabulary.missedPrefix)
    private let irc = LineClassifier(readyPrefix: ":chatd 366 ", onlinePrefix: nil, missedPrefix: nil)

    /// The kinds of the lines in `text`, fed in pieces cut at `cuts`.
    private func kinds(_ text: String, _ classifier: LineClassifier, awaitingReady: Bool = false, cuts: [Int] = []) -> [LineKind] {
        var kinds: [LineKind] = []
        feed(Array(text.utf8), cuts: cuts, headLimit: classifier.headLimit, token: { _ in },
             line: { kinds.append(classifier.classify($0, awaitingReady: awaitingReady)) })
        return kinds
    }

    func testHeadsKeepTheLineStartAndSayWhetherTheyAreWhole() {
        let long = "MSG #lobby someone: " + String(repeating: "y", count: 100)
        let seen = scan("SYS short\n\(long)\n\n")
        XCTAssertEqual(seen.lines, [Array("SYS short".utf8), Array(long.utf8.prefix(ReceiveScanner.headBytes)), []])
        XCTAssertEqual(seen.wholeLines, [true, false, true])
        // Exactly headBytes long is still whole; one more is not.
        let exact = String(repeating: "z", count: ReceiveScanner.headBytes)
        XCTAssertEqual(scan("\(exact)\n\(exact)z\n").wholeLines, [true, false])
        // A line without its \n yet is not reported.
        XCTAssertEqual(scan("SYS no end").lines, [])
    }

    func testTheReadyLineCountsOnlyForAWaitingClient() {
        let welcome = "SYS Welcome: lg1. You are in #lobby; online (1): lg1\n"
        XCTAssertEqual(kinds(welcome, native, awaitingReady: true), [.ready])
        XCTAssertEqual(kinds(welcome, native, awaitingReady: false), [.other])
        XCTAssertEqual(kinds(":chatd 366 lg1 #lobby :End of /NAMES list.\r\n", irc, awaitingReady: true), [.ready])
        XCTAssertEqual(kinds(":chatd 353 lg1 = #lobby :lg1\r\n", irc, awaitingReady: true), [.other])
        // An empty prefix never matches (such clients are ready when connected).
        let none = LineClassifier(readyPrefix: "", onlinePrefix: nil, missedPrefix: nil)
        XCTAssertEqual(kinds("anything\n", none, awaitingReady: true), [.other])
    }

    func testOnlineAnnouncements() {
        XCTAssertEqual(kinds("SYS #lobby Online: lg7\nSYS #other Online: lg7\n", native), [.online, .other])
        XCTAssertEqual(kinds(":lg7!lg7@h JOIN #lobby\r\n", irc), [.other])
    }

    /// IRC's join lines start with the joiner's source, so the connect scenario finds them by a marker
    /// anywhere in a 64-byte head (other runs keep 32 bytes).
    func testJoinLinesFoundByAMarker() {
        let marked = LineClassifier(readyPrefix: ":chatd 366 ", onlinePrefix: nil, onlineMarker: " JOIN ", missedPrefix: nil)
        XCTAssertEqual(irc.headLimit, ReceiveScanner.shortHead)
        XCTAssertEqual(marked.headLimit, ReceiveScanner.headBytes)
        // A 30-character nick: the marker ends at byte 56 of the line, beyond a 32-byte head.
        let nick = String(repeating: "n", count: 30)
        let join = ":\(nick)!\(nick.prefix(10))@127.0.0.1 JOIN #lobby\r\n"
        XCTAssertEqual(kinds(join + ":a!a@h PRIVMSG #lobby :JOIN me\r\n", marked), [.online, .other])
        XCTAssertEqual(kinds(join, irc), [.other])
        for cut in 0...join.utf8.count { XCTAssertEqual(kinds(join, marked, cuts: [cut]), [.online], "cut at \(cut)") }
        // A marker past the head is not seen: the head is all the classifier has.
        XCTAssertEqual(kinds(":\(String(repeating: "x", count: 70)) JOIN #lobby\r\n", marked), [.other])
    }

    func testMissedCountsInTheNativeNotice() {
        // The notice as NativeFront writes it.
        XCTAssertEqual(kinds("SYS Missed: 17 lines in #lobby; you were reading too slowly\n", native), [.missed(17)])
        XCTAssertEqual(kinds("SYS Missed: 0 lines in #lobby; you were reading too slowly\n", native), [.missed(0)])
        XCTAssertEqual(kinds("SYS Missed: 5\r\n", native), [.missed(5)])
        XCTAssertEqual(kinds("SYS Missed: 5\n", native), [.missed(5)])
        // Split anywhere across reads.
        let text = "SYS Missed: 123456 lines in #lobby; you were reading too slowly\n"
        for cut in 0...text.utf8.count {
            XCTAssertEqual(kinds(text, native, cuts: [cut]), [.missed(123_456)], "cut at \(cut)")
        }
    }

    func testUnreadableMissedCountsCountNothing() {
        XCTAssertEqual(kinds("SYS Missed: lines\n", native), [.missed(nil)])
        XCTAssertEqual(kinds("SYS Missed: \n", native), [.missed(nil)])
        XCTAssertEqual(kinds("SYS Missed: -3 lines\n", native), [.missed(nil)])
        // The largest Int fits in the head (12 + 19 bytes, then a space); one more overflows, and more still
        // would be cut by the head: neither traps, neither counts.
        XCTAssertEqual(kinds("SYS Missed: 9223372036854775807 lines\n", native), [.missed(Int.max)])
        XCTAssertEqual(kinds("SYS Missed: 9223372036854775808 lines\n", native), [.missed(nil)])
        XCTAssertEqual(kinds("SYS Missed: 99999999999999999999 lines\n", native), [.missed(nil)])
        XCTAssertEqual(kinds("SYS Missed: \(String(repeating: "9", count: 500)) lines\n", native), [.missed(nil)])
    }

    /// A number running to the end of a head that is not the whole line may go on past it: reading its first
    /// digits would undercount, so it is not read.
    func testAMissedCountCutByTheHeadIsNotRead() {
        let prefix = "NOTICE #a-long-room :missed "  // 28 bytes: 4 digits fit in the (short) head
        XCTAssertEqual(prefix.utf8.count, ReceiveScanner.shortHead - 4)
        let classifier = LineClassifier(readyPrefix: "x", onlinePrefix: nil, missedPrefix: prefix)
        XCTAssertEqual(kinds("\(prefix)1234\n", classifier), [.missed(1234)])  // exactly the head: whole
        XCTAssertEqual(kinds("\(prefix)12345\n", classifier), [.missed(nil)])
        XCTAssertEqual(kinds("\(prefix)1234 lines\n", classifier), [.missed(nil)])  // the head cannot tell
        XCTAssertEqual(kinds("\(prefix)123 lines\n", classifier), [.missed(123)])
    }

    func testErrorLinesAndTheirCodes() {
        XCTAssertEqual(kinds("ERR rate-limited slow down\n", native), [.error(code: "ERR rate-limited")])
        XCTAssertEqual(kinds("ERR queue-overflow\r\n", native), [.error(code: "ERR queue-overflow")])
        XCTAssertEqual(kinds("-ERR unknown command\r\n", native), [.error(code: "-ERR")])
        XCTAssertEqual(kinds("ERR\nERRX y\n", native), [.other, .other])
        // The code as the native vocabulary writes it.
        let line = NativeVocabulary.errorLine(.queueOverflow, "you were too slow") + "\n"
        XCTAssertEqual(kinds(line, native), [.error(code: "ERR queue-overflow")])
    }

    /// The classifier and the token scanner see the same lines: a message line with a token counts as a
    /// delivery and as an `other` line, nothing more.
    func testAMessageLineIsOnlyADelivery() {
        let text = "MSG #lobby lg2: [[1,2,3]]xxxx\nSYS Missed: 4 lines in #lobby; you were reading too slowly\n"
        XCTAssertEqual(kinds(text, native), [.other, .missed(4)])
        XCTAssertEqual(scan(text).tokens, [token(1, 2, 3)])
    }
}
