import GemelloCore
import Foundation
import GemelloAgent
import GemelloAggregator
import GemelloNGSILD
import GemelloTesting
import Logging
import ServiceLifecycle
import Testing

/// The notification endpoint is down for 30 s while a real agent delivers through a real
/// mosquitto: afterwards the receiver has every change exactly as the twin recorded it.
@Suite(.serialized) struct NGSILDOutageTests {
    @Test(.timeLimit(.minutes(3)))
    func everyChangeArrivesAfterA30SecondOutage() async throws {
        let broker = try BrokerHarness()
        defer { broker.stop() }
        let receiver = try NotificationReceiver()
        let folder = try Repository.temporaryFolder("outage")
        var logger = Logger(label: "outage")
        logger.logLevel = .critical
        var configuration = AggregatorConfiguration(broker: broker.url, clientID: "aggregator-outage",
                                                    storePath: folder.appendingPathComponent("twin.sqlite").path, httpPort: 0)
        let store = try TestStore.open(&configuration)
        let counters = IngestCounters()
        let twin = try await Twin.open(store: store, configuration: configuration, counters: counters, logger: logger)
        let ingest = IngestService(configuration: configuration, store: store, counters: counters, projection: twin.projection, logger: logger)
        let aggregator = ServiceGroup(configuration: .init(services: [.init(service: ingest), .init(service: twin.notifications)], logger: logger))

        let sdm = twin.broker.contexts.smartDataModels
        _ = try await twin.broker.createSubscription([
            "type": "Subscription", "id": "urn:ngsi-ld:Subscription:solar",
            "entities": [["type": "DeviceMeasurement"]],
            "notification": ["endpoint": ["uri": .string(receiver.url)]],
        ], context: sdm, contextReference: .string(ContextResolver.smartDataModelsContextURL))

        // ~44 s of replay (51 days of data at 100,000×): changes before, during and after the outage.
        var agentConfiguration = try solarReplayConfiguration(broker: broker.url, folder: folder)
        guard var replay = agentConfiguration.inputs[0].options as? CSVReplayInput.Configuration else { return }
        replay.speed = 100_000
        agentConfiguration.inputs[0] = InputConfiguration(replay)
        let agent = try Agent(configuration: agentConfiguration, logger: logger)
        let agentGroup = try agent.makeServiceGroup(signals: [])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await aggregator.run() }
            group.addTask { try await agentGroup.run() }
            try await Task.sleep(for: .seconds(6))
            #expect(!receiver.received().isEmpty, "notifications arrive before the outage")
            receiver.stop()
            let downSince = ContinuousClock.now
            try await Task.sleep(for: .seconds(30))
            #expect(twin.subscriptions.queued > 0, "the outbox holds what could not be delivered")
            let readingsDuringOutage = try store.totals().readings
            try receiver.start()
            #expect(ContinuousClock.now - downSince >= .seconds(30))
            try await waitUntil(.seconds(90)) {
                agent.counters.accepted.load(ordering: .relaxed) == DeliveryTests.solarReadings
                    && agent.buffer.bufferedReadings == 0 && twin.subscriptions.queued == 0
            }
            #expect(readingsDuringOutage > 0)
            await agentGroup.triggerGracefulShutdown()
            await aggregator.triggerGracefulShutdown()
            try await group.waitForAll()
        }
        #expect(try store.totals().readings == DeliveryTests.solarReadings)
        #expect(twin.subscriptions.queued == 0 && twin.subscriptions.droppedTotal == 0)

        // Every notified state, in arrival order; a redelivery after a lost response repeats a state.
        var states: [JSON] = []
        var seen = Set<String>()
        for notification in receiver.received() {
            let body = try JSON.parse(notification.body)
            #expect(body["subscriptionId"] == "urn:ngsi-ld:Subscription:solar")
            for entity in body["data"]?.arrayValue ?? [] where seen.insert(entity.serialized).inserted { states.append(entity) }
        }
        // One change per commit that stored the agent's batches (batches that queued up together
        // commit together: one change), in order.
        let batches = try store.fleet(now: 0, policy: configuration.fleet).first { $0.id == "replay-solar-node" }?.batchesReceived ?? 0
        #expect(Int64(states.count) == counters.commits.load(ordering: .relaxed))
        #expect(states.count > 0 && Int64(states.count) <= batches)
        let observed = states.compactMap { $0["temperature"]?["observedAt"]?.stringValue }
        #expect(observed == observed.sorted(), "changes arrive in order")
        // Each notified value is the twin's: in the series' history at its time; the last is the twin now.
        let history = try store.history(agent: "replay-solar-node", series: "eno-3b06/temperature")
        let recorded = Set(history.map { "\(DateTime.string(milliseconds: $0.timestamp)) \($0.value)" })
        for state in states {
            guard let t = state["temperature"] else { continue }
            #expect(recorded.contains("\(t["observedAt"]?.stringValue ?? "") \(t["value"]?.numberValue ?? .nan)"))
        }
        let now = try #require(twin.broker.entity(id: "urn:ngsi-ld:DeviceMeasurement:replay-solar-node:eno-3b06"))
        var renderer = EntityRenderer(context: sdm)
        renderer.format = .normalized
        #expect(states.last == renderer.render(now))
        try TwinAPI.expectValid("Notification", receiver.received().prefix(20).map { try JSON.parse($0.body) })
        receiver.stop()
    }
}
