import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GemelloCore
import GemelloMosquitto
import GemelloTesting
import Synchronization
import Testing

/// The alert API, sinks and rules with a real `gemello-aggregator`: a backlog replayed at full
/// speed makes late alerts with their true times; an operator acknowledges the open one (every
/// sink gets an Update saying who); the twin shows SDM `Alert` entities that the Smart Data
/// Models and NGSI-LD validators accept; an MQTT sink gets JSON messages on its topic; SIGHUP
/// with an invalid rules file keeps the old rules, with a rule removed clears its alerts.
@Suite struct AlertAPITests {
    /// Readings of a day, hourly, in 2024: high (3 m) in hours 5-8 and from hour 20 on.
    static func csv() -> String {
        var text = "time,level\n"
        for h in 0..<24 { text += "2024-03-01 \(h < 10 ? "0" : "")\(h):00:00,\((5...8).contains(h) || h >= 20 ? 3.0 : 1.0)\n" }
        return text
    }

    static func rules(withLevel: Bool) -> String {
        var text = "late-after: 1m\nrules:\n"
        if withLevel {
            text += """
                  - name: level-high
                    match:
                      attribute: level
                    threshold:
                      above: 2
                      clear-below: 1.5
                    severity: moderate
                    category: met
                    headline:
                      it: "Livello {value} m a {site}"
                      en: "Level {value} m at {site}"

                """
        }
        text += """
              - name: quiet
                match:
                  attribute: nothing-matches-this
                silent: 1h
            """
        return text
    }

