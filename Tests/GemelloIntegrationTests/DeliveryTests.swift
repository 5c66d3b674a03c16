import Foundation
import GemelloAgent
import GemelloAggregator
import GemelloCore
import GemelloTesting
import Logging
import ServiceLifecycle
import Testing

/// Store-and-forward against a real mosquitto: retransmission, de-duplication across restarts,
/// the buffer quota, and live-first draining under the rate cap. Every test ends with the twin
/// holding each accepted reading exactly once, or the agent counting it as dropped.
@Suite(.serialized) struct DeliveryTests {
    static let solarReadings: Int64 = 34_872

    static var quietLogger: Logger {
        var logger = Logger(label: "delivery")
        logger.logLevel = .critical
        return logger
    }

    /// Runs the solar replay with no broker reachable until every reading is buffered or
    /// dropped, then stops the agent (nothing to drain to). Returns (buffered, dropped).
    static func replayOffline(_ configuration: AgentConfiguration) async throws -> (buffered: Int64, dropped: Int64) {
        var offline = configuration
        let reservation = try FreePort.reserve()  // refused for as long as the agent runs
        defer { reservation.release() }
        offline.broker.url = "mqtt://127.0.0.1:\(reservation.port)"
        offline.publisher.drainTimeout = .zero
        let agent = try Agent(configuration: offline, logger: quietLogger)
        let group = try agent.makeServiceGroup(signals: [])
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await waitUntil(.seconds(30)) { agent.buffer.bufferedReadings + agent.buffer.droppedReadings >= solarReadings }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        return (agent.buffer.bufferedReadings, agent.buffer.droppedReadings)
    }

