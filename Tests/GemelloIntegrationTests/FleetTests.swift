import Foundation
import GemelloAgent
import GemelloAggregator
import GemelloAggregatorHTTP
import GemelloCore
import GemelloMosquitto
import GemelloTesting
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing

/// The fleet view against a real mosquitto: a real `gemello-agent` process killed with SIGKILL or
/// frozen with SIGSTOP (a cut link: its socket stays open) goes offline through its Last Will, and
/// a restart comes back online with a new epoch; `/metrics` parses with a real Prometheus parser.
@Suite(.serialized) struct FleetTests {
    /// Long enough that the stale phase (from 5 s of silence, the floor) shows well before
    /// offline at 1.5× keepalive = 12 s, even when the loaded test machine delays the monitor.
    static let keepAlive = 8

    /// An aggregator in the test process: ingest, fleet monitor, HTTP with `/metrics`.
    final class Aggregator: Sendable {
        let group: ServiceGroup
        let store: TwinStore
        let counters: IngestCounters
        /// The HTTP port once bound (0 before).
        let port: BoundPort
        let configuration: AggregatorConfiguration

        init(broker: String, folder: URL, agentLabels: Int = 50) async throws {
            var configuration = AggregatorConfiguration(broker: broker, clientID: "aggregator-fleet",
                                                        storePath: folder.appendingPathComponent("twin.sqlite").path, httpPort: 0)
            configuration.metricsAgentLabels = agentLabels
            let logger = EndToEndTests.logger("aggregator")
            store = try TestStore.open(&configuration)
            counters = IngestCounters()
            let registry = PrometheusCollectorRegistry()
            let metrics = AggregatorMetrics(factory: PrometheusMetricsFactory(registry: registry), agentLabelLimit: agentLabels)
            let twin = try await Twin.open(store: store, configuration: configuration, counters: counters, logger: logger)
            let ingest = IngestService(configuration: configuration, store: store, counters: counters, metrics: metrics,
                                       projection: twin.projection, logger: logger)
            let monitor = FleetMonitor(store: store, configuration: configuration, counters: counters, metrics: metrics,
                                       interval: .milliseconds(200), logger: logger)
            let compactor = HistoryCompactor(store: store, policy: configuration.history, interval: .milliseconds(200), metrics: metrics,
                                             maintenanceInterval: .milliseconds(200), logger: logger)
            let port = BoundPort()
            let http = try AggregatorHTTP.application(store: store, broker: twin.broker, counters: counters, configuration: configuration, metrics: registry,
                                                  logger: logger) { bound in port.value.store(bound, ordering: .relaxed) }
            group = ServiceGroup(configuration: .init(services: [.init(service: ingest), .init(service: monitor), .init(service: compactor),
                                                                 .init(service: http)],
                                                      logger: logger))
            self.port = port
            self.configuration = configuration
        }

        func agent(_ id: String) throws -> FleetAgentSummary? {
            let now = SystemWallClock().nowMilliseconds()
            return try store.fleet(now: now, policy: configuration.fleet, hearing: counters.hearing(now: now))
                .first { $0.id == id }
        }

        func waitForListening() async throws {
            try await waitUntil(.seconds(20)) { counters.subscribed.load(ordering: .relaxed) && port.value.load(ordering: .relaxed) != 0 }
        }
    }

    /// Starts the built `gemello-agent` with a small simulated config on `broker`.
    static func startAgent(id: String, broker: String, folder: URL) throws -> Process {
        let binary = Repository.root.appendingPathComponent(".build/debug/gemello-agent")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw CLIMissing(path: binary.path)
        }
        let config = folder.appendingPathComponent("\(id).yaml")
        try """
            agent-id: \(id)
            site:
              id: test-site
              kind: fiber-node
              latitude: 45.47
              longitude: 9.18
            broker: \(broker)
            buffer:
              path: \(folder.appendingPathComponent("\(id).sqlite").path)
            publisher:
              keepalive: \(keepAlive)s
            health-interval: 1s
            inputs:
              - type: simulated
                sensor: sewer
                profile: sewer
                interval: 200ms
            """.write(to: config, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = binary
        process.arguments = ["--config", config.path, "--log-level", "warning"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    final class BoundPort: Sendable { let value = Atomic<Int>(0) }

    struct CLIMissing: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path) is not built. Fix: run 'swift build' (ops/test does) before 'swift test --skip-build'" }
    }

    /// Seconds until `condition` holds for agent `id` (fails the test past `limit`).
    static func secondsUntil(_ aggregator: Aggregator, _ id: String, limit: Duration,
                             _ condition: (FleetAgentSummary) -> Bool) async throws -> Double {
        let start = ContinuousClock.now
        try await waitUntil(limit) { try aggregator.agent(id).map(condition) ?? false }
        let elapsed = (ContinuousClock.now - start).seconds
        #expect(try aggregator.agent(id).map(condition) == true, "agent \(id) not as expected after \(elapsed) s")
        return elapsed
    }

