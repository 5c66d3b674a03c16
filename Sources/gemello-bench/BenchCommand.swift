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
        subcommands: [IngestBench.self, WireBench.self, DrainBench.self, TwinLoadBench.self])
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
        var payloads: [[UInt8]] = []
        var readings = 0
        for dataset in try await SharedDataset.loadAll() {
            for batch in dataset.batches(target: batchSize) {
                payloads.append(try WireFormat.encode(batch))
                readings += batch.count
            }
            print("loaded \(dataset.name): \(dataset.readings.count) readings")
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
}