    /// Runs the agent of `configuration` and an aggregator on `store` until the agent's buffer is
    /// empty, then stops both (the agent first). Returns the agent, for its counters.
    static func deliverAll(_ configuration: AgentConfiguration, to store: TwinStore, broker: String, clientID: String) async throws -> Agent {
        let aggregator = inProcessAggregator(broker: broker, store: store, clientID: clientID, logger: quietLogger).group
        let agent = try Agent(configuration: configuration, logger: quietLogger)
        let agentGroup = try agent.makeServiceGroup(signals: [])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await aggregator.run() }
            group.addTask { try await agentGroup.run() }
            try await waitUntil(.seconds(60)) { agent.buffer.bufferedReadings == 0 }
            await agentGroup.triggerGracefulShutdown()
            await aggregator.triggerGracefulShutdown()
            try await group.waitForAll()
        }
        return agent
    }

    /// An aggregator committed ten batches and died before acknowledging them. The agent
    /// restarts, resends them on connect; the restarted aggregator (a new store on the same
    /// file) recognises all ten as duplicates, acknowledges them, and the rest flows.
    @Test(.timeLimit(.minutes(2)))
    func resendsWhatAnAggregatorStoredButNeverAcknowledged() async throws {
        let folder = try Repository.temporaryFolder("delivery")
        let broker = try BrokerHarness()
        defer { broker.stop() }
        let configuration = try solarReplayConfiguration(broker: broker.url, folder: folder)
        #expect(try await Self.replayOffline(configuration) == (Self.solarReadings, 0))

        let twinPath = folder.appendingPathComponent("twin.sqlite").path
        do {  // the first aggregator: stores, then vanishes without an acknowledgement
            let buffer = try ReadingBuffer(path: configuration.buffer.path)
            let store = try TestStore.open(path: twinPath)
            for _ in 0..<10 {
                let batch = try #require(try buffer.takeBatch(agentID: configuration.agentID, maxReadings: 1000, now: 0))
                #expect(try store.ingest(batch, receivedAt: 0) == .stored(readings: batch.count))
            }
        }

        let store = try TestStore.open(path: twinPath)
        let agent = try await Self.deliverAll(configuration, to: store, broker: broker.url, clientID: "aggregator-delivery")
        let totals = try store.totals()
        #expect(totals.readings == Self.solarReadings)
        #expect(totals.duplicates == 10)
        #expect(agent.counters.delivered.load(ordering: .relaxed) == Self.solarReadings)
        // Two epochs (the buffer was opened by the first aggregator's stand-in, then by the
        // restarted agent), each one contiguous range: nothing missing.
        #expect(try store.deliveryRangeCount() == 2)
    }

    /// On a broker where no aggregator ever announced itself the agent sends, and nobody
    /// listens: the batches are lost in the broker. The ack timeout sends them again once an
    /// aggregator is there; every reading arrives once.
    @Test(.timeLimit(.minutes(2)))
    func resendsAfterTheAckTimeout() async throws {
        let folder = try Repository.temporaryFolder("delivery")
        let broker = try BrokerHarness()
        defer { broker.stop() }
        var configuration = try solarReplayConfiguration(broker: broker.url, folder: folder)
        configuration.publisher.ackTimeout = .seconds(1)
        let agent = try Agent(configuration: configuration, logger: Self.quietLogger)
        let agentGroup = try agent.makeServiceGroup(signals: [])
        let store = try TestStore.open(path: folder.appendingPathComponent("twin.sqlite").path)
        let aggregator = inProcessAggregator(broker: broker.url, store: store, clientID: "aggregator-timeout", logger: Self.quietLogger).group
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await agentGroup.run() }
            try await waitUntil(.seconds(30)) { agent.counters.batchesSent.load(ordering: .relaxed) >= 32 }
            #expect(agent.counters.batchesSent.load(ordering: .relaxed) == 32)  // the window is full: it waits
            group.addTask { try await aggregator.run() }
            try await waitUntil(.seconds(60)) { agent.buffer.bufferedReadings == 0 }
            await agentGroup.triggerGracefulShutdown()
            await aggregator.triggerGracefulShutdown()
            try await group.waitForAll()
        }
        #expect(agent.counters.batchesResent.load(ordering: .relaxed) >= 32)
        #expect(try store.totals().readings == Self.solarReadings)
        #expect(try store.seriesCounts(agent: configuration.agentID).values.reduce(0, +) == Self.solarReadings)
    }

    /// A 128 KiB buffer cannot hold the replay offline: the replay, an input that can wait,
    /// pauses instead of dropping (back-pressure); once the link returns, acknowledged batches
    /// make room, the replay resumes (after a restart, from the position its buffer committed)
    /// and the twin gets every reading exactly once, with nothing dropped.
    @Test(.timeLimit(.minutes(2)))
    func aFullQuotaPausesTheReplayAndDropsNothing() async throws {
        let folder = try Repository.temporaryFolder("delivery")
        let broker = try BrokerHarness()
        defer { broker.stop() }
        var configuration = try solarReplayConfiguration(broker: broker.url, folder: folder)
        configuration.buffer.limits = .init(maxBytes: 128 << 10)

        // Offline until the buffer is full and the replay paused; then the agent stops.
        var offline = configuration
        let reservation = try FreePort.reserve()
        defer { reservation.release() }
        offline.broker.url = "mqtt://127.0.0.1:\(reservation.port)"
        offline.publisher.drainTimeout = .zero
        let first = try Agent(configuration: offline, logger: Self.quietLogger)
        let firstGroup = try first.makeServiceGroup(signals: [])
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await firstGroup.run() }
            try await waitUntil(.seconds(30)) { first.counters.bufferPaused.load(ordering: .relaxed) }
            try await Task.sleep(for: .seconds(1))  // paused a while: still nothing dropped
            await firstGroup.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let buffered = first.buffer.bufferedReadings
        #expect(first.buffer.droppedReadings == 0 && buffered > 0 && buffered < Self.solarReadings,
                "buffered \(buffered), dropped \(first.buffer.droppedReadings)")

        // Online: the restarted agent drains, resumes the replay where its buffer ended, and the
        // twin ends with every reading once.
        let store = try TestStore.open(path: folder.appendingPathComponent("twin.sqlite").path)
        let aggregator = inProcessAggregator(broker: broker.url, store: store, clientID: "aggregator-quota", logger: Self.quietLogger).group
        let agent = try Agent(configuration: configuration, logger: Self.quietLogger)
        let agentGroup = try agent.makeServiceGroup(signals: [])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await aggregator.run() }
            group.addTask { try await agentGroup.run() }
            try await waitUntil(.seconds(90)) { try store.totals().readings >= Self.solarReadings && agent.buffer.bufferedReadings == 0 }
            await agentGroup.triggerGracefulShutdown()
            await aggregator.triggerGracefulShutdown()
            try await group.waitForAll()
        }
        #expect(try store.totals().readings == Self.solarReadings, "dropped \(agent.buffer.droppedReadings)")
        #expect(try store.totals().duplicates == 0)
        #expect(agent.buffer.droppedReadings == 0)
    }

    /// After an outage the live sensor's readings reach the twin before the backlog has, and the
    /// backlog drains no faster than its rate cap allows.
    @Test(.timeLimit(.minutes(2)))
    func liveReadingsOvertakeTheBacklogUnderTheRateCap() async throws {
        let folder = try Repository.temporaryFolder("delivery")
        let broker = try BrokerHarness()
        defer { broker.stop() }
        var configuration = try solarReplayConfiguration(broker: broker.url, folder: folder)
        configuration.publisher.liveWindow = .seconds(1)
        configuration.publisher.backlogRate = 8 << 10
        #expect(try await Self.replayOffline(configuration) == (Self.solarReadings, 0))
        try await Task.sleep(for: .milliseconds(1500))  // the whole buffer is now older than the live window

        configuration.inputs.append(InputConfiguration(SimulatedInput.Configuration(sensorID: "live", profile: .power, interval: .milliseconds(200), seed: 1)))
        let store = try TestStore.open(path: folder.appendingPathComponent("twin.sqlite").path)
        let aggregator = inProcessAggregator(broker: broker.url, store: store, clientID: "aggregator-live", logger: Self.quietLogger)
        let agent = try Agent(configuration: configuration, logger: Self.quietLogger)
        let agentGroup = try agent.makeServiceGroup(signals: [])
        let wall = SystemWallClock()
        func backlogInTwin() throws -> Int64 {
            try store.seriesCounts(agent: configuration.agentID).filter { !$0.key.hasPrefix("live/") }.values.reduce(0, +)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await aggregator.group.run() }
            try await waitUntil(.seconds(10)) { aggregator.counters.subscribed.load(ordering: .relaxed) }
            let start = ContinuousClock.now
            let reconnectedAt = wall.nowMilliseconds()
            let agentTask = Task { try await agentGroup.run() }
            var backlogWhenCurrent: Int64?
            try await waitUntil(.seconds(60)) {
                let live = try store.seriesCounts(agent: configuration.agentID).keys.filter { $0.hasPrefix("live/") }
                guard let series = live.first, let newest = try store.history(agent: configuration.agentID, series: series).last,
                      newest.timestamp >= reconnectedAt else { return false }
                backlogWhenCurrent = try backlogInTwin()
                return true
            }
            try await waitUntil(.seconds(60)) { try backlogInTwin() >= Self.solarReadings }
            let drain = ContinuousClock.now - start
            #expect(try #require(backlogWhenCurrent) < Self.solarReadings / 2, "the twin was current only after most of the backlog")
            #expect(try backlogInTwin() == Self.solarReadings)
            #expect(drain >= .seconds(3), "about 45 kB of backlog at 8 KiB/s cannot drain in \(drain)")
            // The agent stops first: its last live readings drain to the running aggregator.
            await agentGroup.triggerGracefulShutdown()
            try await agentTask.value
            await aggregator.group.triggerGracefulShutdown()
            try await group.waitForAll()
        }
        #expect(try store.totals().duplicates == 0)
        #expect(agent.buffer.bufferedReadings == 0)
        #expect(try store.totals().readings == Self.solarReadings + agent.counters.accepted.load(ordering: .relaxed))  // backlog + this run
    }
}
