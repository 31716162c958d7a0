// Report: the run's numbers, judged (problems make the exit status non-zero) and printed as a table or JSON.


struct Report {
    let options: LoadOptions
    let spec: ProtocolSpec
    var result = WorkerResult()
    var totalSent: UInt64 = 0
    var connectSeconds = 0.0
    var readyAfterConnect = 0
    var onlineExpected: Int?
    var onlineSeconds: Double?
    var drainSeconds: Double?
    var wallSeconds = 0.0
    var generatorCPU: UInt64 = 0
    var generatorWindowCPU: UInt64?
    var serverWindowCPU: UInt64?
    var progressDeliveriesInWindow = 0
    var serverRSSBefore: UInt64?
    var serverRSSIdle: UInt64?
    var serverRSSEnd: UInt64?
    var serverPeakRSS: UInt64?
    var problems: [String] = []

    init(options: LoadOptions, spec: ProtocolSpec) {
        self.options = options
        self.spec = spec
    }

    var clientsExpected: Int {
        options.clients + (spec.separatePublishers && options.sendsMessages ? options.senders : 0)
    }

    var deliveriesPerSecond: Double? {
        options.sendsMessages ? Double(result.windowDeliveries) / options.duration : nil
    }

    var serverNsPerDelivery: Double? {
        guard let cpu = serverWindowCPU, result.windowDeliveries > 0 else { return nil }
        return Double(cpu) / Double(result.windowDeliveries)
    }

    var generatorNsPerDelivery: Double? {
        guard let cpu = generatorWindowCPU, result.windowDeliveries > 0 else { return nil }
        return Double(cpu) / Double(result.windowDeliveries)
    }

    var rssPerIdleConnection: Double? {
        guard let before = serverRSSBefore, let idle = serverRSSIdle, result.ready > 0 else { return nil }
        return (Double(idle) - Double(before)) / Double(result.ready)
    }

    mutating func evaluate() {
        if result.failed > 0 { problems.append("\(result.failed) connections failed") }
        if result.ready < clientsExpected - result.failed - result.closedByServer {
            problems.append("\(clientsExpected - result.ready) clients never became ready")
        }
        let nonSlowClosed = result.closedByServer - (options.scenario == .slow ? result.slowDroppedWithReason : 0)
        if nonSlowClosed > 0 { problems.append("\(nonSlowClosed) connections closed by the server") }
        if result.loss > 0 { problems.append("\(result.loss) deliveries lost (\(result.lossClients) clients)") }
        if result.duplicates > 0 { problems.append("\(result.duplicates) duplicates") }
        if result.reordered > 0 { problems.append("\(result.reordered) out of order") }
        if result.slowUnaccounted > 0 { problems.append("\(result.slowUnaccounted) lines lost by slow clients without notice") }
        if let want = onlineExpected, result.onlineSeen != want {
            problems.append("\(result.onlineSeen) of \(want) join announcements (Online:/JOIN) delivered")
        }
    }

    // MARK: Output

    static func fixed(_ value: Double, _ decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        var text = String(rounded)
        if let dot = text.firstIndex(of: ".") {
            let have = text.distance(from: dot, to: text.endIndex) - 1
            if decimals == 0 { text = String(text[..<dot]) } else if have < decimals { text += String(repeating: "0", count: decimals - have) }
        } else if decimals > 0 {
            text += "." + String(repeating: "0", count: decimals)
        }
        return text
    }

    static func mib(_ bytes: UInt64?) -> String { bytes.map { fixed(Double($0) / 1_048_576, 1) + " MiB" } ?? "-" }
    func ms(_ percentile: Double) -> Double { Double(result.latency.valueAtPercentile(percentile)) / 1000 }
    func connectMs(_ percentile: Double) -> Double { Double(result.connectLatency.valueAtPercentile(percentile)) / 1000 }

