@testable import GemelloInputs
import GemelloCore
import Testing

/// Wire format v1 on every reading of the four shared datasets, cut into batches the way the agent
/// cuts them (up to 1000 readings, in acceptance order): exact round trip, and the size goal.
@Suite struct WireOnDatasetsTests {
    @Test func everyDatasetRoundTripsBitExactlyBelowTheSizeGoal() async throws {
        var readings = 0, bytes = 0
        for config in ["replay-milano-arpa.yaml", "replay-air-quality.yaml", "replay-traffic-i94.yaml", "replay-solar-node.yaml"] {
            let (_, all) = try await CSVReplayTests.replay(config)
            var sequence: UInt64 = 0
            for start in stride(from: 0, to: all.count, by: 1000) {
                sequence += 1
                var batch = Batch(agentID: "replay", bootEpoch: 1, sequence: sequence, createdAt: all[start].timestamp)
                var lookup: [SeriesInfo: UInt32] = [:]
                for reading in all[start..<min(start + 1000, all.count)] { batch.append(reading, lookup: &lookup) }
                let frame = try WireFormat.encode(batch)
                let decoded = try WireFormat.decode(frame)
                #expect(decoded.series == batch.series && decoded.seriesIndex == batch.seriesIndex, "\(config) #\(sequence)")
                #expect(decoded.timestamps == batch.timestamps, "\(config) #\(sequence)")
                #expect(decoded.values.map(\.bitPattern) == batch.values.map(\.bitPattern), "\(config) #\(sequence)")
                readings += batch.count
                bytes += frame.count
            }
        }
        #expect(readings == 553_632)
        // The goal is 0.85 B/reading; v1 measures 0.749 with these cuts (ops/bench/wire, which cuts
        // at timestamp boundaries into slightly smaller batches: 0.762).
        #expect(Double(bytes) / Double(readings) <= 0.85)
    }
}
