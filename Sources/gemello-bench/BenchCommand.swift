import ArgumentParser
import Foundation
import GemelloAgent
import GemelloAggregator
import GemelloCore

/// `gemello-bench`: measurements behind docs/BENCHMARKS.md, run by the scripts in ops/bench/.
/// Always on the four shared datasets (never synthetic series), release build, one core.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemello-bench", abstract: "Gemello benchmarks on the shared datasets.",
        subcommands: [IngestBench.self])
}

struct IngestBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Aggregator ingest: decode wire batches and commit them to a fresh twin store (median of N runs).")

    @Option(help: "Repetitions; the median is reported.")
    var runs = 5

    @Option(help: "Readings per batch (the agent's default is 1000).")
    var batchSize = 1000

    @Option(help: "Folder for the temporary twin stores.")
    var scratch = FileManager.default.temporaryDirectory.path

    func run() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let configs = ["replay-milano-arpa", "replay-air-quality-uci", "replay-traffic-i94", "replay-solar-node"]
        var payloads: [[UInt8]] = []
        var readings = 0
        for name in configs {
            let configuration = try AgentConfiguration.load(path: root.appendingPathComponent("agent-config/\(name).yaml").path)
            guard case .csvReplay(var replay) = configuration.inputs[0] else { continue }
            replay.speed = nil
            let sink = Collector()
            _ = try await CSVReplayInput(configuration: replay).run(into: sink)
            var sequence: UInt64 = 0
            for start in stride(from: 0, to: sink.readings.count, by: batchSize) {
                sequence += 1
                var batch = Batch(agentID: configuration.agentID, bootEpoch: 1, sequence: sequence, createdAt: 0)
                var lookup: [SeriesInfo: UInt32] = [:]
                for reading in sink.readings[start..<min(start + batchSize, sink.readings.count)] { batch.append(reading, lookup: &lookup) }
                payloads.append(try WireFormat.encode(batch))
                readings += batch.count
            }
            print("loaded \(name): \(sink.readings.count) readings")
        }
        let bytes = payloads.reduce(0) { $0 + $1.count }
        print("batches \(payloads.count), readings \(readings), wire bytes \(bytes) (\(String(format: "%.2f", Double(bytes) / Double(readings))) B/reading)")

        var decodeRates: [Double] = []
        var ingestRates: [Double] = []
        for run in 1...runs {
            let clock = ContinuousClock()
            var decoded: [Batch] = []
            decoded.reserveCapacity(payloads.count)
            let decodeTime = try clock.measure { for payload in payloads { decoded.append(try WireFormat.decode(payload)) } }
            let path = "\(scratch)/gemello-bench-\(getpid())-\(run).sqlite"
            defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
            let store = try TwinStore(path: path)
            let ingestTime = try clock.measure { for batch in decoded { _ = try store.ingest(batch, receivedAt: 0) } }
            guard try store.totals().readings == Int64(readings) else { throw ValidationError("store lost readings") }
            decodeRates.append(Double(readings) / decodeTime.seconds)
            ingestRates.append(Double(readings) / ingestTime.seconds)
            print("run \(run): decode \(Int(decodeRates.last!)) readings/s, store \(Int(ingestRates.last!)) readings/s")
        }
        let decode = median(decodeRates), ingest = median(ingestRates)
        let endToEnd = 1 / (1 / decode + 1 / ingest)
        print("ingest: decode \(Int(decode)) readings/s, store \(Int(ingest)) readings/s, decode+store \(Int(endToEnd)) readings/s (median of \(runs), \(payloads.count) batches of ≤\(batchSize))")
    }

    func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

final class Collector: ReadingSink, @unchecked Sendable {
    // @unchecked: the replay input calls accept() sequentially from one task.
    var readings: [Reading] = []
    func accept(_ batch: [Reading]) async throws { readings.append(contentsOf: batch) }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
