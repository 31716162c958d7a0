// Options: what a run does (scenario, sizes, rates, protocol), parsed from the command line.

import ArgumentParser
import ChatFronts
import ChatSys

enum Scenario: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// K senders publish to everybody; measures deliveries/s, latency, loss.
    case fanout
    /// N clients connect as fast as allowed and join; measures connects/s and (native) waits for every
    /// `Online:` announcement; reports peak server RSS.
    case connect
    /// N clients connect, name themselves and stay idle; reports server RSS per connection.
    case idle
    /// Fan-out where M clients stop reading: the others must lose nothing, the slow ones get what the
    /// protocol promises (every line, or a `SYS Missed: N` notice accounting for the gap, or a reasoned close).
    case slow
}

enum ProtocolName: String, ExpressibleByArgument, CaseIterable, Sendable {
    case native, irc, nio, redis
}

/// How to speak to a line-based server: what a connection sends first, when it counts as ready, how a message
/// is framed. `{name}`, `{room}` and `{payload}` are substituted; `\r` and `\n` escapes are understood.
struct ProtocolSpec: Sendable {
    var name: String
    /// Sent by every receiving client once connected.
    var greeting: String
    /// A line starting with this marks the client ready (empty: ready as soon as connected).
    var readyPrefix: String
    /// One message on the wire; `{payload}` holds the token and padding.
    var messageFormat: String
    /// Messages are sent by extra connections that do not receive (redis pub/sub), not by receivers.
    var separatePublishers: Bool
    /// Whether a sender receives its own messages (redis subscribers do; chatd and NIOChatServer do not).
    var senderGetsOwn: Bool
    /// chatd only: room announcements counted to check that every `Online:` was delivered.
    var onlinePrefix: String?
    /// Like `onlinePrefix`, for announcements whose start varies (IRC's `:nick!user@host JOIN #room`): a line
    /// whose first `ReceiveScanner.headBytes` bytes contain this counts as one.
    var onlineMarker: String? = nil
    /// chatd only: the slow-consumer notice whose number accounts for lines not delivered.
    var missedPrefix: String?

    static func preset(_ name: ProtocolName, room: String) -> ProtocolSpec {
        switch name {
        case .native:
            // The native words come from the front's vocabulary, so rewording the protocol cannot break this silently.
            return ProtocolSpec(name: "native", greeting: "{name}\n", readyPrefix: NativeVocabulary.welcomePrefix,
                                messageFormat: "{payload}\n", separatePublishers: false, senderGetsOwn: false,
                                onlinePrefix: NativeVocabulary.onlinePrefix(room: "lobby"), missedPrefix: NativeVocabulary.missedPrefix)
        case .irc:
            // An IRC server (chatd's --irc-listen, or any other): register, join, ready at the end of NAMES
            // (366). The JOIN goes in the same write as the registration, which chatd processes in order (some
            // servers refuse it before 001: override --greeting for them). Senders do not get their own lines
            // (no echo-message requested).
            // In the connect scenario every JOIN line is counted (`onlineMarker`), as native `Online:` lines are.
            return ProtocolSpec(name: "irc", greeting: "NICK {name}\r\nUSER {name} 0 * :{name}\r\nJOIN #{room}\r\n",
                                readyPrefix: ":chatd 366 ", messageFormat: "PRIVMSG #{room} :{payload}\r\n",
                                separatePublishers: false, senderGetsOwn: false, onlinePrefix: nil, onlineMarker: " JOIN ",
                                missedPrefix: nil)
        case .nio:
            // NIOChatServer: no handshake; it greets with "(ChatServer) - Welcome to: ..." and relays each line
            // to every other client as "(ADDRESS) - LINE".
            return ProtocolSpec(name: "nio", greeting: "", readyPrefix: "(ChatServer) - Welcome", messageFormat: "{payload}\n",
                                separatePublishers: false, senderGetsOwn: false, onlinePrefix: nil, missedPrefix: nil)
        case .redis:
            // Pub/sub: subscribers send SUBSCRIBE and are ready at the "subscribe" confirmation (RESP array
            // element line); publishers are separate connections (a subscribed connection may not PUBLISH).
            return ProtocolSpec(name: "redis", greeting: "SUBSCRIBE {room}\r\n", readyPrefix: "subscribe",
                                messageFormat: "PUBLISH {room} {payload}\r\n",
                                separatePublishers: true, senderGetsOwn: true, onlinePrefix: nil, missedPrefix: nil)
        }
    }

