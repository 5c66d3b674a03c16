import Foundation
import GemelloAgent
import GemelloAggregator
import GemelloTesting
import Logging
import ServiceLifecycle

/// The solar-node replay (34,872 readings) at full speed, as the integration tests run it: on
/// `broker`, with its buffer in `folder`, allowed 30 s to drain on stop.
func solarReplayConfiguration(broker: String, folder: URL) throws -> AgentConfiguration {
    var configuration = try AgentConfiguration.load(path: Repository.root.appendingPathComponent("agent-config/replay-solar-node.yaml").path)
    guard var replay = configuration.inputs[0].options as? CSVReplayInput.Configuration else { throw AgentError(.input, "replay-solar-node.yaml: expected a replay input") }
    replay.speed = nil
    configuration.inputs[0] = InputConfiguration(replay)
    configuration.broker.url = broker
    configuration.buffer.path = folder.appendingPathComponent("agent.sqlite").path
    configuration.publisher.drainTimeout = .seconds(30)
    return configuration
}

/// An aggregator (ingest only) running in the test process on a real broker.
func inProcessAggregator(broker: String, store: TwinStore, clientID: String, logger: Logger) -> (group: ServiceGroup, counters: IngestCounters) {
    let counters = IngestCounters()
    let ingest = IngestService(configuration: AggregatorConfiguration(broker: broker, clientID: clientID, storePath: store.path, httpPort: 0),
                               store: store, counters: counters, logger: logger)
    return (ServiceGroup(configuration: .init(services: [.init(service: ingest)], logger: logger)), counters)
}

/// Waits until `condition` holds or `timeout` passes (the caller then checks what it expected).
func waitUntil(_ timeout: Duration, _ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try !condition() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
}

/// The same for a condition that must await (an HTTP request), polled every 200 ms.
func waitUntilAsync(_ timeout: Duration, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
}
