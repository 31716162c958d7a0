// libFuzzer entry point for ChatCore's parsers. Built by scripts/fuzz.sh together with ChatCore's sources
// (one module, so internals are reachable). Each input is split into a control byte and data:
// the control byte picks the chunking for the framer; the data drives framing, text checks, name
// validation, command parsing and a whole ChatHub session, whose invariants are checked; then the same bytes
// go through the configuration grammar and the strict setting-number syntax (ChatCore's SettingText).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChatCore(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let control = Int(data[0])
    let input = UnsafeRawBufferPointer(start: data + 1, count: size - 1)

    // 1. Framing in two chunkings must give the same lines.
    func frame(chunk: Int) -> [[UInt8]] {
        var framer = LineFramer(maxLineBytes: 64)
        var lines: [[UInt8]] = []
        var offset = 0
        while offset < input.count {
            let n = min(chunk, input.count - offset)
            framer.feed(UnsafeRawBufferPointer(rebasing: input[offset..<offset + n])) { framed in
                switch framed {
                case .line(let line):
                    precondition(line.count <= 64, "framer emitted a line over its limit")
                    precondition(!line.contains(10), "framer emitted a newline inside a line")
                    lines.append(Array(line))
                case .overlong:
                    lines.append([0xFF, 0xFF])  // marker: bytes that are never a valid line
                }
            }
            offset += n
        }
        return lines
    }
    let whole = frame(chunk: max(1, input.count))
    let chunked = frame(chunk: 1 + control % 17)
    precondition(whole == chunked, "framing depends on chunking")

    // 2. Each line through the pure checks, and through a hub with two sessions.
    var limits = ChatLimits()
    limits.maxLineBytes = 64
    limits.messageRate = 0
    let hub = ChatHub(limits: limits, formats: [NativeFormat()])
    let front = NativeFront(hub: hub, format: 0)
    let alice = Session(id: 1, peer: "fuzz", now: 0, limits: limits, front: front)
    let bob = Session(id: 2, peer: "fuzz", now: 0, limits: limits, front: front)
    front.open(alice)
    front.open(bob)
    "alice".utf8CString.withUnsafeBytes { front.receive(UnsafeRawBufferPointer(rebasing: $0.dropLast()), from: alice, now: 0) }
    var aliceBytes: [UInt8] = []
    var bobBytes: [UInt8] = []
    for (index, line) in whole.enumerated() {
        line.withUnsafeBytes { bytes in
            let problem = TextCheck.problem(in: bytes)
            if problem == nil {
                // Valid per TextCheck must be valid per Swift, and contain no controls but tab.
                let text = String(decoding: bytes, as: UTF8.self)
                precondition(Array(text.utf8) == Array(bytes), "TextCheck accepted invalid UTF-8")
                precondition(!text.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\t") || (0x7F...0x9F).contains($0.value) },
                             "TextCheck accepted a control character")
                _ = Names.validate(text)
                _ = NativeCommands.parse(bytes)
            }
            front.receive(bytes, from: index % 2 == 0 ? bob : alice, now: UInt64(index))
        }
        if control & 0x80 != 0 { drain(hub, alice, max: 1 + control % 5, into: &aliceBytes) }
    }
    drain(hub, alice, max: 1 << 20, into: &aliceBytes)
    drain(hub, bob, max: 1 << 20, into: &bobBytes)

    // 3. The same bytes as a configuration file, and each value (and the whole input) as a number.
    fuzzSettings(Array(input))
    return 0
}

/// The configuration grammar and the strict number syntax (SettingText): never trap, and what they accept
/// is what they claim to accept.
private func fuzzSettings(_ bytes: [UInt8]) {
    var values = [String(decoding: bytes, as: UTF8.self)]
    if let entries = try? ConfigText.parse(bytes: bytes) {
        var lastLine = 0
        for entry in entries {
            precondition(entry.line > lastLine, "entries out of order")
            lastLine = entry.line
            precondition(!entry.key.isEmpty && !entry.key.contains("#") && !entry.key.contains("="), "bad key \(entry.key)")
            precondition(!entry.value.contains("#") && !entry.value.contains("\n"), "bad value \(entry.value)")
            precondition(!(entry.key + entry.value).unicodeScalars.contains { $0.value < 0x20 && $0 != "\t" }, "control in entry")
            values.append(entry.value)
        }
    }
    let ranges = [SettingRange(1...1_048_576), SettingRange(0.01...86_400), SettingRange(0.001...1_000_000, zeroMeans: "off")]
    for value in values {
        let plain = String(value.filter { $0 != "_" })
        if case .value(let n) = SettingNumber.integer(value) {
            precondition(n >= 0 && Int(plain) == n, "integer \(value) parsed as \(n)")
            precondition(!plain.isEmpty && plain.allSatisfy { $0.isASCII && $0.isNumber }, "integer syntax let \(value) through")
        }
        if case .value(let d) = SettingNumber.decimal(value) {
            precondition(d.isFinite && d >= 0 && d.sign == .plus && Double(plain) == d, "decimal \(value) parsed as \(d)")
            precondition(plain.allSatisfy { $0.isASCII && ($0.isNumber || $0 == ".") }, "decimal syntax let \(value) through")
            for range in ranges where range.contains(d) {
                let ns = Nanoseconds.saturating(seconds: d)
                precondition(ns <= Nanoseconds.maximum, "conversion above its maximum")
                precondition(d <= range.upperBound && (d >= range.lowerBound || (d == 0 && range.zeroMeans != nil)), "range check")
            }
        }
    }
}

/// Flushes a session with writes of at most `max` bytes; every line it gets must be whole and tagged.
private func drain(_ hub: ChatHub, _ session: Session, max: Int, into received: inout [UInt8]) {
    guard !session.isFinished else { return }
    hub.prepareFlush(session)
    var bytes: [UInt8] = []
    hub.forEachPendingSpan(of: session) { span in
        bytes.append(contentsOf: span.prefix(max - bytes.count))
        return bytes.count < max
    }
    hub.didWrite(bytes.count, to: session)
    received.append(contentsOf: bytes)
    while let newline = received.firstIndex(of: 10) {
        let line = String(decoding: received[..<newline], as: UTF8.self)
        received.removeSubrange(...newline)
        let tag = line.prefix { $0 != " " }
        precondition(["SYS", "MSG", "ACT", "PRIV", "ERR"].contains(tag), "untagged server line: \(line)")
    }
}