    @Test(.timeLimit(.minutes(3)))
    func apiSinksTwinAndReload() async throws {
        let broker = try BrokerHarness()
        defer { broker.stop() }
        let receiver = try NotificationReceiver()
        defer { receiver.stop() }
        let forwarded = try NotificationReceiver()
        defer { forwarded.stop() }
        let folder = try Repository.temporaryFolder("alert-api")
        let rulesFile = folder.appendingPathComponent("rules.yaml")
        try Self.rules(withLevel: true).write(to: rulesFile, atomically: true, encoding: .utf8)
        let config = folder.appendingPathComponent("aggregator.yaml")
        try """
            client-id: alert-api-aggregator
            alerts:
              rules: \(rulesFile.path)
              sinks:
                - name: webhook-json
                  type: webhook
                  url: \(receiver.url)
                  format: json
                  header: X-Api-Key
                  token: k3y
                - name: civil-protection
                  type: mqtt
                  broker: \(broker.url)
                  topic: cap/gemello
                  format: json
                - name: levels-to-control-room
                  type: ngsi-ld
                  url: \(forwarded.url)
                  entity-type: WaterObserved
                  attributes: [level]
                  token: f0rward
            """.write(to: config, atomically: true, encoding: .utf8)

        // An MQTT subscriber on the sink's topic.
        let client = try MQTTClient(options: .init(clientID: "alert-api-listener", cleanSession: true))
        let mqttMessages = Mutex<[String]>([])
        let listener = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await client.start(broker: BrokerAddress(url: broker.url)!) }
                for await event in client.events {
                    switch event {
                    case .connected: _ = try? client.subscribe("cap/gemello")
                    case .message(let m): mqttMessages.withLock { $0.append(String(decoding: m.payload, as: UTF8.self)) }
                    default: break
                    }
                }
            }
        }
        defer { client.disconnect(); listener.cancel() }

        let aggregator = try AlertDeliveryTests.Aggregator(config: config, broker: broker.url, store: folder.appendingPathComponent("twin.sqlite"),
                                                           folder: folder, log: folder.appendingPathComponent("aggregator.log"))
        defer { aggregator.kill9() }
        let port = try await aggregator.port()
        let api = "http://127.0.0.1:\(port)"

        let csv = folder.appendingPathComponent("levels.csv")
        try Self.csv().write(to: csv, atomically: true, encoding: .utf8)
        let agent = try AlertDeliveryTests.gaugeAgent("gauge-agent", site: "darsena", at: (45.452, 9.176), csv: csv, broker: broker.url,
                                                      folder: folder)
        defer { kill(agent.processIdentifier, SIGKILL) }

        func get(_ path: String, link: Bool = false) async throws -> (Int, Data) {
            var request = URLRequest(url: URL(string: api + path)!)
            if link {
                request.setValue("<https://raw.githubusercontent.com/smart-data-models/data-models/master/context.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"", forHTTPHeaderField: "Link")
            }
            let (data, response) = try await URLSession.shared.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
        }
        func post(_ path: String, _ body: String) async throws -> (Int, Data) {
            var request = URLRequest(url: URL(string: api + path)!)
            request.httpMethod = "POST"
            request.httpBody = Data(body.utf8)
            let (data, response) = try await URLSession.shared.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
        }
        func alerts(_ query: String = "?all=true") async throws -> [[String: Any]] {
            try #require(try JSONSerialization.jsonObject(with: try await get("/alerts" + query).1) as? [[String: Any]])
        }

        // Two episodes: 05:00-09:00 (cleared, late) and one open from 20:00.
        try await waitUntil(.seconds(30)) { receiver.received().count >= 2 }
        var all: [[String: Any]] = []
        for _ in 0..<100 {
            all = try await alerts()
            if all.count == 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(all.count == 2)
        let open = try #require(all.first { $0["status"] as? String == "open" })
        let cleared = try #require(all.first { $0["status"] as? String == "cleared" })
        #expect(open["raisedAt"] as? String == "2024-03-01T20:00:00.000Z" && open["late"] as? Bool == true)
        #expect(cleared["raisedAt"] as? String == "2024-03-01T05:00:00.000Z" && cleared["clearedAt"] as? String == "2024-03-01T09:00:00.000Z")
        #expect(open["site"] as? String == "darsena")
        #expect(try await alerts("").count == 1)  // open only by default
        let id = try #require(open["id"] as? String)

        // Acknowledge: 400 without who, 404 for no such alert, then acknowledged; stays open.
        #expect(try await post("/alerts/\(id)/ack", "").0 == 400)
        let missing = try await post("/alerts/a0000000000000000/ack", "{\"by\": \"x\"}")
        #expect(missing.0 == 404 && String(decoding: missing.1, as: UTF8.self).contains("ResourceNotFound"))
        let acked = try await post("/alerts/\(id)/ack", "{\"by\": \"operatore 7\"}")
        #expect(acked.0 == 200)
        let after = try #require(try await alerts("").first)
        #expect(after["acknowledgedBy"] as? String == "operatore 7" && after["status"] as? String == "open")
        try await waitUntil(.seconds(10)) { receiver.received().contains { $0.body.contains("operatore 7") } }
        let webhook = receiver.received()
        #expect(webhook.contains { $0.body.contains("\"msgType\":\"Update\"") && $0.body.contains("operatore 7") })
        #expect(webhook.allSatisfy { $0.headers["X-Api-Key"] == "k3y" && $0.headers["Content-Type"] == "application/json" })
        try await waitUntil(.seconds(10)) { mqttMessages.withLock { $0.count } >= webhook.count }
        #expect(Set(mqttMessages.withLock { $0 }.compactMap { Self.id(of: $0) }) == Set(webhook.compactMap { Self.id(of: $0.body) }))

        // Raw telemetry forwarded as NGSI-LD notifications (the managed subscription), with its token.
        try await waitUntil(.seconds(10)) { !forwarded.received().isEmpty }
        let notifications = forwarded.received()
        #expect(!notifications.isEmpty)
        #expect(notifications.allSatisfy { $0.headers["Authorization"] == "Bearer f0rward" })
        #expect(notifications.contains { $0.body.contains("urn:ngsi-ld:WaterObserved:gauge-agent:gauge") && $0.body.contains("\"Notification\"") })
        #expect(try StandardValidators.ngsild("Notification", [try #require(notifications.first?.body)]) == nil)

        // The twin: SDM Alert entities, valid for Smart Data Models (key-values) and NGSI-LD (normalized).
        let (status, keyValues) = try await get("/ngsi-ld/v1/entities?type=Alert&options=keyValues", link: true)
        #expect(status == 200)
        let entities = try #require(try JSONSerialization.jsonObject(with: keyValues) as? [[String: Any]])
        #expect(entities.count == 2)
        let documents = try entities.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        #expect(try StandardValidators.smartDataModel("Alert", documents) == nil)
        let normalized = try #require(try JSONSerialization.jsonObject(with: try await get("/ngsi-ld/v1/entities?type=Alert", link: true).1) as? [[String: Any]])
        #expect(try StandardValidators.ngsild("Entity", try normalized.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }) == nil)

        // SIGHUP: an invalid file keeps the rules running; a file without the rule clears its open alert.
        try "rules:\n  - name: Bad Name\n    silent: 1m\n".write(to: rulesFile, atomically: true, encoding: .utf8)
        kill(aggregator.process.processIdentifier, SIGHUP)
        let log = folder.appendingPathComponent("aggregator.log")
        try await waitUntil(.seconds(10)) { (try? String(contentsOf: log, encoding: .utf8))?.contains("rules not reloaded") == true }
        #expect(try String(contentsOf: log, encoding: .utf8).contains("rules not reloaded"))
        #expect(try await alerts("").count == 1)
        try Self.rules(withLevel: false).write(to: rulesFile, atomically: true, encoding: .utf8)
        kill(aggregator.process.processIdentifier, SIGHUP)
        try await waitUntil(.seconds(10)) { receiver.received().contains { $0.body.contains("\"msgType\":\"Cancel\"") && $0.body.contains(id) } }
        #expect(try await alerts("").isEmpty)
        #expect(receiver.received().contains { $0.body.contains("\"msgType\":\"Cancel\"") && $0.body.contains(id) })
        // The twin's entity says it ended.
        let entity = try await get("/ngsi-ld/v1/entities/urn:ngsi-ld:Alert:\(id)?options=keyValues", link: true)
        let object = try #require(try JSONSerialization.jsonObject(with: entity.1) as? [String: Any])
        #expect(object["validTo"] != nil && (object["data"] as? [String: Any])?["status"] as? String == "cleared")
    }

    static func id(of json: String) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])?["id"] as? String
    }
}