    func table() -> String {
        var rows: [(String, String)] = []
        let title = options.label.isEmpty ? "" : " [\(options.label)]"
        rows.append(("scenario", "\(options.scenario.rawValue)\(title), protocol \(spec.name), \(options.clients) clients, \(options.threads) thread(s)"))
        rows.append(("connections", "\(result.connected) made, \(result.failed) failed, \(result.ready) ready, \(result.closedByServer) closed by server"))
        rows.append(("connect", "\(Self.fixed(connectSeconds, 2)) s for all (\(Self.fixed(Double(result.ready) / max(connectSeconds, 1e-9), 0))/s); connect latency p50 \(Self.fixed(connectMs(50), 2)) ms, p99 \(Self.fixed(connectMs(99), 2)) ms, max \(Self.fixed(connectMs(100), 2)) ms"))
        if let want = onlineExpected {
            rows.append(("online lines", "\(result.onlineSeen) of \(want) delivered after \(Self.fixed(onlineSeconds ?? 0, 2)) s"))
        }
        if options.sendsMessages {
            let mode = options.rate > 0 ? "\(Self.fixed(options.rate, 0)) msg/s each" : "as fast as possible (in flight <= \(options.inFlight))"
            rows.append(("senders", "\(options.senders), \(mode), \(options.payload) B, \(Self.fixed(options.warmup, 1)) s warm-up + \(Self.fixed(options.duration, 1)) s"))
            rows.append(("messages sent", "\(totalSent)"))
            rows.append(("deliveries", "\(result.deliveries) total, \(Self.fixed(deliveriesPerSecond ?? 0, 0))/s in the window"))
            rows.append(("loss", "\(result.loss) lost, \(result.duplicates) duplicated, \(result.reordered) out of order, \(result.gaps) gaps"))
            rows.append(("latency", "p50 \(Self.fixed(ms(50), 2)) ms, p90 \(Self.fixed(ms(90), 2)) ms, p99 \(Self.fixed(ms(99), 2)) ms, p99.9 \(Self.fixed(ms(99.9), 2)) ms, max \(Self.fixed(ms(100), 2)) ms (\(result.latency.totalCount) samples)"))
            if options.scenario == .slow {
                rows.append(("slow clients", "\(options.slowClients): \(result.slowAccounted) told what they missed or got all (\(result.slowMissedReported) lines reported missed), \(result.slowDroppedWithReason) dropped with a reason, \(result.slowUnaccounted) lines unaccounted"))
            }
            rows.append(("drain", "\(Self.fixed(drainSeconds ?? 0, 2)) s"))
        }
        if let ns = serverNsPerDelivery {
            rows.append(("server CPU", "\(Self.fixed(Double(serverWindowCPU ?? 0) / 1e9, 2)) s in the window, \(Self.fixed(ns, 1)) ns per delivery"))
        }
        if let cpu = generatorWindowCPU {
            rows.append(("generator CPU", "\(Self.fixed(Double(cpu) / 1e9, 2)) s in the window (\(Self.fixed(generatorNsPerDelivery ?? 0, 1)) ns per delivery), \(Self.fixed(Double(generatorCPU) / 1e9, 2)) s total"))
        } else {
            rows.append(("generator CPU", "\(Self.fixed(Double(generatorCPU) / 1e9, 2)) s total"))
        }
        if options.serverPid != nil {
            var memory = "peak \(Self.mib(serverPeakRSS)), now \(Self.mib(serverRSSEnd)), before \(Self.mib(serverRSSBefore))"
            if let perConnection = rssPerIdleConnection {
                memory += ", idle \(Self.mib(serverRSSIdle)) = \(Self.fixed(perConnection, 0)) B per connection"
            }
            rows.append(("server RSS", memory))
        }
        if !result.errors.isEmpty {
            rows.append(("errors", result.errors.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ")))
        }
        rows.append(("verdict", problems.isEmpty ? "ok" : "FAILED: " + problems.joined(separator: "; ")))
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0 + String(repeating: " ", count: width - $0.0.count) + "  " + $0.1 }.joined(separator: "\n")
    }

    func json() -> String {
        func q(_ s: String) -> String {
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                default:
                    if scalar.value < 0x20 { out += "\\u00" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16) } else { out.unicodeScalars.append(scalar) }
                }
            }
            return out + "\""
        }
        func num(_ v: Double?) -> String { v.map { $0.isFinite ? Self.fixed($0, 3) : "null" } ?? "null" }
        func int(_ v: UInt64?) -> String { v.map { String($0) } ?? "null" }
        var fields: [(String, String)] = [
            ("label", q(options.label)),
            ("scenario", q(options.scenario.rawValue)),
            ("protocol", q(spec.name)),
            ("clients", String(options.clients)),
            ("threads", String(options.threads)),
            ("senders", options.sendsMessages ? String(options.senders) : "0"),
            ("rate", num(options.rate)),
            ("payload_bytes", String(options.payload)),
            ("duration_s", num(options.duration)),
            ("connections_made", String(result.connected)),
            ("connections_failed", String(result.failed)),
            ("ready", String(result.ready)),
            ("closed_by_server", String(result.closedByServer)),
            ("connect_s", num(connectSeconds)),
            ("connects_per_s", num(Double(result.ready) / max(connectSeconds, 1e-9))),
            ("connect_p50_ms", num(connectMs(50))),
            ("connect_p99_ms", num(connectMs(99))),
            ("connect_max_ms", num(connectMs(100))),
            ("online_expected", onlineExpected.map(String.init) ?? "null"),
            ("online_seen", String(result.onlineSeen)),
            ("messages_sent", String(totalSent)),
            ("deliveries", String(result.deliveries)),
            ("deliveries_in_window", String(result.windowDeliveries)),
            ("deliveries_per_s", num(deliveriesPerSecond)),
            ("lost", String(result.loss)),
            ("duplicates", String(result.duplicates)),
            ("out_of_order", String(result.reordered)),
            ("latency_p50_ms", num(ms(50))),
            ("latency_p90_ms", num(ms(90))),
            ("latency_p99_ms", num(ms(99))),
            ("latency_p999_ms", num(ms(99.9))),
            ("latency_max_ms", num(ms(100))),
            ("latency_samples", String(result.latency.totalCount)),
            ("slow_accounted", String(result.slowAccounted)),
            ("slow_dropped_with_reason", String(result.slowDroppedWithReason)),
            ("slow_unaccounted_lines", String(result.slowUnaccounted)),
            ("slow_missed_reported", String(result.slowMissedReported)),
            ("drain_s", num(drainSeconds)),
            ("server_cpu_window_ns", int(serverWindowCPU)),
            ("server_cpu_ns_per_delivery", num(serverNsPerDelivery)),
            ("generator_cpu_window_ns", int(generatorWindowCPU)),
            ("generator_cpu_ns_per_delivery", num(generatorNsPerDelivery)),
            ("generator_cpu_total_ns", String(generatorCPU)),
            ("server_rss_before_bytes", int(serverRSSBefore)),
            ("server_rss_idle_bytes", int(serverRSSIdle)),
            ("server_rss_end_bytes", int(serverRSSEnd)),
            ("server_peak_rss_bytes", int(serverPeakRSS)),
            ("server_rss_per_idle_connection_bytes", num(rssPerIdleConnection)),
            ("wall_s", num(wallSeconds)),
        ]
        fields.append(("errors", "{" + result.errors.sorted { $0.key < $1.key }.map { "\(q($0.key)): \($0.value)" }.joined(separator: ", ") + "}"))
        fields.append(("problems", "[" + problems.map(q).joined(separator: ", ") + "]"))
        fields.append(("ok", problems.isEmpty ? "true" : "false"))
        return "{" + fields.map { "\(q($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }
}
