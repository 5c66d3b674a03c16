import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GemelloCore
import GemelloTesting
import Testing

/// Alerts end to end with real processes: an agent replays a level crossing its threshold every
/// 3 s; a real `gemello-aggregator` raises and clears an alert each time and sends CAP 1.2 to a
/// webhook receiver. The receiver is down for 30 s, and the aggregator is `kill -9`ed during
/// that outage and started again. Afterwards the receiver holds every message of every alert
/// exactly once by id (`<alert>.0`, `.1`, … with no gap), first seen in order, each valid CAP.
@Suite struct AlertDeliveryTests {
    static let rules = """
        rules:
          - name: level-high
            match:
              series: "alerting/gauge/level"
            threshold:
              above: 2
              clear-below: 2
            severity: severe
            category: met
            headline:
              it: "Livello {value} m"
              en: "Level {value} m"
        """

    /// A CSV of `seconds` rows, one a second from `start`: 1 m for 3 s, then 3 m for 3 s, …
    static func levels(start: Int64, seconds: Int) -> String {
        var csv = "time,level\n"
        for i in 0..<seconds {
            let t = Timestamp.iso8601(milliseconds: start + Int64(i) * 1000)
            csv += "\(t.prefix(10)) \(t.dropFirst(11).prefix(8)),\((i / 3) % 2 == 1 ? 3.0 : 1.0)\n"
        }
        return csv
    }

