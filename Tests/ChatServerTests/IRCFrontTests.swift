// The IRC front over loopback: an IRC client and a native client in one room see each other.

@testable import ChatServer
import ChatCore
@testable import ChatFronts
import ChatSys
import ChatTestSupport
import Foundation
import XCTest

extension LineClient {
    /// The next line starting with `prefix`, without the `\r` of IRC's CR LF.
    func expectIRC(prefix: String, timeout: Double = 5) throws -> String {
        let line = try expect(prefix: prefix, timeout: timeout)
        return line.hasSuffix("\r") ? String(line.dropLast()) : line
    }

    func expectIRC(_ what: String, _ match: @escaping (String) -> Bool) throws -> String {
        let line = try expect(what, match)
        return line.hasSuffix("\r") ? String(line.dropLast()) : line
    }
}

/// A test server with an IRC listener too; returns it and the IRC port. Presence is immediate.
func ircServer(_ configure: @escaping (inout ServerConfig) -> Void = { _ in }) throws -> (TestServer, UInt16) {
    let server = try TestServer { config in
        config.ircListen = [SocketAddress(parsing: "127.0.0.1:0")!]
        config.presenceDelaySeconds = 0
        configure(&config)
    }
    return (server, server.server.ircBoundAddresses[0].port)
}

/// Registers `nick` over IRC and waits for the end of the welcome burst (422: no MOTD).
func registerIRC(_ nick: String, port: UInt16, caps: [String] = [], receiveBuffer: Int32? = nil,
                 file: StaticString = #filePath, line: UInt = #line) throws -> LineClient {
    let client = try LineClient(port: port, receiveBuffer: receiveBuffer)
    if !caps.isEmpty {
        client.send("CAP LS 302\r\n")
        _ = try client.expectIRC(prefix: ":chatd CAP * LS")
        client.send("CAP REQ :\(caps.joined(separator: " "))\r\n")
        XCTAssertEqual(try client.expectIRC(prefix: ":chatd CAP "), ":chatd CAP * ACK :\(caps.joined(separator: " "))", file: file, line: line)
    }
    client.send("NICK \(nick)\r\nUSER \(nick) 0 * :Real \(nick)\r\n")
    if !caps.isEmpty { client.send("CAP END\r\n") }
    XCTAssertEqual(try client.expectIRC(prefix: ":chatd 001 "), ":chatd 001 \(nick) :Welcome to the chatd IRC network, \(nick)",
                   file: file, line: line)
    let isupport = try client.expectIRC(prefix: ":chatd 005 ")
    XCTAssertTrue(isupport.contains("CHANTYPES=#") && isupport.contains("NETWORK=chatd"), isupport, file: file, line: line)
    _ = try client.expectIRC(prefix: ":chatd 422 ")
    return client
}

