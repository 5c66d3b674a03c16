import Foundation
import GemelloAgent
import GemelloAggregator
import GemelloCore
import GemelloTesting
import Logging
import ServiceLifecycle
import Testing

@Suite(.serialized) struct OfflineStartTests {
    /// An agent that boots while no broker answers keeps running and buffering, connects when the
    /// broker appears, and delivers everything it accepted.
    @Test(.timeLimit(.minutes(2)))
    func agentBootsWithoutBrokerThenDeliversEverything() async throws {
        let port = try FreePort.reserve()  // held until the broker starts: connections refused, nobody else takes it
        let folder = try Repository.temporaryFolder("offline")
        var logger = Logger(label: "offline")
        logger.logLevel = .critical

        let configuration = try solarReplayConfiguration(broker: "mqtt://127.0.0.1:\(port.port)", folder: folder)
        let agent = try Agent(configuration: configuration, logger: logger)
        let agentGroup = try agent.makeServiceGroup(signals: [])

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await agentGroup.run() }
            // Offline: the whole replay (34,872 readings) lands in the buffer, nothing is delivered.
            let offlineDeadline = ContinuousClock.now + .seconds(30)
            while agent.buffer.bufferedReadings < 34_872 && ContinuousClock.now < offlineDeadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Task.sleep(for: .seconds(2))  // a few connection retries
            #expect(agent.buffer.bufferedReadings == 34_872)
            #expect(agent.counters.delivered.load(ordering: .relaxed) == 0)

            // The broker and the aggregator come up: the agent connects and drains.
            let broker = try BrokerHarness(reserved: port)
            let store = try TestStore.open(path: folder.appendingPathComponent("twin.sqlite").path)
            let aggregator = inProcessAggregator(broker: broker.url, store: store, clientID: "aggregator-offline", logger: logger).group
            group.addTask { try await aggregator.run() }
            // Drained means stored and acknowledged: wait for both before stopping, or the last
            // acks may still be on their way when the aggregator stops (the agent then rightly
            // keeps those batches for a resend, and the counts below would race the shutdown).
            try await waitUntil(.seconds(60)) { try store.totals().readings >= 34_872 && agent.buffer.bufferedReadings == 0 }
            #expect(try store.totals().readings == 34_872)
            await agentGroup.triggerGracefulShutdown()
            await aggregator.triggerGracefulShutdown()
            try await group.waitForAll()
            broker.stop()
        }
        #expect(agent.counters.delivered.load(ordering: .relaxed) == 34_872)
        #expect(agent.buffer.bufferedReadings == 0)
    }
}
