import Foundation
import GemelloAgent
import GemelloAggregator
import GemelloCore

/// The four shared datasets, read through the agent's own csv-replay input (the same parser, column
/// choice, units and missing-value rules an agent uses), so benchmarks measure real readings.
struct SharedDataset {
    /// The replay config's name (`replay-milano-arpa`, ...).
    let name: String
    let agentID: String
    /// The sensor the replay announces (entity type, attributes, units) and its site.
    let sensor: SensorInfo
    let site: Site
    /// Every numeric reading of the file, in the order the agent accepts them.
    let readings: [Reading]

    static let configNames = ["replay-milano-arpa", "replay-air-quality", "replay-traffic-i94", "replay-solar-node"]

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func loadAll() async throws -> [SharedDataset] {
        var datasets: [SharedDataset] = []
        for name in configNames {
            let path = repositoryRoot.appendingPathComponent("agent-config/\(name).yaml").path
            let configuration = try AgentConfiguration.load(path: path)
            guard var replay = configuration.inputs.first?.options as? CSVReplayInput.Configuration else {
                throw BenchError("\(path): expected a csv-replay input")
            }
            replay.speed = nil
            let sink = Collector()
            _ = try await CSVReplayInput(configuration: replay).run(into: sink)
            datasets.append(SharedDataset(name: name, agentID: configuration.agentID, sensor: replay.sensor, site: configuration.site,
                                          readings: sink.readings))
        }
        return datasets
    }

    /// Cuts the readings into batches of at most `target` readings, only where the timestamp changes
    /// (a batch never splits the readings of one instant), as a reader of the issue expects.
    func batches(target: Int) -> [Batch] {
        var result: [Batch] = []
        var start = 0
        var sequence: UInt64 = 0
        while start < readings.count {
            var end = start
            // Grow row by row (a row = consecutive readings sharing a timestamp) up to the target;
            // a single row larger than the target still makes one batch.
            while end < readings.count {
                var next = end + 1
                while next < readings.count && readings[next].timestamp == readings[end].timestamp { next += 1 }
                if next - start > target && end > start { break }
                end = next
            }
            sequence += 1
            var batch = Batch(agentID: agentID, bootEpoch: 1, sequence: sequence, createdAt: readings[end - 1].timestamp)
            var lookup: [SeriesInfo: UInt32] = [:]
            for reading in readings[start..<end] { batch.append(reading, lookup: &lookup) }
            result.append(batch)
            start = end
        }
        return result
    }
}

extension SharedDataset {
    /// Births and every batch of `datasets` into `twin`, `copies` times (copy k > 0 as agents
    /// `<agent>-copy-<k>` at sites `<site>-<k>`); the readings ingested.
    static func ingest(_ datasets: [SharedDataset], into twin: TwinStore, copies: Int = 1, receivedAt: Int64 = 0) throws -> Int {
        var readings = 0
        for copy in 0..<copies {
            for dataset in datasets {
                let agent = copy == 0 ? dataset.agentID : "\(dataset.agentID)-copy-\(copy)"
                var site = dataset.site
                if copy > 0 { site.id += "-\(copy)" }
                _ = try twin.recordBirth(AgentBirth(agentID: agent, bootEpoch: 1, version: GemelloVersion.current, site: site,
                                                    sensors: [dataset.sensor], time: 0), now: 0)
                for var batch in dataset.batches(target: 1000) {
                    batch.agentID = agent
                    _ = try twin.ingest(batch, receivedAt: receivedAt)
                }
                readings += dataset.readings.count
            }
        }
        return readings
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

final class Collector: ReadingSink, @unchecked Sendable {
    // @unchecked: the replay input calls accept() sequentially from one task.
    var readings: [Reading] = []
    func accept(_ batch: [Reading], checkpoint: InputCheckpoint?) async throws { readings.append(contentsOf: batch) }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}