final class IRCFrontTests: XCTestCase {
    func testAnIRCUserAndANativeUserTalkInTheLobby() throws {
        let (server, ircPort) = try ircServer()
        defer { server.stop() }
        let alice = try LineClient.named("alice", port: server.port)
        let bob = try registerIRC("bob", port: ircPort)

        bob.send("JOIN #lobby\r\n")
        XCTAssertEqual(try bob.expectIRC(prefix: ":bob!"), ":bob!~bob@127.0.0.1 JOIN #lobby")
        let names = try bob.expectIRC(prefix: ":chatd 353 ")
        XCTAssertTrue(names.hasSuffix(":alice bob") || names.hasSuffix(":bob alice"), names)
        XCTAssertEqual(try bob.expectIRC(prefix: ":chatd 366 "), ":chatd 366 bob #lobby :End of /NAMES list")
        XCTAssertEqual(try alice.expect(prefix: "SYS #lobby Joined"), "SYS #lobby Joined: bob")

        alice.send("hello bob\n")
        XCTAssertEqual(try bob.expectIRC(prefix: ":alice!"), ":alice!alice@native PRIVMSG #lobby :hello bob")
        bob.send("PRIVMSG #lobby :hi \u{2}alice\u{2}\r\n")
        XCTAssertEqual(try alice.expect(prefix: "MSG "), "MSG #lobby bob: hi alice", "formatting stripped for native readers")
        bob.send("PRIVMSG #lobby :\u{1}ACTION waves\u{1}\r\n")
        XCTAssertEqual(try alice.expect(prefix: "ACT "), "ACT #lobby bob waves")
        alice.send("/me smiles\n")
        XCTAssertEqual(try bob.expectIRC(prefix: ":alice!"), ":alice!alice@native PRIVMSG #lobby :\u{1}ACTION smiles\u{1}")

        bob.send("PRIVMSG alice :psst\r\n")
        XCTAssertEqual(try alice.expect(prefix: "PRIV "), "PRIV bob: psst")
        alice.send("/msg bob back\n")
        XCTAssertEqual(try bob.expectIRC(prefix: ":alice!"), ":alice!alice@native PRIVMSG bob :back")

        bob.send("TOPIC #lobby :plans\r\n")
        XCTAssertEqual(try bob.expectIRC(prefix: ":bob!"), ":bob!~bob@127.0.0.1 TOPIC #lobby :plans")
        XCTAssertEqual(try alice.expect(prefix: "SYS #lobby Topic"), "SYS #lobby Topic: \"plans\" (set by bob)")

        alice.send("/nick alicia\n")
        XCTAssertEqual(try bob.expectIRC(prefix: ":alice!"), ":alice!alice@native NICK :alicia")

        bob.send("PING :x1\r\n")
        XCTAssertEqual(try bob.expectIRC(prefix: ":chatd PONG"), ":chatd PONG chatd :x1")

        let mallory = try registerIRC("mallory", port: ircPort)
        mallory.send("JOIN #lobby\r\n")
        _ = try mallory.expectIRC(prefix: ":chatd 366")
        XCTAssertEqual(try bob.expectIRC(prefix: ":mallory!"), ":mallory!~mallory@127.0.0.1 JOIN #lobby")
        mallory.send("QUIT :\u{1B}[2Jgone\r\n")
        XCTAssertEqual(try bob.expectIRC(prefix: ":mallory!"), ":mallory!~mallory@127.0.0.1 QUIT :Quit", "a quit message with ESC is dropped")
        XCTAssertEqual(try alice.expect(prefix: "SYS #lobby Offline: mallory"), "SYS #lobby Offline: mallory (quit)")

        bob.send("QUIT :later\r\n")
        XCTAssertEqual(try alice.expect(prefix: "SYS #lobby Offline"), "SYS #lobby Offline: bob (quit: \"later\")")
        let parting = try bob.expectClose()
        XCTAssertEqual(parting.last, "ERROR :Closing link: 127.0.0.1 (Quit: later)\r")
        XCTAssertFalse(parting.contains { $0.contains(" QUIT ") }, "an IRC client gets ERROR, not its own QUIT")
    }

    func testRegistrationErrorsAndServerTime() throws {
        let (server, ircPort) = try ircServer()
        defer { server.stop() }
        let early = try LineClient(port: ircPort)
        early.send("JOIN #x\r\n")
        XCTAssertEqual(try early.expectIRC(prefix: ":chatd 451"), ":chatd 451 * :You have not registered")
        early.send("CAP REQ :no-such-cap\r\n")
        XCTAssertEqual(try early.expectIRC(prefix: ":chatd CAP"), ":chatd CAP * NAK :no-such-cap")
        early.send("CAP END\r\nNICK 9lives\r\n")
        XCTAssertTrue(try early.expectIRC(prefix: ":chatd 432").hasPrefix(":chatd 432 * 9lives :Erroneous nickname"))

        let carol = try registerIRC("carol", port: ircPort, caps: ["server-time", "echo-message"])
        let dave = try LineClient(port: ircPort)
        dave.send("NICK CAROL\r\nUSER d 0 * :d\r\n")
        XCTAssertEqual(try dave.expectIRC(prefix: ":chatd 433"), ":chatd 433 CAROL CAROL :Nickname is already in use")

        carol.send("JOIN #t\r\n")
        let join = try carol.expectIRC(prefix: "@time=")
        XCTAssertTrue(join.hasSuffix(" :carol!~carol@127.0.0.1 JOIN #t"), join)
        carol.send("PRIVMSG #t :echoed\r\n")
        let echo = try carol.expectIRC("the echo") { $0.contains("PRIVMSG #t") }
        XCTAssertTrue(echo.hasPrefix("@time=2") && echo.hasSuffix(":carol!~carol@127.0.0.1 PRIVMSG #t :echoed"), echo)

        carol.send("PRIVMSG #t :" + String(repeating: "x", count: 600) + "\r\n")
        XCTAssertEqual(try carol.expectIRC(prefix: ":chatd 417"), ":chatd 417 carol :Input line was too long")
    }

