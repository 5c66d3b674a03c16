import Foundation
import GemelloAgent
import GemelloAggregator
import GemelloCore
import GemelloInputs
import GemelloMosquitto
import GemelloTesting
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// The live-rate wire (docs/protocol.md, "Live rate") against a real mosquitto: the agent moves to
/// v2 once an aggregator says it reads it, an aggregator restarted without the agent's series asks
/// for them again and nothing is lost or stored twice, and health deltas merge into full reports.
@Suite(.serialized) struct WireV2Tests {
    /// Versions of the data frames seen on the broker, in order.
    final class Tap: Sendable {
        let versions = Mutex<[UInt8]>([])
        let health = Mutex<[String]>([])
    }

    static func tap(_ broker: BrokerHarness, agent: String) async throws -> (MQTTClient, Tap) {
        let tap = Tap()
        let client = try MQTTClient(options: .init(clientID: "tap-\(agent)"))
        try await client.start(broker: BrokerAddress(url: broker.url)!)
        for await event in client.events { if case .connected = event { break } }
        _ = try client.subscribe("gemello/v1/agents/\(agent)/+")
        Task {
            for await event in client.events {
                guard case .message(let message) = event else { continue }
                if message.topic.hasSuffix("/data"), message.payload.count > 2 { tap.versions.withLock { $0.append(message.payload[2]) } }
                if message.topic.hasSuffix("/health") { tap.health.withLock { $0.append(String(decoding: message.payload, as: UTF8.self)) } }
            }
        }
        return (client, tap)
    }

    @Test(.timeLimit(.minutes(2)))
    func aRestartedAggregatorGetsTheSeriesDefinedAgain() async throws {
        let folder = try Repository.temporaryFolder("wire-v2")
        let broker = try BrokerHarness()
        defer { broker.stop() }
        var configuration = try solarReplayConfiguration(broker: broker.url, folder: folder)
        configuration.inputs = [InputConfiguration(SimulatedInput.Configuration(sensorID: "live", profile: .power, interval: .milliseconds(100), seed: 1))]
        configuration.publisher.maxDelay = .milliseconds(300)
        let (tapClient, tap) = try await Self.tap(broker, agent: configuration.agentID)
        defer { tapClient.disconnect() }
        let store = try TestStore.open(path: folder.appendingPathComponent("twin.sqlite").path)
        let agent = try Agent(configuration: configuration, logger: DeliveryTests.quietLogger)
        let agentGroup = try agent.makeServiceGroup(signals: [])

        let first = inProcessAggregator(broker: broker.url, store: store, clientID: "aggregator-v2", logger: DeliveryTests.quietLogger)
        let firstTask = Task { try await first.group.run() }
        try await waitUntil(.seconds(10)) { first.counters.subscribed.load(ordering: .relaxed) }
        let agentTask = Task { try await agentGroup.run() }
        // v1 until the first acknowledgement says the aggregator reads v2, then v2.
        try await waitUntil(.seconds(20)) { tap.versions.withLock { $0.suffix(3) == [2, 2, 2] } }
        let versions = tap.versions.withLock { $0 }
        #expect(versions.first == 1 && versions.last == 2, "\(versions)")
        #expect(first.counters.resyncs.load(ordering: .relaxed) == 0)

        // A new aggregator process: same store, none of the agent's series in memory.
        await first.group.triggerGracefulShutdown()
        try await firstTask.value
        let storedBefore = try store.totals().readings
        let second = inProcessAggregator(broker: broker.url, store: store, clientID: "aggregator-v2", logger: DeliveryTests.quietLogger)
        let secondTask = Task { try await second.group.run() }
        try await waitUntil(.seconds(20)) { second.counters.resyncs.load(ordering: .relaxed) >= 1 && second.counters.batches.load(ordering: .relaxed) >= 5 }
        #expect(second.counters.resyncs.load(ordering: .relaxed) >= 1, "the first reference-only batch gets a resync")
        #expect(second.counters.batches.load(ordering: .relaxed) >= 5, "then batches are stored again")
        #expect(try store.totals().readings > storedBefore)
        #expect(tap.versions.withLock { $0.last } == 2, "and the agent stays on v2")

        // The agent stops and drains: every reading it accepted is in the twin once.
        await agentGroup.triggerGracefulShutdown()
        try await agentTask.value
        let accepted = agent.counters.accepted.load(ordering: .relaxed)
        try await waitUntil(.seconds(10)) { try store.totals().readings >= accepted }
        #expect(try store.totals().readings == accepted)
        #expect(agent.buffer.bufferedReadings == 0 && agent.buffer.droppedReadings == 0)
        await second.group.triggerGracefulShutdown()
        try await secondTask.value
    }

