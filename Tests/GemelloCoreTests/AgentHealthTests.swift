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

/// Health deltas: only significant changes travel; the aggregator's merge rebuilds the report.
@Suite struct AgentHealthDeltaTests {
    static func report(buffered: Int64 = 3, rss: Int64 = 6_000_000, cpu: Double = 1.0, errors: Int64 = 0) -> AgentHealth {
        var health = AgentHealth(agentID: "tower-1", bootEpoch: 4, time: 1_000_000, uptimeSeconds: 100, readingsAccepted: 500,
                                 readingsDelivered: 497, readingsBuffered: buffered, readingsDropped: 0)
        health.rssBytes = rss
        health.cpuPercent = cpu
        health.diskFreeBytes = 10_000_000_000
        health.reconnects = 0
        health.inputs = [InputHealth(sensor: "power", type: "modbus", readings: 40, errors: errors, lastSuccess: 999_000),
                         InputHealth(sensor: "box", type: "system", readings: 20, errors: 0, lastSuccess: 998_000)]
        return health
    }

    @Test func steadyCountersAndSmallWobblesSendNothing() {
        var later = Self.report(buffered: 9, rss: 6_100_000, cpu: 2.5)
        later.readingsAccepted = 900
        later.readingsDelivered = 891
        later.inputs?[0].readings = 80
        later.inputs?[0].lastSuccess = 1_009_000
        let delta = AgentHealthDelta.between(Self.report(), later)
        #expect(delta.isEmpty)
        #expect(delta.json() == "{\"delta\":true,\"bootEpoch\":4}")
        #expect(AgentHealthDelta.isDelta(Array(delta.json().utf8)))
        #expect(!AgentHealthDelta.isDelta(Array(Self.report().json().utf8)))
        #expect(AgentHealthDelta.isDelta(Array("{\"bootEpoch\":4, \"delta\": true}".utf8)), "wherever the key stands")
    }

    @Test func significantChangesTravelAndMerge() throws {
        var later = Self.report(buffered: 5_000, rss: 8_000_000, cpu: 30, errors: 2)
        later.inputs?[0].lastError = "Connection timed out"
        later.readingsDropped = 12
        later.bufferPaused = true
        later.oldestUnsentSeconds = 120
        let delta = AgentHealthDelta.between(Self.report(), later)
        #expect(delta.readingsBuffered == 5_000 && delta.rssBytes == 8_000_000 && delta.cpuPercent == 30)
        #expect(delta.readingsDropped == 12 && delta.bufferPaused == true && delta.oldestUnsentSeconds == 120)
        #expect(delta.inputs?.map(\.sensor) == ["power"], "only the input whose errors changed")
        let decoded = try JSONDecoder().decode(AgentHealthDelta.self, from: Data(delta.json().utf8))
        #expect(decoded == delta)
        let merged = decoded.applied(to: Self.report(), now: 1_030_000)
        #expect(merged.time == 1_030_000 && merged.uptimeSeconds == 130)
        #expect(merged.readingsBuffered == 5_000 && merged.readingsDropped == 12 && merged.bufferPaused == true)
        #expect(merged.inputs?.first?.lastError == "Connection timed out" && merged.inputs?.count == 2)
        #expect(merged.readingsAccepted == 500, "growing counters wait for the next full report")
        // The pause ends: said explicitly.
        var resumed = later
        resumed.bufferPaused = nil
        #expect(AgentHealthDelta.between(merged, resumed).bufferPaused == false)
    }
}