    func testALongNativeMessageReachesIRCAsSeveralLinesOfOneMessage() throws {
        let (server, ircPort) = try ircServer()
        defer { server.stop() }
        let erin = try registerIRC("erin", port: ircPort)
        erin.send("JOIN #lobby\r\n")
        _ = try erin.expectIRC(prefix: ":chatd 366")
        let frank = try LineClient.named("frank", port: server.port)
        _ = try erin.expectIRC(prefix: ":frank!")  // frank's JOIN
        let words = (0..<700).map { "w\($0)" }.joined(separator: " ")  // ~3.4 KB
        frank.send(words + "\n")
        var pieces: [String] = []
        while pieces.joined().count < words.count {
            let line = try erin.expectIRC(prefix: ":frank!")
            XCTAssertLessThanOrEqual(line.utf8.count + 2, 512, "each IRC line within 512 bytes")
            pieces.append(String(line.split(separator: ":", maxSplits: 2)[1]))
        }
        XCTAssertGreaterThan(pieces.count, 6)
        XCTAssertEqual(pieces.joined(), words, "split after spaces, nothing lost or added")
        XCTAssertTrue(pieces.dropLast().allSatisfy { $0.hasSuffix(" ") }, "each cut is at a space")
    }

    func testWhoisListAwayAndTheNamesCaps() throws {
        let (server, ircPort) = try ircServer()
        defer { server.stop() }
        let gina = try registerIRC("gina", port: ircPort, caps: ["multi-prefix", "userhost-in-names", "away-notify"])
        gina.send("JOIN #ops\r\n")
        XCTAssertEqual(try gina.expectIRC(prefix: ":chatd 353"), ":chatd 353 gina = #ops :@gina!~gina@127.0.0.1", "first member is op; userhost-in-names")
        let hank = try registerIRC("hank", port: ircPort)
        hank.send("JOIN #ops\r\n")
        XCTAssertEqual(try hank.expectIRC(prefix: ":chatd 353"), ":chatd 353 hank = #ops :@gina hank")
        _ = try gina.expectIRC(prefix: ":hank!")

        hank.send("AWAY :lunch\r\n")
        XCTAssertEqual(try hank.expectIRC(prefix: ":chatd 306"), ":chatd 306 hank :You have been marked as being away")
        XCTAssertEqual(try gina.expectIRC(prefix: ":hank!"), ":hank!~hank@127.0.0.1 AWAY :lunch", "away-notify")
        gina.send("PRIVMSG hank :there?\r\n")
        XCTAssertEqual(try gina.expectIRC(prefix: ":chatd 301"), ":chatd 301 gina hank :lunch")

        gina.send("WHOIS hank\r\n")
        XCTAssertEqual(try gina.expectIRC(prefix: ":chatd 311"), ":chatd 311 gina hank ~hank 127.0.0.1 * :Real hank")
        XCTAssertEqual(try gina.expectIRC(prefix: ":chatd 319"), ":chatd 319 gina hank :#ops")
        XCTAssertEqual(try gina.expectIRC(prefix: ":chatd 301"), ":chatd 301 gina hank :lunch")
        XCTAssertEqual(try gina.expectIRC(prefix: ":chatd 318"), ":chatd 318 gina hank :End of /WHOIS list")
        gina.send("WHOIS nobody\r\n")
        XCTAssertEqual(try gina.expectIRC(prefix: ":chatd 401"), ":chatd 401 gina nobody :No such nick/channel")

        gina.send("LIST\r\n")
        XCTAssertEqual(try gina.expectIRC(prefix: ":chatd 321"), ":chatd 321 gina Channel :Users  Name")
        var listed: [String] = []
        while true {
            let line = try gina.expectIRC(prefix: ":chatd 32")
            if line.hasPrefix(":chatd 323") { break }
            listed.append(line)
        }
        XCTAssertEqual(listed, [":chatd 322 gina #ops 2 :"], "the empty lobby is not listed")
    }

