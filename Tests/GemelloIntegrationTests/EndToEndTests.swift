import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GemelloAgent
import GemelloAggregator
import GemelloAggregatorHTTP
import GemelloCore
import GemelloNGSILD
import GemelloStorage
import GemelloTesting
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@Suite(.serialized) struct EndToEndTests {
    /// The Milan CSV read independently of the agent: per column, (UTC ms, value) of every non-empty cell.
    static func milanColumns() throws -> [String: [(Int64, Double)]] {
        let text = try String(contentsOf: Repository.dataset("milano_senato_arpa_hourly_2017_2021.csv"), encoding: .utf8)
        let parser = ISO8601DateFormatter()
        var columns: [String: [(Int64, Double)]] = [:]
        for line in text.split(whereSeparator: \.isNewline).dropFirst() {
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let date = try #require(parser.date(from: "\(cells[0])T\(cells[1])Z"))
            let millis = Int64(date.timeIntervalSince1970 * 1000)
            for (index, name) in [(2, "pm25"), (3, "temperature"), (4, "windSpeed"), (5, "precipitation")] where !cells[index].isEmpty {
                columns[name, default: []].append((millis, try #require(Double(cells[index]))))
            }
        }
        return columns
    }

    /// Where two sequences first differ ("index: ours vs theirs"), or nil; keeps failures readable.
    static func firstDifference(_ a: [String], _ b: [String]) -> String? {
        for index in 0..<max(a.count, b.count) where index >= a.count || index >= b.count || a[index] != b[index] {
            return "\(index): \(index < a.count ? a[index] : "end") vs \(index < b.count ? b[index] : "end") (counts \(a.count), \(b.count))"
        }
        return nil
    }

    static func logger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = ProcessInfo.processInfo.environment["GEMELLO_TEST_LOG"] == nil ? .warning : .debug
        return logger
    }

    static func get(_ url: String, link: String? = nil) async throws -> Data {
        var request = URLRequest(url: URL(string: url)!)
        if let link { request.setValue("<\(link)>; rel=\"http://www.w3.org/ns/json-ld#context\"", forHTTPHeaderField: "Link") }
        let (data, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        return data
    }

    @Test(.timeLimit(.minutes(5)), arguments: StoreDialect.allCases)
    func wholeMilanDatasetReachesTheTwinExactlyOnce(store kind: StoreDialect) async throws {
        let broker = try BrokerHarness()
        let folder = try Repository.temporaryFolder("e2e")

        var aggregatorConfiguration = AggregatorConfiguration(
            broker: broker.url, clientID: "aggregator-e2e", storePath: folder.appendingPathComponent("twin.sqlite").path, httpPort: 0)
        aggregatorConfiguration.fleet = FleetStatusPolicy(staleAfter: .seconds(30), offlineAfter: .seconds(120))
        let store = try TestStore.open(&aggregatorConfiguration, kind: kind)
        let counters = IngestCounters()
        let twin = try await Twin.open(store: store, configuration: aggregatorConfiguration, counters: counters, logger: Self.logger("twin"))
        let ingest = IngestService(configuration: aggregatorConfiguration, store: store, counters: counters,
                                   projection: twin.projection, logger: Self.logger("ingest"))
        let httpPort = Mutex<Int?>(nil)
        let http = try AggregatorHTTP.application(store: store, broker: twin.broker, counters: counters, configuration: aggregatorConfiguration,
                                              logger: Self.logger("http")) { port in httpPort.withLock { $0 = port } }
        let aggregator = ServiceGroup(configuration: .init(services: [.init(service: ingest), .init(service: http)], logger: Self.logger("aggregator")))

        var configuration = try AgentConfiguration.load(path: Repository.root.appendingPathComponent("agent-config/replay-milano-arpa.yaml").path)
        guard var replay = configuration.inputs[0].options as? CSVReplayInput.Configuration else { Issue.record("expected a replay input"); return }
        replay.speed = nil
        configuration.inputs[0] = InputConfiguration(replay)
        configuration.broker.url = broker.url
        configuration.buffer.path = folder.appendingPathComponent("agent.sqlite").path
        configuration.publisher.drainTimeout = .seconds(60)
        configuration.healthInterval = .seconds(1)
        let agent = try Agent(configuration: configuration, logger: Self.logger("agent"))
        let agentGroup = try agent.makeServiceGroup(signals: [])

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await aggregator.run() }
            // Start the agent once the aggregator listens, so no batch waits for a resend.
            let ready = ContinuousClock.now + .seconds(20)
            while !counters.subscribed.load(ordering: .relaxed) && ContinuousClock.now < ready { try await Task.sleep(for: .milliseconds(20)) }
            let isSubscribed = counters.subscribed.load(ordering: .relaxed)
            #expect(isSubscribed)
            group.addTask { try await agentGroup.run() }

            let deadline = ContinuousClock.now + .seconds(240)
            while try store.totals().readings < 172_800 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
            }
            let port = try #require(httpPort.withLock { $0 })
            let base = "http://127.0.0.1:\(port)"
            let fleet = try JSONDecoder().decode([FleetAgentSummary].self, from: try await Self.get("\(base)/fleet"))
            #expect(fleet.map(\.id) == ["replay-milano-arpa"])
            #expect(fleet.first?.status == .online)
            let entityID = "urn:ngsi-ld:WeatherObserved:replay-milano-arpa:arpa-senato"
            let entity = try JSONSerialization.jsonObject(with: try await Self.get("\(base)/ngsi-ld/v1/entities/\(entityID)",
                                                                                   link: ContextResolver.smartDataModelsContextURL)) as? [String: Any]
            let temperature = entity?["temperature"] as? [String: Any]
            #expect(temperature?["unitCode"] as? String == "CEL")
            #expect(temperature?["observedAt"] as? String == "2021-12-31T22:00:00.000Z")

            await agentGroup.triggerGracefulShutdown()
            // The agent says goodbye on a clean stop: the fleet shows it offline.
            let offlineDeadline = ContinuousClock.now + .seconds(30)
            while try store.fleet(now: SystemWallClock().nowMilliseconds(), policy: aggregatorConfiguration.fleet).first?.status != .offline,
                  ContinuousClock.now < offlineDeadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(try store.fleet(now: SystemWallClock().nowMilliseconds(), policy: aggregatorConfiguration.fleet).first?.status == .offline)
            await aggregator.triggerGracefulShutdown()
            try await group.waitForAll()
        }

        // Exactly once: totals, per-series counts, and every (time, value) pair against the CSV.
        #expect(agent.counters.accepted.load(ordering: .relaxed) == 172_800)
        #expect(agent.counters.delivered.load(ordering: .relaxed) == 172_800)
        #expect(agent.buffer.bufferedReadings == 0)
        let totals = try store.totals()
        #expect(totals.readings == 172_800)
        #expect(totals.duplicates == 0 && totals.rejected == 0)
        let expected = try Self.milanColumns()
        let counts = try store.seriesCounts(agent: "replay-milano-arpa")
        for (attribute, cells) in expected {
            #expect(counts["arpa-senato/\(attribute)"] == Int64(cells.count), "count of \(attribute)")
            let history = try store.history(agent: "replay-milano-arpa", series: "arpa-senato/\(attribute)")
            #expect(Self.firstDifference(history.map { "\($0.timestamp) \($0.value)" }, cells.map { "\($0.0) \($0.1)" }) == nil,
                    "history of \(attribute) differs from the CSV")
        }
        #expect(expected.values.map(\.count).reduce(0, +) == 172_800)
        broker.stop()
    }
}
