// Issue 9 findings handled in the hub and the ring: lines longer than a ring, ring memory, cached
// listing replies, and presence that costs nothing for connections that come and go.

@testable import ChatCore
import ChatTestSupport
import XCTest

final class RingMemoryTests: XCTestCase {
    /// Finding 1: a ring starts at 16 KiB; a 16,364-byte message with max-line-bytes 65536 tripped a precondition.
    func testALineLongerThanTheRingIsHeldAndDeliveredWhole() {
        var limits = ChatLimits()
        limits.maxLineBytes = 65536
        limits.ringBytes = 1 << 20
        limits.messageRate = 0
        let h = HubHarness(limits: limits)
        let a = h.login("A")
        let b = h.login("B")
        _ = h.lines(a)
        XCTAssertEqual(h.lobbyRing.capacity, 16 * 1024)
        for size in [16_364, 40_000, 65_536] {
            let text = String(repeating: "x", count: size)
            h.send(text, from: a)
            XCTAssertEqual(h.lines(b, writeSize: 7000), ["MSG #lobby A: " + text], "size \(size)")
        }
        XCTAssertEqual(b.missedLines, 0)
    }

    /// Finding 1, after SIGHUP: a room made under a small limit takes a line of a larger one.
    func testARoomMadeBeforeTheLimitWasRaisedTakesTheLongerLine() {
        var limits = ChatLimits()
        limits.maxLineBytes = 1024
        limits.ringBytes = limits.minimumRingBytes
        limits.ringInitialBytes = 1024
        limits.messageRate = 0
        let h = HubHarness(limits: limits)
        let a = h.login("A")
        let b = h.login("B")
        _ = h.lines(a)
        XCTAssertEqual(h.lobbyRing.maxCapacity, 2048)
        limits.maxLineBytes = 65536
        limits.ringBytes = 1 << 20
        h.hub.limits = limits
        let text = String(repeating: "y", count: 60_000)
        h.send(text, from: a)
        XCTAssertEqual(h.lines(b), ["MSG #lobby A: " + text])
    }

    /// Finding 9: a ring grown for a reader that stalled shrinks back once it has caught up.
    func testAGrownRingShrinksOnceItsReadersCatchUp() {
        var limits = ChatLimits()
        limits.messageRate = 0
        let h = HubHarness(limits: limits)
        let a = h.login("A")
        let slow = h.login("Slow")
        _ = h.lines(a)
        let baseline = h.hub.ringMemory.usedBytes
        for i in 0..<3000 { h.send("backlog \(pad(i, 4)) " + String(repeating: "z", count: 200), from: a) }
        XCTAssertGreaterThanOrEqual(h.lobbyRing.capacity, 512 * 1024)
        h.hub.shrinkCaughtUpRings()
        XCTAssertGreaterThanOrEqual(h.lobbyRing.capacity, 512 * 1024, "a reader still needs the bytes")
        let lines = h.lines(slow, writeSize: 50_000)
        XCTAssertEqual(lines.count, 3000)
        XCTAssertEqual(slow.missedLines, 0)
        h.hub.shrinkCaughtUpRings()
        XCTAssertEqual(h.lobbyRing.capacity, 16 * 1024)
        XCTAssertEqual(h.hub.ringMemory.usedBytes, baseline)
        // The shrunk ring keeps working, and the newest lines it held are still there for a newcomer's cursor math.
        h.send("after", from: a)
        XCTAssertEqual(h.lines(slow), ["MSG #lobby A: after"])
    }

    /// Finding 9: 40 rooms each grown by one stalled member: after they catch up all memory is given back,
    /// and while they stall the total stays within rings-max-bytes (the readers are told what they missed).
    func testAllRingsTogetherStayWithinTheLimit() {
        var limits = ChatLimits()
        limits.messageRate = 0
        limits.maxRooms = 100
        limits.ringsMaxBytes = 4 << 20
        let h = HubHarness(limits: limits)
        var pairs: [(Session, Session)] = []
        for r in 0..<40 {
            let writer = h.login("w\(r)")
            let reader = h.login("r\(r)")
            h.send("/join room\(r)", from: writer)
            h.send("/join room\(r)", from: reader)
            _ = h.lines(writer)
            pairs.append((writer, reader))
        }
        let line = String(repeating: "m", count: 1000)
        for (writer, _) in pairs {
            for _ in 0..<1100 { h.send(line, from: writer) }  // about 1.1 MB each: past one ring's 1 MiB
        }
        let initialAll = 41 * 16 * 1024
        XCTAssertLessThanOrEqual(h.hub.ringMemory.usedBytes, limits.ringsMaxBytes + initialAll)
        var missed = 0
        var received = 0
        for (_, reader) in pairs {
            let lines = h.lines(reader, writeSize: 1 << 20)
            received += lines.filter { $0.hasPrefix("MSG ") || $0.hasPrefix("SYS #room") }.count
            missed += lines.compactMap { line in
                line.hasPrefix("SYS Missed: ") ? Int(line.dropFirst(12).prefix { $0 != " " }) : nil
            }.reduce(0, +)
        }
        // Each reader's room ring holds its own `Joined:` line, then the writer's 1,100 lines.
        XCTAssertEqual(received + missed, 40 * 1101, "every line delivered or counted as missed")
        XCTAssertGreaterThan(missed, 0, "the bound made some reader miss lines")
        h.hub.shrinkCaughtUpRings()
        XCTAssertEqual(h.hub.ringMemory.usedBytes, 41 * 16 * 1024)
    }