    func testOperatorsSetModesKickAndInvite() throws {
        let (server, ircPort) = try ircServer()
        defer { server.stop() }
        let ivy = try registerIRC("ivy", port: ircPort)
        ivy.send("JOIN #club\r\n")
        _ = try ivy.expectIRC(prefix: ":chatd 366")
        let jack = try registerIRC("jack", port: ircPort)
        jack.send("JOIN #club\r\n")
        _ = try jack.expectIRC(prefix: ":chatd 366")
        jack.send("TOPIC #club :mine\r\n")
        XCTAssertEqual(try jack.expectIRC(prefix: ":chatd 482"), ":chatd 482 jack #club :You're not channel operator", "+t")
        jack.send("MODE #club +m\r\n")
        XCTAssertEqual(try jack.expectIRC(prefix: ":chatd 482"), ":chatd 482 jack #club :You're not channel operator")

        ivy.send("MODE #club +mk secret\r\n")
        XCTAssertEqual(try jack.expectIRC(prefix: ":ivy!"), ":ivy!~ivy@127.0.0.1 MODE #club +mk secret")
        jack.send("PRIVMSG #club :hello?\r\n")
        XCTAssertEqual(try jack.expectIRC(prefix: ":chatd 404"), ":chatd 404 jack #club :Cannot send to channel", "+m")
        ivy.send("MODE #club +v jack\r\n")
        XCTAssertEqual(try jack.expectIRC(prefix: ":ivy!"), ":ivy!~ivy@127.0.0.1 MODE #club +v jack")
        jack.send("PRIVMSG #club :now I can\r\n")
        XCTAssertEqual(try ivy.expectIRC("jack's message") { $0.contains("PRIVMSG") }, ":jack!~jack@127.0.0.1 PRIVMSG #club :now I can")

        let kate = try LineClient.named("kate", port: server.port)
        kate.send("/join club\n")
        XCTAssertEqual(try kate.expect(prefix: "ERR "), "ERR room-invalid #club is closed to you (an IRC operator set a key, a limit or invite-only)")
        ivy.send("INVITE kate #club\r\n")
        XCTAssertEqual(try ivy.expectIRC(prefix: ":chatd 341"), ":chatd 341 ivy kate #club")
        XCTAssertEqual(try kate.expect(prefix: "SYS Invite"), "SYS Invite: ivy invites you to #club; /join #club")
        kate.send("/join club\n")
        XCTAssertTrue(try kate.expect(prefix: "SYS Room: ").hasPrefix("SYS Room: #club; members (3)"))

        ivy.send("KICK #club kate :bye\r\n")
        XCTAssertEqual(try kate.expect(prefix: "SYS #club Kicked"), "SYS #club Kicked: kate by ivy (\"bye\")")
        XCTAssertEqual(try kate.expect(prefix: "SYS #lobby Joined"), "SYS #lobby Joined: kate", "a kicked native user is back in the lobby")
        XCTAssertEqual(try jack.expectIRC(prefix: ":ivy!"), ":ivy!~ivy@127.0.0.1 KICK #club kate :bye")
        ivy.send("PART #club :esc \u{1B}[2J\r\n")
        XCTAssertEqual(try ivy.expectIRC(prefix: "FAIL"), "FAIL PART INVALID_TEXT :You did not leave: it contains control characters (ESC, NUL, ...)")
        ivy.send("MODE #club +k bad\u{1B}key\r\n")
        XCTAssertTrue(try ivy.expectIRC(prefix: ":chatd 696").hasPrefix(":chatd 696 ivy #club k *"), "a key with a control is refused")
        ivy.send("MODE #club\r\n")
        XCTAssertEqual(try ivy.expectIRC(prefix: ":chatd 324"), ":chatd 324 ivy #club +kmnt secret")
    }

    /// Controls cannot ride in an away message or a real name (EmbeddedText.clean alone would let them through).
    func testControlsInAnAwayMessageOrARealNameGoNowhere() throws {
        let (server, ircPort) = try ircServer()
        defer { server.stop() }
        let lena = try LineClient(port: ircPort)
        lena.send("NICK lena\r\nUSER lena 0 * :\u{1B}]8;;http://x\u{1B}\\evil\r\n")
        _ = try lena.expectIRC(prefix: ":chatd 422")
        lena.send("AWAY :\u{1B}[2Jgone\r\n")
        XCTAssertEqual(try lena.expectIRC(prefix: "FAIL"), "FAIL AWAY INVALID_TEXT :Your away message was not set: it contains control characters (ESC, NUL, ...)")
        lena.send("WHOIS lena\r\n")
        XCTAssertEqual(try lena.expectIRC(prefix: ":chatd 311"), ":chatd 311 lena lena ~lena 127.0.0.1 * :lena", "the real name falls back to the username")
        let rest = try lena.expectIRC(prefix: ":chatd 318")
        XCTAssertFalse(lena.received.contains { $0.contains("\u{1B}") } || rest.contains("\u{1B}"), "no ESC came back")
    }
}

