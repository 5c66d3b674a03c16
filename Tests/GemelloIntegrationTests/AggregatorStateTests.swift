import Foundation
import GemelloAgent
import GemelloAggregator
import GemelloCore
import GemelloMosquitto
import GemelloTesting
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@Suite(.serialized) struct AggregatorStateTests {
    @Test func parsesAndWritesTheRetainedState() {
        let online = AggregatorState(online: true, time: 1_700_000_000_000)
        #expect(AggregatorState.parse(Array(online.json().utf8)) == online)
        #expect(AggregatorState.parse(Array(AggregatorState(online: false, time: 0).json().utf8))?.online == false)
        #expect(AggregatorState.parse(Array("{\"online\":maybe,\"time\":1}".utf8)) == nil)
        #expect(AggregatorState.parse([]) == nil)
    }

    /// After the aggregator stops, its retained state says offline: a running agent keeps every
    /// new batch in its own buffer (nothing is published into the broker), and delivers them all
    /// once an aggregator announces itself online again.
    @Test(.timeLimit(.minutes(2)))
    func agentsHoldBatchesWhileTheAggregatorIsOffline() async throws {
        let broker = try BrokerHarness()
        let folder = try Repository.temporaryFolder("state")
        var logger = Logger(label: "state")
        logger.logLevel = .critical
        let store = try TestStore.open(path: folder.appendingPathComponent("twin.sqlite").path)
        func aggregator() -> (ServiceGroup, IngestCounters) {
            inProcessAggregator(broker: broker.url, store: store, clientID: "aggregator-state", logger: logger)
        }

        // 1. An aggregator comes and goes: its retained state is now "offline".
        let (first, firstCounters) = aggregator()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await first.run() }
            while !firstCounters.subscribed.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(20)) }
            await first.triggerGracefulShutdown()
            try await group.waitForAll()
        }

        // 2. An agent replays the solar node (34,872 readings); a spy counts data messages.
        let spy = try MQTTClient(options: .init(clientID: "spy"))
        try await spy.start(broker: BrokerAddress(url: broker.url)!)
        let published = Atomic<Int>(0)
        for await event in spy.events { if case .connected = event { break } }
        _ = try spy.subscribe("\(Topics.root)/+/data")
        let spyTask = Task { for await event in spy.events { if case .message = event { published.add(1, ordering: .relaxed) } } }

        let configuration = try solarReplayConfiguration(broker: broker.url, folder: folder)
        let agent = try Agent(configuration: configuration, logger: logger)
        let agentGroup = try agent.makeServiceGroup(signals: [])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await agentGroup.run() }
            let deadline = ContinuousClock.now + .seconds(30)
            while agent.buffer.bufferedReadings < 34_872 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
            try await Task.sleep(for: .seconds(2))
            #expect(agent.buffer.bufferedReadings == 34_872)
            #expect(published.load(ordering: .relaxed) == 0, "batches were published while the aggregator was offline")

            // 3. The aggregator is back: everything is delivered.
            let (second, _) = aggregator()
            group.addTask { try await second.run() }
            let drained = ContinuousClock.now + .seconds(60)
            while try store.totals().readings < 34_872 && ContinuousClock.now < drained { try await Task.sleep(for: .milliseconds(100)) }
            #expect(try store.totals().readings == 34_872)
            #expect(published.load(ordering: .relaxed) > 0)
            await agentGroup.triggerGracefulShutdown()
            await second.triggerGracefulShutdown()
            try await group.waitForAll()
        }
        spyTask.cancel()
        spy.disconnect()
        broker.stop()
        #expect(agent.buffer.bufferedReadings == 0)
    }
}
