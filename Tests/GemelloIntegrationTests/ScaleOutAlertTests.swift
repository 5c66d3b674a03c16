import Foundation
import GemelloAgent
@testable import GemelloAggregator
import GemelloCore
import GemelloRules
import GemelloTesting
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// Alert rules in a share group (docs/alerts.md, docs/scale-out.md): two aggregators on one
/// PostgreSQL store, a real mosquitto handing each batch of the solar node's replay to one of
/// them. Each member takes over an agent's rule state from the store when the other judged it
/// since, so the alerts are exactly those one aggregator judging every reading would raise
/// (threshold and 1 h mean episodes, same times), and the one webhook sink (delivered by one member
/// at a time) gets each message once.
@Suite struct ScaleOutAlertTests {
    static let rules = """
        rules:
          - name: warm
            match:
              attribute: temperature
            threshold:
              above: 30
              clear-below: 28
          - name: warm-hour
            match:
              attribute: temperature
            mean:
              window: 1h
              above: 29
              clear-below: 27
        """

    final class Member: Sendable {
        let counters = IngestCounters()
        let store: TwinStore
        let alerts: AlertEngine
        let group: ServiceGroup

        init(_ id: String, broker: String, store url: String, alerts configuration: AlertsConfiguration) async throws {
            var c = AggregatorConfiguration(broker: broker, clientID: id, storePath: "-", httpPort: 0)
            try c.overrideStore(url)
            c.shareGroup = "alerts"
            c.alerts = configuration
            let logger = EndToEndTests.logger(id)
            store = try TwinStore.open(c)
            alerts = try AlertEngine(store: store, configuration: configuration, projection: nil, counters: counters, metrics: nil,
                                     shared: true, logger: logger)
            let ingest = IngestService(configuration: c, store: store, counters: counters, alerts: alerts, logger: logger)
            let sinks = SinkDispatcher(store: store, outbox: alerts.outbox, owner: id, logger: logger)
            group = ServiceGroup(configuration: .init(services: [.init(service: ingest), .init(service: alerts), .init(service: sinks)],
                                                      logger: logger))
        }
    }

    /// What one engine judging every reading in order raises: (rule, raised, cleared) per episode.
    static func expected(_ set: RuleSet) async throws -> Set<String> {
        let configuration = try solarReplayConfiguration(broker: "mqtt://127.0.0.1:1", folder: try Repository.temporaryFolder("expected"))
        guard let replay = configuration.inputs[0].options as? CSVReplayInput.Configuration else { return [] }
        final class Collect: ReadingSink, @unchecked Sendable {
            // @unchecked: the replay calls accept() from one task, one call at a time.
            var readings: [Reading] = []
            func accept(_ batch: [Reading], checkpoint: InputCheckpoint?) async throws { readings += batch }
        }
        let sink = Collect()
        _ = try await CSVReplayInput(configuration: replay).run(into: sink, resumingFrom: nil)
        var engine = RuleEngine(rules: set.rules)
        var book = AlertBook()
        var events: [RuleEvent] = []
        for (info, list) in Dictionary(grouping: sink.readings, by: \.series) {
            let ref = SeriesRef(agent: configuration.agentID, sensor: String(info.sensor), attribute: String(info.attribute),
                                entityType: replay.sensor.entityType, unit: info.unit)
            let sorted = list.sorted { $0.timestamp < $1.timestamp }
            let slot = engine.slot(ref, now: 0)
            engine.observe(slot, times: sorted.map(\.timestamp), values: sorted.map(\.value), now: 0, into: &events)
        }
        for e in events { book.apply(e, rule: engine.rules[e.rule], now: 0, location: nil) }
        return Set(book.drain().alerts.map { "\($0.rule) \($0.raisedAt) \($0.clearedAt ?? -1)" })
    }

    @Test(.timeLimit(.minutes(4)))
    func twoMembersJudgeOneAgentAsOneWould() async throws {
        let broker = try BrokerHarness()
        defer { broker.stop() }
        let receiver = try NotificationReceiver()
        defer { receiver.stop() }
        let folder = try Repository.temporaryFolder("scale-out-alerts")
        let rulesFile = folder.appendingPathComponent("rules.yaml")
        try Self.rules.write(to: rulesFile, atomically: true, encoding: .utf8)
        var configuration = AlertsConfiguration()
        configuration.rulesPath = rulesFile.path
        var sink = AlertsConfiguration.Sink(name: "control-room", kind: .webhook)
        sink.url = receiver.url
        sink.format = .json
        configuration.sinks = [sink]
        let expected = try await Self.expected(try RuleSet.load(path: rulesFile.path))
        #expect(expected.count >= 30)

        let url = try PostgresHarness.shared().makeDatabase("scaleout-alerts")
        let a = try await Member("alerts-a", broker: broker.url, store: url, alerts: configuration)
        let b = try await Member("alerts-b", broker: broker.url, store: url, alerts: configuration)
        var agentConfiguration = try solarReplayConfiguration(broker: broker.url, folder: folder)
        // Small batches, one in flight: the members take turns on one agent in its readings' order,
        // each taking the agent's rule state over from the store when the other judged it last.
        agentConfiguration.publisher.batchSize = 200
        agentConfiguration.publisher.maxInFlight = 1
        let agent = try Agent(configuration: agentConfiguration, logger: EndToEndTests.logger("agent"))
        let agentGroup = try agent.makeServiceGroup(signals: [])

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await a.group.run() }
            group.addTask { try await b.group.run() }
            try await waitUntil(.seconds(20)) { a.counters.subscribed.load(ordering: .relaxed) && b.counters.subscribed.load(ordering: .relaxed) }
            group.addTask { try await agentGroup.run() }
            try await waitUntil(.seconds(120)) {
                a.counters.readings.load(ordering: .relaxed) + b.counters.readings.load(ordering: .relaxed) >= 34_872
            }
            // Both members took part.
            #expect(a.counters.batches.load(ordering: .relaxed) > 5 && b.counters.batches.load(ordering: .relaxed) > 5)
            let stored = try a.store.alerts(includeCleared: true, limit: 10_000)
            let found = Set(stored.map { "\($0.rule) \($0.raisedAt) \($0.clearedAt ?? -1)" })
            #expect(found == expected, "missing \(expected.subtracting(found).sorted().prefix(5)), extra \(found.subtracting(expected).sorted().prefix(5))")
            // Every message once at the one sink (a lease: one member delivers at a time).
            let sent = Set(stored.flatMap { alert in (0..<alert.revision).map { "\(alert.id).\($0)" } })
            try await waitUntil(.seconds(30)) { Set(receiver.received().compactMap { $0.headers["X-Gemello-Message-Id"] }) == sent }
            let ids = receiver.received().compactMap { $0.headers["X-Gemello-Message-Id"] }
            #expect(Set(ids) == sent)
            #expect(ids.count - Set(ids).count <= 1)
            await agentGroup.triggerGracefulShutdown()
            await a.group.triggerGracefulShutdown()
            await b.group.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }
}
