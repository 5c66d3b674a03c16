import Foundation
import GemelloAgent
import GemelloTesting

/// The solar-node replay (34,872 readings) at full speed, as the integration tests run it: on
/// `broker`, with its buffer in `folder`, allowed 30 s to drain on stop.
func solarReplayConfiguration(broker: String, folder: URL) throws -> AgentConfiguration {
    var configuration = try AgentConfiguration.load(path: Repository.root.appendingPathComponent("agent-config/replay-solar-node.yaml").path)
    guard case .csvReplay(var replay) = configuration.inputs[0] else { throw AgentError(.input, "replay-solar-node.yaml: expected a replay input") }
    replay.speed = nil
    configuration.inputs[0] = .csvReplay(replay)
    configuration.broker = broker
    configuration.buffer.path = folder.appendingPathComponent("agent.sqlite").path
    configuration.publisher.drainTimeout = .seconds(30)
    return configuration
}