// Operators, invisibility, message tags and the limits of relaying, over loopback.
extension IRCFrontTests {
    func testAnOperatorKillsANativeUserWhoIsToldWhyAndOthersSeeItLeave() throws {
        let (server, ircPort) = try ircServer { config in config.operators = [Names.key("boss"): Array("s3cret pass".utf8)] }
        defer { server.stop() }
        let alice = try LineClient.named("alice", port: server.port)
        let nadia = try LineClient.named("nadia", port: server.port)
        let boss = try registerIRC("boss", port: ircPort)

        boss.send("KILL alice :spam\r\n")
        XCTAssertEqual(try boss.expectIRC(prefix: ":chatd 481 "), ":chatd 481 boss :Permission Denied- You're not an IRC operator")
        boss.send("OPER boss s3cret\r\n")
        XCTAssertEqual(try boss.expectIRC(prefix: ":chatd 464 "), ":chatd 464 boss :Password incorrect")
        boss.send("OPER nobody s3cret pass\r\n")
        XCTAssertEqual(try boss.expectIRC(prefix: ":chatd 464 "), ":chatd 464 boss :Password incorrect", "an unknown name reads the same")
        boss.send("OPER BOSS :s3cret pass\r\n")
        XCTAssertEqual(try boss.expectIRC(prefix: ":boss MODE"), ":boss MODE boss :+o")
        XCTAssertEqual(try boss.expectIRC(prefix: ":chatd 381 "), ":chatd 381 boss :You are now an IRC operator")
        boss.send("WHOIS boss\r\n")
        XCTAssertEqual(try boss.expectIRC(prefix: ":chatd 313 "), ":chatd 313 boss boss :is an IRC operator")
        boss.send("WHO boss\r\n")
        XCTAssertTrue(try boss.expectIRC(prefix: ":chatd 352 ").contains(" boss H* :0 "), "WHO marks operators with *")
        boss.send("LUSERS\r\n")
        XCTAssertEqual(try boss.expectIRC(prefix: ":chatd 252 "), ":chatd 252 boss 1 :operator(s) online")

        boss.send("KILL alice :spam\r\n")
        XCTAssertEqual(try alice.expectClose().last, "ERR killed disconnected by server operator boss: spam")
        XCTAssertEqual(try nadia.expect(prefix: "SYS #lobby Offline"), "SYS #lobby Offline: alice (Killed (boss (spam)))")
        XCTAssertNil(server.server.hub.session(named: "alice"))

        boss.send("MODE boss -o\r\n")
        XCTAssertEqual(try boss.expectIRC(prefix: ":boss MODE"), ":boss MODE boss :-o")
        boss.send("KILL nadia\r\n")
        XCTAssertEqual(try boss.expectIRC(prefix: ":chatd 481 "), ":chatd 481 boss :Permission Denied- You're not an IRC operator")
    }

    func testOperatorsAreRefusedWhenNoneAreConfigured() throws {
        let (server, ircPort) = try ircServer()
        defer { server.stop() }
        let eve = try registerIRC("eve", port: ircPort)
        eve.send("OPER eve guess\r\n")
        XCTAssertEqual(try eve.expectIRC(prefix: ":chatd 491 "), ":chatd 491 eve :No operators are configured on this server")
    }

    func testTheOperatorFileIsCheckedWhenRead() throws {
        func file(_ contents: String) throws -> String {
            let path = NSTemporaryDirectory() + "chatd-opers-\(UUID().uuidString)"
            try contents.write(toFile: path, atomically: true, encoding: .utf8)
            addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
            return path
        }
        var config = ServerConfig()
        try config.apply(key: "oper-file", value: try file("# operators\n\nboss  two words\r\n  Mia\tx\n"))
        XCTAssertEqual(config.operators, [Names.key("boss"): Array("two words".utf8), Names.key("mia"): Array("x".utf8)])
        for (contents, problem) in [("boss\n", "line 1: expected NAME PASSWORD"), ("ok pw\nbad!name pw\n", "line 2: bad!name is not a valid name"),
                                    ("boss a\nBOSS b\n", "line 2: BOSS is listed twice"),
                                    ("boss " + String(repeating: "p", count: 256) + "\n", "the password must be 1-255 bytes")] {
            XCTAssertThrowsError(try config.apply(key: "oper-file", value: try file(contents))) { error in
                XCTAssertTrue("\(error)".contains(problem), "\(error) should say \(problem)")
            }
        }
    }