    func testRingResizeKeepsTheNewestWholeLines() {
        let ring = MessageRing(initialCapacity: 64, maxCapacity: 1024)
        ring.resize(to: 1024)
        for i in 0..<40 {
            Array("line \(pad(i, 2))".utf8).withUnsafeBytes { ring.appendLine(UnsafeRawBufferPointer(start: nil, count: 0), $0) }
        }
        XCTAssertEqual(ring.headSeq, 40)
        ring.resize(to: 64)
        XCTAssertLessThanOrEqual(ring.usedBytes, 64)
        var held: [UInt8] = []
        ring.forEachSpan(from: ring.tail, to: ring.head) { held += $0 }
        XCTAssertEqual(String(decoding: held, as: UTF8.self), "line 32\nline 33\nline 34\nline 35\nline 36\nline 37\nline 38\nline 39\n")
        XCTAssertEqual(ring.tailSeq, 32)
        XCTAssertEqual(ring.capacity, 64)
    }
}

final class PresenceTests: XCTestCase {
    private func harness(delay: UInt64 = 1_000_000_000) -> HubHarness {
        var limits = ChatLimits()
        limits.presenceDelay = delay
        limits.messageRate = 0
        return HubHarness(limits: limits)
    }

    /// Finding 6: a connection that names itself and goes at once costs the room nothing.
    func testComingAndGoingWithinTheDelayIsNeverAnnounced() {
        let h = harness()
        let member = h.login("member")
        let flash = h.connect()
        _ = h.lines(flash)
        h.send("flash", from: flash)
        // The newcomer itself sees its welcome and its own Online: line at once, as without the delay.
        XCTAssertEqual(Array(h.lines(flash).dropFirst()), ["SYS #lobby Online: flash"])
        h.send("/quit", from: flash)
        h.now += 2_000_000_000
        h.hub.announceDuePresence(now: h.now)
        XCTAssertEqual(h.lines(member), [])
        // Abrupt departures too.
        let flash2 = h.login("flash2")
        h.hub.remove(flash2, reason: "connection reset by peer")
        h.now += 2_000_000_000
        h.hub.announceDuePresence(now: h.now)
        XCTAssertEqual(h.lines(member), [])
    }

    func testPresenceIsAnnouncedAfterTheDelayAndTheNewcomerDoesNotSeeItTwice() {
        let h = harness()
        let member = h.login("member")
        let late = h.login("late")
        h.now += 500_000_000
        h.hub.announceDuePresence(now: h.now)
        XCTAssertEqual(h.lines(member), [])
        h.now += 600_000_000
        h.hub.announceDuePresence(now: h.now)
        XCTAssertEqual(h.lines(member), ["SYS #lobby Online: late"])
        // late hears member's own (also delayed) arrival, never its own a second time.
        XCTAssertEqual(h.lines(late), ["SYS #lobby Online: member"])
        h.send("/quit", from: late)
        XCTAssertEqual(h.lines(member), ["SYS #lobby Offline: late (quit)"])
    }

    func testFirstMessageOrActionPublishesTheArrivalFirst() {
        let h = harness()
        let member = h.login("member")
        let talker = h.login("talker")
        h.send("hello", from: talker)
        h.send("/me waves", from: talker)
        XCTAssertEqual(h.lines(member), ["SYS #lobby Online: talker", "MSG #lobby talker: hello", "ACT #lobby talker waves"])
        XCTAssertEqual(h.lines(talker), [])
        h.now += 2_000_000_000
        h.hub.announceDuePresence(now: h.now)
        XCTAssertEqual(h.lines(member), [], "announced once")
    }