    /// A real `gemello-agent` replaying `csv` (`time,level` rows) as sensor `gauge` (WaterObserved) of agent `id`;
    /// `access` replaces the `broker:` line (the lines `gemello agent enroll` prints).
    static func gaugeAgent(_ id: String, site: String, at location: (Double, Double), csv: URL, speed: String = "max", broker: String,
                           folder: URL, access: String? = nil) throws -> Process {
        let config = folder.appendingPathComponent("\(id).yaml")
        try """
            agent-id: \(id)
            site:
              id: \(site)
              kind: fiber-node
              latitude: \(location.0)
              longitude: \(location.1)
            \(access ?? "broker: \(broker)\n")
            buffer:
              path: \(folder.appendingPathComponent("\(id).sqlite").path)
            inputs:
              - type: csv-replay
                sensor: gauge
                entity-type: WaterObserved
                file: \(csv.path)
                timestamp:
                  columns: [time]
                  format: "yyyy-MM-dd HH:mm:ss"
                speed: \(speed)
                columns:
                  level:
                    attribute: level
                    unit: MTR
            """.write(to: config, atomically: true, encoding: .utf8)
        let agent = Process()
        agent.executableURL = Repository.root.appendingPathComponent(".build/debug/gemello-agent")
        agent.arguments = ["--config", config.path, "--log-level", "warning"]
        let log = folder.appendingPathComponent("\(id).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        agent.standardOutput = FileHandle.nullDevice
        agent.standardError = try FileHandle(forWritingTo: log)
        try agent.run()
        return agent
    }

    final class Aggregator {
        let process = Process()
        let portFile: URL
        init(config: URL, broker: String, store: URL, folder: URL, log: URL) throws {
            let binary = Repository.root.appendingPathComponent(".build/debug/gemello-aggregator")
            guard FileManager.default.isExecutableFile(atPath: binary.path) else { throw FleetTests.CLIMissing(path: binary.path) }
            portFile = folder.appendingPathComponent("port-\(UUID().uuidString.prefix(6))")
            process.executableURL = binary
            process.arguments = ["--config", config.path, "--broker", broker, "--store", store.path, "--http-port", "0",
                                 "--port-file", portFile.path, "--log-level", "info"]
            if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
            let handle = try FileHandle(forWritingTo: log)
            handle.seekToEndOfFile()
            process.standardOutput = FileHandle.nullDevice
            process.standardError = handle
            try process.run()
        }
        func port() async throws -> Int {
            try await waitUntil(.seconds(30)) { (try? String(contentsOf: portFile, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } != nil }
            return try #require(Int(try String(contentsOf: portFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        func kill9() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    @Test(.timeLimit(.minutes(4)))
    func receiverOutageAndAggregatorCrashLoseNoAlertMessage() async throws {
        let broker = try BrokerHarness()
        defer { broker.stop() }
        let receiver = try NotificationReceiver()
        defer { receiver.stop() }
        let folder = try Repository.temporaryFolder("alert-delivery")
        let rules = folder.appendingPathComponent("rules.yaml")
        try Self.rules.write(to: rules, atomically: true, encoding: .utf8)
        let config = folder.appendingPathComponent("aggregator.yaml")
        try """
            client-id: alert-delivery-aggregator
            alerts:
              rules: \(rules.path)
              cap:
                sender: gemello-test@gemello.invalid
                status: Test
              sinks:
                - name: control-room
                  type: webhook
                  url: \(receiver.url)
                  token: t0k3n
                  format: cap
            """.write(to: config, atomically: true, encoding: .utf8)
        let store = folder.appendingPathComponent("twin.sqlite")
        let log = folder.appendingPathComponent("aggregator.log")
        var aggregator = try Aggregator(config: config, broker: broker.url, store: store, folder: folder, log: log)
        defer { aggregator.kill9() }
        _ = try await aggregator.port()

        // 55 s of levels starting in 3 s, replayed in real time: an alert raised and cleared every 6 s.
        let seconds = 55
        let start = (Int64(Date().timeIntervalSince1970) + 3) * 1000
        let csv = folder.appendingPathComponent("levels.csv")
        try Self.levels(start: start, seconds: seconds).write(to: csv, atomically: true, encoding: .utf8)
        let agent = try Self.gaugeAgent("alerting", site: "navigli", at: (45.45, 9.17), csv: csv, speed: "1", broker: broker.url, folder: folder)
        defer { kill(agent.processIdentifier, SIGKILL) }

        // Delivered while up; then the receiver is down 30 s, the aggregator killed and restarted within it.
        try await waitUntil(.seconds(30)) { receiver.received().count >= 3 }
        #expect(receiver.received().count >= 3, "nothing reached the receiver before the outage")
        receiver.stop()
        try await Task.sleep(for: .seconds(10))
        aggregator.kill9()
        try await Task.sleep(for: .seconds(3))
        aggregator = try Aggregator(config: config, broker: broker.url, store: store, folder: folder, log: log)
        let port = try await aggregator.port()
        try await Task.sleep(for: .seconds(17))
        try receiver.start()

        // The replay ends at start + 55 s; then everything queued reaches the receiver.
        let end = Date(timeIntervalSince1970: Double(start) / 1000 + Double(seconds))
        try await Task.sleep(for: .seconds(max(0, end.timeIntervalSinceNow) + 3))
        func stored() async throws -> [[String: Any]] {
            let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/alerts?all=true")!)
            return try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        }
        // What the store says was sent: each alert raised and cleared has <id>.0 (Alert) and <id>.1
        // (Cancel); one still open only <id>.0. Waits (retries back off to 30 s) until the receiver has them all.
        func expectedIDs(_ alerts: [[String: Any]]) -> Set<String> {
            Set(alerts.flatMap { alert -> [String] in
                guard let id = alert["id"] as? String else { return [] }
                return (alert["status"] as? String) == "cleared" ? ["\(id).0", "\(id).1"] : ["\(id).0"]
            })
        }
        var alerts = try await stored()
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            alerts = try await stored()
            if Set(receiver.received().compactMap { $0.headers["X-Gemello-Message-Id"] }) == expectedIDs(alerts) { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        try await Task.sleep(for: .seconds(2))  // nothing more may come
        alerts = try await stored()
        let received = receiver.received()

        let ids = received.compactMap { $0.headers["X-Gemello-Message-Id"] }
        #expect(ids.count == received.count, "a message came without its id header")
        #expect(alerts.count >= 7, "\(alerts.count) alerts for 55 s of a level crossing every 3 s")
        let distinct = Set(ids), expected = expectedIDs(alerts)
        // At least once, so a resend is possible (a delivery whose answer was lost); none is expected here.
        #expect(ids.count - distinct.count <= 1, "\(ids.count - distinct.count) messages arrived twice")
        #expect(distinct == expected, "missing: \(expected.subtracting(distinct).sorted()), unexpected: \(distinct.subtracting(expected).sorted())")
        // In order: first arrivals follow the order the aggregator queued them (raise before its cancel,
        // and alerts in the order they were raised).
        var firstSeen: [String] = []
        for id in ids where !firstSeen.contains(id) { firstSeen.append(id) }
        let raisedOrder = alerts.sorted { ($0["raisedAt"] as? String ?? "") < ($1["raisedAt"] as? String ?? "") }.compactMap { $0["id"] as? String }
        let arrivalOrder = firstSeen.filter { $0.hasSuffix(".0") }.map { String($0.dropLast(2)) }
        #expect(arrivalOrder == raisedOrder)
        for alert in raisedOrder {
            if let a = firstSeen.firstIndex(of: "\(alert).0"), let c = firstSeen.firstIndex(of: "\(alert).1") { #expect(a < c) }
        }
        #expect(received.allSatisfy { $0.headers["Authorization"] == "Bearer t0k3n" })
        let bodies = received.map(\.body)
        #expect(try StandardValidators.cap(bodies) == nil)
        #expect(bodies.allSatisfy { $0.contains("<status>Test</status>") && $0.contains("<sender>gemello-test@gemello.invalid</sender>") })
        // The restarted aggregator raised no alert twice: one alert per episode, none open twice.
        #expect(alerts.filter { ($0["status"] as? String) == "open" }.count <= 1)
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(text.contains("alert message not delivered"), "the outage was not seen")
    }
}