    static func unescape(_ text: String) -> String {
        text.replacingAll("\\r", with: "\r").replacingAll("\\n", with: "\n").replacingAll("\\t", with: "\t")
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}

struct LoadOptions: ParsableArguments {
    @Option(help: "Scenario: fanout, connect, idle or slow.") var scenario: Scenario = .fanout
    @Option(help: "Server host (loopback only: 127.0.0.0/8 or localhost).") var host = "127.0.0.1"
    @Option(name: .shortAndLong, help: "Server port.") var port: UInt16 = 12345
    @Option(name: [.customShort("n"), .long], help: "Receiving clients to connect.") var clients = 1000
    @Option(name: [.customShort("k"), .long], help: "Clients that send (fanout, slow).") var senders = 10
    @Option(name: [.customShort("r"), .long], help: "Messages per second per sender; 0 = as fast as possible (bounded by --in-flight).") var rate: Double = 100
    @Option(help: "With --rate 0: most messages per sender sent but not yet seen by a watching receiver.") var inFlight = 32
    @Option(name: [.customShort("b"), .long], help: "Message text bytes (token plus padding; at least the token).") var payload = 64
    @Option(name: [.customShort("d"), .long], help: "Measured seconds of sending, after the warm-up.") var duration: Double = 5
    @Option(help: "Seconds of sending before measuring.") var warmup: Double = 1
    @Option(help: "Most seconds to wait after sending for every message to arrive.") var drainTimeout: Double = 10
    @Option(help: "Most seconds for all clients to connect and become ready.") var connectTimeout: Double = 60
    @Option(help: "New connections per second across all threads (0 = as fast as the kernel allows).") var connectRate: Double = 5000
    @Option(help: "Connects in progress at once per thread.") var connectWindow = 256
    @Option(help: "Spread clients over 127.0.0.1 ... 127.0.0.N as source addresses (each gives ~28k ports).") var sourceAddresses = 4
    @Option(help: "Event-loop threads (one epoll instance each).") var threads = 1
    @Option(help: "Clients that stop reading in the slow scenario (the last M receivers).") var slowClients = 10
    @Option(help: "Receive buffer of slow clients in bytes (small, so they fall behind fast).") var slowReceiveBuffer: Int32 = 4096
    @Option(help: "Seconds idle clients are held before the server's memory is measured (idle scenario).") var hold: Double = 2
    @Option(help: "Protocol preset: native (chatd), irc (chatd --irc-listen, or any IRC server), nio (NIOChatServer example), redis (pub/sub).") var `protocol`: ProtocolName = .native
    @Option(help: "Override: what a receiving client sends once connected ({name}, {room}; \\r \\n escapes).") var greeting: String?
    @Option(help: "Override: a line starting with this makes a client ready (empty: ready when connected).") var readyPrefix: String?
    @Option(help: "Override: a message on the wire ({payload}, {room}, {name}; \\r \\n escapes).") var messageFormat: String?
    @Option(help: "Override: send from extra publisher connections that do not receive (yes/no).") var separatePublishers: Bool?
    @Option(help: "Override: whether a sender receives its own messages (yes/no).") var senderGetsOwn: Bool?
    @Option(help: "Override: connect scenario: a line whose first 64 bytes contain this is a join announcement to count (irc: \" JOIN \"; empty: none).") var onlineMarker: String?
    @Option(help: "Room (redis channel) used by templates.") var room = "lobby"
    @Option(help: "Client names are this prefix plus a number.") var namePrefix = "lg"
    @Option(help: "PID of the server, for its CPU time and memory (/proc).") var serverPid: Int32?
    @Flag(help: "Print the results as JSON on stdout instead of a table.") var json = false
    @Flag(help: "No progress line on stderr.") var quiet = false
    @Option(help: "Label printed with the results (e.g. the server's name).") var label = ""

    var spec: ProtocolSpec {
        var spec = ProtocolSpec.preset(`protocol`, room: room)
        if let greeting { spec.greeting = ProtocolSpec.unescape(greeting) }
        if let readyPrefix { spec.readyPrefix = ProtocolSpec.unescape(readyPrefix) }
        if let messageFormat { spec.messageFormat = ProtocolSpec.unescape(messageFormat) }
        if let separatePublishers { spec.separatePublishers = separatePublishers }
        if let senderGetsOwn { spec.senderGetsOwn = senderGetsOwn }
        if let onlineMarker { spec.onlineMarker = onlineMarker.isEmpty ? nil : ProtocolSpec.unescape(onlineMarker) }
        if scenario != .connect { spec.onlineMarker = nil }  // only the connect scenario counts them: no scan per line elsewhere
        spec.greeting = spec.greeting.replacingAll("{room}", with: room)
        spec.messageFormat = spec.messageFormat.replacingAll("{room}", with: room)
        return spec
    }

    var sendsMessages: Bool { scenario == .fanout || scenario == .slow }

    mutating func validate() throws {
        guard let address = SocketAddress(parsing: "\(host):\(port)"), address.family == 2 /* AF_INET */,
              address.host.hasPrefix("127.") else {
            throw ValidationError("--host must be a loopback IPv4 address (127.0.0.0/8): load traffic stays on this machine")
        }
        guard clients >= 1 else { throw ValidationError("--clients must be at least 1") }
        guard threads >= 1 && threads <= 64 else { throw ValidationError("--threads must be 1...64") }
        guard sourceAddresses >= 1 && sourceAddresses <= 250 else { throw ValidationError("--source-addresses must be 1...250") }
        guard duration > 0 && duration <= 3600, warmup >= 0 && warmup <= 600 else {
            throw ValidationError("--duration must be in (0, 3600] and --warmup in [0, 600] seconds")
        }
        guard drainTimeout > 0 && drainTimeout <= 600, connectTimeout > 0 && connectTimeout <= 600, hold >= 0 && hold <= 600 else {
            throw ValidationError("--drain-timeout and --connect-timeout must be in (0, 600], --hold in [0, 600] seconds")
        }
        guard rate >= 0, inFlight >= 1, connectRate >= 0, connectWindow >= 1 else {
            throw ValidationError("--rate and --connect-rate must be >= 0, --in-flight and --connect-window >= 1")
        }
        guard payload >= 40 && payload <= 60_000 else { throw ValidationError("--payload must be 40...60000 bytes (the token needs up to 40)") }
        if sendsMessages {
            let spec = self.spec
            guard senders >= 1 else { throw ValidationError("--senders must be at least 1") }
            if !spec.separatePublishers && senders > clients {
                throw ValidationError("--senders must not exceed --clients (senders are clients)")
            }
            if scenario == .slow && !spec.separatePublishers && senders + slowClients > clients {
                throw ValidationError("--senders + --slow-clients must not exceed --clients")
            }
            guard spec.messageFormat.contains("{payload}") else { throw ValidationError("--message-format needs {payload}") }
        }
        if scenario != .slow { slowClients = 0 }
    }
}