    @Test(.timeLimit(.minutes(2)))
    func aKilledOrCutOffAgentIsOfflineWithinKeepaliveAndBackWithANewEpoch() async throws {
        let broker = try BrokerHarness()
        let folder = try Repository.temporaryFolder("fleet-liveness")
        let aggregator = try await Aggregator(broker: broker.url, folder: folder)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await aggregator.group.run() }
            try await aggregator.waitForListening()
            let limit = Duration.milliseconds(Self.keepAlive * 1500)

            // kill -9: the kernel closes the socket, the broker publishes the will at once.
            let first = try Self.startAgent(id: "sewer-1", broker: broker.url, folder: folder)
            _ = try await Self.secondsUntil(aggregator, "sewer-1", limit: .seconds(20)) { $0.status == .online && $0.health != nil }
            let firstEpoch = try #require(try aggregator.agent("sewer-1")).bootEpoch
            kill(first.processIdentifier, SIGKILL)
            first.waitUntilExit()
            let killed = try await Self.secondsUntil(aggregator, "sewer-1", limit: limit) { $0.status == .offline }
            #expect(killed < limit.seconds)

            // Restarted: online again with a new epoch.
            let second = try Self.startAgent(id: "sewer-1", broker: broker.url, folder: folder)
            _ = try await Self.secondsUntil(aggregator, "sewer-1", limit: .seconds(20)) { $0.status == .online }
            let secondEpoch = try #require(try aggregator.agent("sewer-1")).bootEpoch
            #expect(secondEpoch > firstEpoch)

            // SIGSTOP: the process and its socket stay, nothing more is sent, as when the link is
            // cut. mosquitto notices only some seconds after 1.5× keepalive; the registry's own
            // keepalive rule says offline at 1.5× (the will, arriving later, changes nothing).
            try await Task.sleep(for: .seconds(1))  // let the agent's last ping/health go out
            // Freeze while our ingest keeps up (the other suites load the CI cores): the agent's
            // last messages are then stored at once, and the clock below measures the registry.
            try await waitUntil(.seconds(10)) {
                let hearing = aggregator.counters.hearing(now: SystemWallClock().nowMilliseconds())
                return try hearing.lag < 250 && (aggregator.agent("sewer-1")?.secondsSinceLastSeen ?? 99) < 1.5
            }
            kill(second.processIdentifier, SIGSTOP)
            let frozenAt = ContinuousClock.now
            let cut = try await Self.secondsUntil(aggregator, "sewer-1", limit: limit + .seconds(4)) { $0.status == .offline }
            // 11.1–12.0 s on a quiet machine (8 s keepalive); the slack covers the aggregator's processing lag while
            // the other suites load the 2 CI cores (its last message may be stored late; 14.65 s seen once since
            // every commit is synced to disk).
            #expect((ContinuousClock.now - frozenAt) <= limit + .milliseconds(3500))
            kill(second.processIdentifier, SIGKILL)
            second.waitUntilExit()