    func testRenameAndJoinBeforeTheDelay() {
        let h = harness()
        let member = h.login("member")
        let newcomer = h.login("newcomer")
        h.send("/nick renamed", from: newcomer)
        h.send("/join dev", from: newcomer)
        // Nothing in the lobby: it never heard of newcomer. #dev hears the join.
        XCTAssertEqual(h.lines(member), [])
        h.send("/join dev", from: member)
        XCTAssertTrue(h.lines(newcomer).contains("SYS #dev Joined: member"))
        h.now += 2_000_000_000
        h.hub.announceDuePresence(now: h.now)
        XCTAssertEqual(h.lines(member).filter { $0.hasPrefix("SYS #lobby") && ($0.contains("renamed") || $0.contains("newcomer")) }, [])
    }

    func testWithoutADelayTheArrivalIsInTheRingAtOnce() {
        let h = harness(delay: 0)
        let member = h.login("member")
        _ = h.login("prompt")
        XCTAssertEqual(h.lines(member), ["SYS #lobby Online: prompt"])
    }
}

final class ListingCacheTests: XCTestCase {
    /// Finding 8: /rooms and /who are rendered once per change; the cached replies must follow every change.
    func testCachedListingsFollowEveryChange() {
        var limits = ChatLimits()
        limits.messageRate = 0
        let h = HubHarness(limits: limits)
        let a = h.login("a")
        let b = h.login("b")
        _ = h.lines(a)
        h.send("/rooms", from: a)
        XCTAssertEqual(h.lines(a), ["SYS Rooms (1): #lobby(2)"])
        h.send("/rooms", from: a)
        XCTAssertEqual(h.lines(a), ["SYS Rooms (1): #lobby(2)"])
        h.send("/join 한국", from: b)
        h.send("/join 日本", from: b)
        h.send("/join ab", from: b)
        _ = h.lines(b)  // b has read what #한국 and #日本 had for it: nobody reads them now, so they are retired
        _ = h.lines(a)
        h.send("/rooms", from: a)
        XCTAssertEqual(h.lines(a).filter { $0.hasPrefix("SYS Rooms") }, ["SYS Rooms (2): #ab(1) #lobby(1)"])
        h.send("/who", from: a)
        XCTAssertEqual(h.lines(a), ["SYS Who #lobby (1): a"])
        let c = h.login("c")
        _ = h.lines(a)
        h.send("/who", from: a)
        XCTAssertEqual(h.lines(a), ["SYS Who #lobby (2): a c"])
        h.send("/nick z", from: c)
        _ = h.lines(a)
        h.send("/who", from: a)
        XCTAssertEqual(h.lines(a), ["SYS Who #lobby (2): a z"])
        h.send("/join 日本", from: c)
        h.send("/rooms", from: a)
        XCTAssertEqual(h.lines(a).filter { $0.hasPrefix("SYS Rooms") }, ["SYS Rooms (3): #ab(1) #lobby(1) #日本(1)"])
        h.send("/quit", from: b)
        _ = h.lines(b)
        h.send("/rooms", from: a)
        XCTAssertEqual(h.lines(a).filter { $0.hasPrefix("SYS Rooms") }, ["SYS Rooms (2): #lobby(1) #日本(1)"])
    }

    /// The sorted room list matches a fresh sort after random creations and retirements.
    func testRoomsStaySortedAsTheyComeAndGo() {
        var limits = ChatLimits()
        limits.messageRate = 0
        limits.maxListedNames = 1000
        let h = HubHarness(limits: limits)
        var random = SeededRandom(seed: 9)
        let names = ["가", "나", "다", "ab", "Ab", "zz", "日本", "中文", "Ωmega", "alpha", "beta", "Ärger", "été"]
        let users = (0..<8).map { h.login("u\($0)") }
        for _ in 0..<300 {
            let user = users[Int(random.next() % UInt64(users.count))]
            let room = names[Int(random.next() % UInt64(names.count))]
            h.send("/join \(room)", from: user)
            _ = h.lines(user)
        }
        h.send("/rooms", from: users[0])
        let reply = h.lines(users[0]).last ?? ""
        let listed = reply.split(separator: " ").dropFirst(3).map { String($0.dropFirst().prefix { $0 != "(" }) }
        XCTAssertEqual(listed, listed.sorted())
        XCTAssertEqual(listed.count, h.hub.roomCount)
    }
}

final class CompactDescriptionTests: XCTestCase {
    func testNumbersThatDoNotFitAnIntDoNotTrap() {
        XCTAssertEqual(20.0.compactDescription, "20")
        XCTAssertEqual(0.5.compactDescription, "0.5")
        XCTAssertEqual(1e300.compactDescription, "1e+300")
        XCTAssertEqual(Double.infinity.compactDescription, "inf")
        XCTAssertEqual(Double.nan.compactDescription, "nan")
        XCTAssertEqual((-9.3e18).compactDescription, "-9.3e+18")
    }
}