    func testInvisibleUsersHideFromMasksButNotFromThoseWhoShareAChannel() throws {
        let (server, ircPort) = try ircServer()
        defer { server.stop() }
        let evan = try registerIRC("evan", port: ircPort)
        let shiv = try registerIRC("shiv", port: ircPort)
        evan.send("MODE evan +i\r\nMODE evan\r\n")
        XCTAssertEqual(try evan.expectIRC(prefix: ":evan MODE"), ":evan MODE evan :+i")
        XCTAssertEqual(try evan.expectIRC(prefix: ":chatd 221 "), ":chatd 221 evan +i")
        shiv.send("WHO eva*\r\n")
        XCTAssertTrue(try shiv.expectIRC("a WHO reply") { $0.hasPrefix(":chatd 352 ") || $0.hasPrefix(":chatd 315 ") }.hasPrefix(":chatd 315 "), "no 352 for an invisible user")
        shiv.send("LUSERS\r\n")
        XCTAssertEqual(try shiv.expectIRC(prefix: ":chatd 251 "), ":chatd 251 shiv :There are 1 users and 1 invisible on 1 servers")
        evan.send("JOIN #den\r\n")
        shiv.send("NAMES #den\r\n")
        XCTAssertEqual(try shiv.expectIRC(prefix: ":chatd 366 "), ":chatd 366 shiv #den :End of /NAMES list", "no 353 for an outsider")
        shiv.send("JOIN #den\r\nWHO eva*\r\n")
        XCTAssertTrue(try shiv.expectIRC(prefix: ":chatd 352 ").contains(" evan H "), "a shared channel shows the invisible")
    }

    func testClientTagsReachOnlyClientsThatAskedForMessageTags() throws {
        let (server, ircPort) = try ircServer()
        defer { server.stop() }
        let nadia = try LineClient.named("nadia", port: server.port)
        let alice = try registerIRC("alice", port: ircPort, caps: ["message-tags"])
        let dave = try registerIRC("dave", port: ircPort, caps: ["server-time"])
        let carol = try registerIRC("carol", port: ircPort)
        for client in [alice, dave, carol] { client.send("JOIN #lobby\r\n") }
        for (client, nick) in [(alice, "alice"), (dave, "dave"), (carol, "carol")] {
            _ = try client.expectIRC(prefix: ":chatd 366 \(nick) ")
        }
        _ = try nadia.expect(prefix: "SYS #lobby Joined: carol")

        carol.send("@+typing=active TAGMSG #lobby\r\n")
        carol.send("@+draft/reply=x\\:y;server=ignored PRIVMSG #lobby :hi\r\n")
        let tagged = try alice.expectIRC("the TAGMSG") { $0.contains(" TAGMSG ") }
        XCTAssertTrue(tagged.hasSuffix(":carol!~carol@127.0.0.1 TAGMSG #lobby") && tagged.contains(";+typing=active "), tagged)
        XCTAssertTrue(tagged.hasPrefix("@time="), tagged)
        let message = try alice.expectIRC("the PRIVMSG") { $0.contains(" PRIVMSG ") }
        XCTAssertTrue(message.hasSuffix(" :carol!~carol@127.0.0.1 PRIVMSG #lobby :hi"), message)
        XCTAssertTrue(message.contains(";msgid=") && message.contains(";+draft/reply=x\\:y ") && !message.contains("server="), message)
        let timed = try dave.expectIRC("the first line after the JOINs") { !$0.contains(" JOIN ") }
        XCTAssertTrue(timed.hasPrefix("@time=") && !timed.contains(";") && timed.hasSuffix("PRIVMSG #lobby :hi"), "server-time alone: no TAGMSG, no client tags: \(timed)")
        XCTAssertEqual(try nadia.expect(prefix: "MSG "), "MSG #lobby carol: hi", "native lines unchanged")

        carol.send("@+bad=\u{1B}[31m PRIVMSG #lobby :colour\r\n")
        XCTAssertTrue(try carol.expectIRC(prefix: "FAIL ").hasPrefix("FAIL PRIVMSG INVALID_TEXT :Your message was not sent: the tag +bad holds a control character"))
    }

