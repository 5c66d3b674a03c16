import ArgumentParser
import Foundation
import GemelloAggregator
import GemelloCore

/// `gemello-bench history-load`: fills a twin store for `ops/bench/history`: the four shared
/// datasets ingested by their agents, `--copies` times as distinct agents and sites, the history
/// sealed and the file compacted; prints the bytes on disk per reading.
struct HistoryLoadBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history-load", abstract: "Fill a twin store with copies of the shared datasets, sealed (for ops/bench/history).")

    @Option(help: "The twin store to create (must not exist).")
    var store: String

    @Option(help: "Copies of the corpus, each as distinct agents and sites.")
    var copies = 10

    func run() async throws {
        guard !FileManager.default.fileExists(atPath: store) else { throw ValidationError("\(store) exists; give a new path") }
        let started = ContinuousClock.now
        let datasets = try await SharedDataset.loadAll()
        let twin = try TwinStore(path: store)
        let readings = try SharedDataset.ingest(datasets, into: twin, copies: copies, receivedAt: 1_700_000_000_000)
        let ingested = ContinuousClock.now
        let report = try twin.history.compact(now: .max / 2, force: true)
        let bytes = try twin.compactFile()
        let footprint = try twin.history.footprint()
        print("history-load: \(readings) readings (\(copies) copies of \(datasets.count) datasets) ingested in "
              + "\(String(format: "%.1f", (ingested - started).seconds)) s, sealed into \(report.chunksWritten) chunks in "
              + "\(String(format: "%.1f", (ContinuousClock.now - ingested).seconds)) s")
        print("history-load: file \(bytes) bytes = \(String(format: "%.3f", Double(bytes) / Double(readings))) B/reading "
              + "(chunk payload \(String(format: "%.3f", Double(footprint.bytes) / Double(readings))) B/reading)")
    }
}
