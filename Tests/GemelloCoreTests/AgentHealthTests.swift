import Foundation
import GemelloCore
import Testing

/// The health message the agent writes by hand (`json()`) is what the aggregator's Codable
/// decoding reads: every field, the inputs' self-metrics included; an older agent's message
/// without the newer fields still decodes.
@Suite struct AgentHealthTests {
    @Test func handWrittenJSONDecodesToTheSameValue() throws {
        var health = AgentHealth(agentID: "tower-duomo-01", bootEpoch: 7, time: 1_764_445_200_000, uptimeSeconds: 3600,
                                 readingsAccepted: 5400, readingsDelivered: 5390, readingsBuffered: 10, readingsDropped: 0)
        health.bufferedBytes = 40_960
        health.cpuPercent = 0.4
        health.bufferPaused = true
        health.inputs = [
            InputHealth(sensor: "power", type: "modbus", readings: 0, errors: 12,
                        lastError: "modbus 'power' at tcp://10.0.0.2:502 unit 1: Connection timed out \"quoted\""),
            InputHealth(sensor: "box", type: "system", readings: 3600, errors: 0, lastSuccess: 1_764_445_199_000, paused: nil),
            InputHealth(sensor: "telegraf", type: "influx-listener", readings: 1800, errors: 1, lastSuccess: 1_764_445_100_000, paused: true),
        ]
        let decoded = try JSONDecoder().decode(AgentHealth.self, from: Data(health.json().utf8))
        #expect(decoded == health)
        let old = #"{"agentID":"a","bootEpoch":1,"time":2,"uptimeSeconds":3,"readingsAccepted":4,"readingsDelivered":5,"readingsBuffered":6}"#
        let legacy = try JSONDecoder().decode(AgentHealth.self, from: Data(old.utf8))
        #expect(legacy.inputs == nil && legacy.bufferPaused == nil && legacy.readingsBuffered == 6)
    }
}