    func testAPrivmsgThatCannotBeRelayedInOneLineGets417AndIsNotSent() throws {
        let (server, ircPort) = try ircServer()
        defer { server.stop() }
        let nadia = try LineClient.named("nadia", port: server.port)
        let bob = try registerIRC("bob", port: ircPort)
        bob.send("JOIN #lobby\r\n")
        _ = try bob.expectIRC(prefix: ":chatd 366 ")
        // 490 bytes of text fit the 510 bytes bob may send, not the 512 of ":bob!~bob@127.0.0.1 PRIVMSG #lobby :" (36
        // bytes) + text + CR LF.
        bob.send("PRIVMSG #lobby :" + String(repeating: "x", count: 490) + "\r\n")
        let refusal = try bob.expectIRC(prefix: ":chatd 417 ")
        XCTAssertTrue(refusal.hasSuffix("at most \(512 - 36 - 2) bytes of text fit"), refusal)
        bob.send("PRIVMSG #lobby :" + String(repeating: "y", count: 512 - 36 - 2) + "\r\n")
        XCTAssertEqual(try nadia.expect(prefix: "MSG "), "MSG #lobby bob: " + String(repeating: "y", count: 474), "the longest that fits goes through, and nothing before it")
    }

    func testInvitationsAreListedAndReachNativeUsersInTheirProtocol() throws {
        let (server, ircPort) = try ircServer()
        defer { server.stop() }
        let nadia = try LineClient.named("nadia", port: server.port)
        let op = try registerIRC("op", port: ircPort)
        let bob = try registerIRC("bob", port: ircPort)
        op.send("JOIN #den\r\nINVITE nadia #den\r\nINVITE bob #den\r\n")
        XCTAssertEqual(try nadia.expect(prefix: "SYS Invite"), "SYS Invite: op invites you to #den; /join #den")
        XCTAssertEqual(try bob.expectIRC(prefix: ":op!"), ":op!~op@127.0.0.1 INVITE bob #den")
        bob.send("INVITE\r\n")
        XCTAssertEqual(try bob.expectIRC(prefix: ":chatd 336 "), ":chatd 336 bob #den")
        XCTAssertEqual(try bob.expectIRC(prefix: ":chatd 337 "), ":chatd 337 bob :End of /INVITE list")
    }
}

extension IRCFrontTests {
    /// Dispatch, 451, 461 and HELP come from one table (`IRCFront.commands`).
    func testOneCommandTableGivesDispatchUsageErrorsAndHelp() throws {
        let (server, ircPort) = try ircServer()
        defer { server.stop() }
        let early = try LineClient(port: ircPort)
        early.send("JOIN #lobby\r\nHELP JOIN\r\n")
        XCTAssertEqual(try early.expectIRC(prefix: ":chatd 451 "), ":chatd 451 * :You have not registered")
        XCTAssertEqual(try early.expectIRC(prefix: ":chatd 704 "), ":chatd 704 * JOIN :JOIN #a[,#b] [key[,key]] | JOIN 0", "HELP works before registration")
        let ivy = try registerIRC("ivy", port: ircPort)
        ivy.send("KICK #lobby\r\nFROB x\r\nHELP\r\nHELP NOPE\r\n")
        XCTAssertEqual(try ivy.expectIRC(prefix: ":chatd 461 "), ":chatd 461 ivy KICK :Not enough parameters (usage: KICK #chan nick[,nick] [:reason])")
        XCTAssertEqual(try ivy.expectIRC(prefix: ":chatd 421 "), ":chatd 421 ivy FROB :Unknown command")
        var index: [String] = []
        while true {
            let line = try ivy.expectIRC("the HELP index") { $0.hasPrefix(":chatd 705 ") || $0.hasPrefix(":chatd 706 ") }
            if line.hasPrefix(":chatd 706 ") { break }
            index += line.split(separator: ":").last!.split(separator: " ").map(String.init)
        }
        XCTAssertEqual(Set(index), Set(IRCFront.commands.map(\.name)), "the index lists the table")
        XCTAssertTrue(index.contains("PRIVMSG") && index.contains("WHO") && index.contains("OPER"))
        XCTAssertEqual(try ivy.expectIRC(prefix: ":chatd 524 "), ":chatd 524 ivy NOPE :No help for that command")
    }
}