            // The status is computed on read; the monitor records the transition on its next tick.
            func detail() throws -> FleetAgentDetail? {
                try aggregator.store.agentDetail(id: "sewer-1", now: SystemWallClock().nowMilliseconds(), policy: aggregator.configuration.fleet)
            }
            try await waitUntil(.seconds(2)) { try detail()?.transitions.first?.to == .offline }
            let detail = try #require(try detail())
            // Newest first. Frozen: stale after 3 missed heartbeats, then offline. Before the freeze
            // the second session may flap stale/online when the CI cores are saturated (its health
            // reports arrive late); it starts with its birth. Killed: offline at once by the will.
            let session = detail.transitions.prefix { $0.bootEpoch == secondEpoch }
            #expect(session.map(\.to).prefix(2) == [.offline, .stale], "\(session.map(\.to))")
            #expect(session.last?.to == .online, "\(session.map(\.reason))")
            #expect(session.dropFirst(2).allSatisfy { $0.to != .offline })
            // Whichever says it first: the keepalive rule or the broker's will (mosquitto checks every few seconds).
            let verdict = detail.transitions.first?.reason ?? ""
            #expect(verdict == "last will" || verdict.hasPrefix("silent"), "\(verdict)")
            let killedSession = detail.transitions.dropFirst(session.count).first
            #expect(killedSession?.bootEpoch == firstEpoch && killedSession?.to == .offline && killedSession?.reason == "last will",
                    "\(String(describing: killedSession))")
            #expect(detail.healthHistory.contains { $0.rssBytes != nil && $0.diskFreeBytes != nil && $0.bufferedBytes != nil })
            print("fleet liveness: kill -9 → offline in \(String(format: "%.2f", killed)) s; "
                  + "SIGSTOP → offline in \(String(format: "%.2f", cut)) s (keepalive \(Self.keepAlive) s × 1.5 = \(limit.seconds) s)")
            await aggregator.group.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func metricsParseWithPrometheusClientAndBoundAgentLabels() async throws {
        let broker = try BrokerHarness()
        let folder = try Repository.temporaryFolder("fleet-metrics")
        let aggregator = try await Aggregator(broker: broker.url, folder: folder, agentLabels: 2)
        let agent = try Agent(configuration: try solarReplayConfiguration(broker: broker.url, folder: folder),
                              logger: EndToEndTests.logger("agent"))
        let agentGroup = try agent.makeServiceGroup(signals: [])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await aggregator.group.run() }
            try await aggregator.waitForListening()
            group.addTask { try await agentGroup.run() }
            // Two more agents that only announce themselves, with backlogs, and one garbage batch.
            let client = try MQTTClient(options: .init(clientID: "fleet-metrics-fakes"))
            try await client.start(broker: try #require(BrokerAddress(url: broker.url)))
            let site = Site(id: "x", kind: .fiveGTower, latitude: 45.5, longitude: 9.2)
            for (id, backlog) in [("fake-big", Int64(500_000)), ("fake-small", Int64(400_000))] {
                try client.publish(topic: Topics.birth(agent: id),
                                   payload: Array(AgentBirth(agentID: id, bootEpoch: 1, version: "t", site: site, sensors: [], time: 0).json().utf8))
                let health = AgentHealth(agentID: id, bootEpoch: 1, time: 0, uptimeSeconds: 1, readingsAccepted: backlog,
                                         readingsDelivered: 0, readingsBuffered: backlog)
                try client.publish(topic: Topics.health(agent: id), payload: Array(health.json().utf8))
            }
            try client.publish(topic: Topics.data(agent: "fake-small"), payload: [1, 2, 3])
            try await waitUntil(.seconds(60)) { try aggregator.store.totals().readings >= 34_872 && aggregator.store.totals().rejected >= 1 }
            try await Task.sleep(for: .milliseconds(500))  // one monitor tick for the fleet gauges

            let port = aggregator.port.value.load(ordering: .relaxed)
            let text = try await EndToEndTests.get("http://127.0.0.1:\(port)/metrics")
            let samples = try Self.parseWithPrometheusClient(text)
            func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
                samples.first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?.value
            }
            #expect(value("gemello_ingest_readings_total") == 34_872)
            #expect((value("gemello_ingest_batches_total") ?? 0) >= 35)
            #expect(value("gemello_ingest_rejected_batches_total") == 1)
            #expect(value("gemello_ingest_duplicate_batches_total") == 0)
            #expect(value("gemello_ingest_store_failures_total") == 0)
            // One store timing per commit: batches that queued up together commit together.
            let commits = value("gemello_ingest_store_seconds_count") ?? 0
            #expect(commits >= 1 && commits <= (value("gemello_ingest_batches_total") ?? 0) + 1)
            // The history's size, as the compactor last measured it (every 200 ms here).
            #expect(value("gemello_history_readings") == 34_872)
            #expect((value("gemello_history_bytes") ?? 0) > 0 && (value("gemello_history_bytes") ?? 0) < 34_872 * 4)
            #expect((value("gemello_batch_latency_seconds_count") ?? 0) >= 35)
            #expect(value("gemello_agents", ["status": "online"]) == 3)
            #expect(value("gemello_agents", ["status": "offline"]) == 0)
            // Bounded cardinality: two agent series (the largest backlogs), the third counted as omitted.
            let labelled = Set(samples.filter { $0.name == "gemello_agent_buffered_readings" }.compactMap { $0.labels["agent"] })
            #expect(labelled == ["fake-big", "fake-small"])
            #expect(value("gemello_agent_buffered_readings", ["agent": "fake-big"]) == 500_000)
            #expect(value("gemello_agent_series_omitted") == 1)
            client.disconnect()
            await agentGroup.triggerGracefulShutdown()
            try await Task.sleep(for: .seconds(1))
            await aggregator.group.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }

    struct Sample: Decodable {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    /// Parses the exposition with Python's `prometheus_client` (the reference parser), not ours.
    static func parseWithPrometheusClient(_ exposition: Data) throws -> [Sample] {
        let script = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = []
            for family in text_string_to_metric_families(sys.stdin.read()):
                for s in family.samples:
                    out.append({"name": s.name, "labels": s.labels, "value": s.value})
            print(json.dumps(out))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let input = Pipe(), output = Pipe(), error = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error
        try process.run()
        input.fileHandleForWriting.write(exposition)
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let problem = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ParseFailure(description: "prometheus_client could not parse /metrics (or is missing: pip install prometheus_client): \(problem)")
        }
        return try JSONDecoder().decode([Sample].self, from: data)
    }

    struct ParseFailure: Error, CustomStringConvertible { let description: String }
}