/// `gemello rules check` and `gemello rules test` as an operator runs them.
@Suite struct RulesCLITests {
    static func gemello(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let binary = Repository.root.appendingPathComponent(".build/debug/gemello")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else { throw FleetTests.CLIMissing(path: binary.path) }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.currentDirectoryURL = Repository.root
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        for _ in 0..<600 where process.isRunning { usleep(20_000) }
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func checkAcceptsTheShippedRulesAndRefusesABadFileWithItsLineAndFix() throws {
        let good = try Self.gemello(["rules", "check", "aggregator-config/rules.yaml"])
        #expect(good.status == 0 && good.output.contains("7 rules, valid"), "\(good.output)")
        let file = try Repository.temporaryFolder("rules-cli").appendingPathComponent("rules.yaml")
        try "rules:\n  - name: level\n    match:\n      attribute: level\n    mean:\n      above: 2\n".write(to: file, atomically: true, encoding: .utf8)
        let bad = try Self.gemello(["rules", "check", file.path])
        #expect(bad.status == 78)
        #expect(bad.output.contains("rules.yaml:6") && bad.output.contains("rules[0].mean.window") && bad.output.contains("Fix:"), "\(bad.output)")
    }

    @Test func testReplaysADatasetAndPrintsWhatWouldFire() throws {
        let run = try Self.gemello(["rules", "test", "aggregator-config/rules.yaml", "--replay", "agent-config/replay-solar-node.yaml"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("RAISED   battery-low  replay-solar-node/eno-3b06/batteryLevel"), "\(run.output)")
        #expect(run.output.contains("34872 readings judged by 7 rules"))
        #expect(run.output.contains("battery-low: raised 1, cleared 1"))
    }
}