    @Test(.timeLimit(.minutes(1)))
    func healthDeltasMergeIntoTheFullReport() async throws {
        let folder = try Repository.temporaryFolder("wire-v2-health")
        let broker = try BrokerHarness()
        defer { broker.stop() }
        let store = try TestStore.open(path: folder.appendingPathComponent("twin.sqlite").path)
        let aggregator = inProcessAggregator(broker: broker.url, store: store, clientID: "aggregator-health", logger: DeliveryTests.quietLogger)
        let task = Task { try await aggregator.group.run() }
        try await waitUntil(.seconds(10)) { aggregator.counters.subscribed.load(ordering: .relaxed) }
        let client = try MQTTClient(options: .init(clientID: "site-7"))
        try await client.start(broker: BrokerAddress(url: broker.url)!)
        for await event in client.events { if case .connected = event { break } }

        var full = AgentHealth(agentID: "site-7", bootEpoch: 5, time: SystemWallClock().nowMilliseconds(), uptimeSeconds: 60,
                               readingsAccepted: 900, readingsDelivered: 890, readingsBuffered: 10, readingsDropped: 0)
        full.inputs = [InputHealth(sensor: "power", type: "modbus", readings: 90, errors: 0, lastSuccess: full.time)]
        var delta = AgentHealthDelta(bootEpoch: 5)
        delta.readingsDropped = 7
        delta.inputs = [InputHealth(sensor: "power", type: "modbus", readings: 95, errors: 3, lastError: "Connection timed out")]
        var stale = AgentHealthDelta(bootEpoch: 4)  // of an earlier run: no base to apply it to
        stale.readingsDropped = 999
        // A delta before any full report of its epoch changes nothing but the agent's last sighting.
        try client.publish(topic: Topics.health(agent: "site-7"), payload: Array(delta.json().utf8))
        try client.publish(topic: Topics.health(agent: "site-7"), payload: Array(full.json().utf8))
        try client.publish(topic: Topics.health(agent: "site-7"), payload: Array(stale.json().utf8))
        try client.publish(topic: Topics.health(agent: "site-7"), payload: Array(delta.json().utf8))
        func latest() throws -> AgentHealth? {
            try store.lastHealthJSON(agent: "site-7").flatMap { try? JSONDecoder().decode(AgentHealth.self, from: Data($0.utf8)) }
        }
        try await waitUntil(.seconds(10)) { try latest()?.readingsDropped == 7 }
        let merged = try #require(try latest())
        #expect(merged.readingsDropped == 7 && merged.readingsAccepted == 900 && merged.bootEpoch == 5)
        #expect(merged.inputs?.first?.errors == 3 && merged.inputs?.first?.lastError == "Connection timed out")
        let history = try #require(try store.agentDetail(id: "site-7", now: SystemWallClock().nowMilliseconds(), policy: FleetStatusPolicy()))
        #expect(history.healthHistory.count == 2, "the full report and the one the delta made")
        client.disconnect()
        await aggregator.group.triggerGracefulShutdown()
        try await task.value
    }
}
