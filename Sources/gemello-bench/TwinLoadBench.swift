import ArgumentParser
import Foundation
import GemelloAggregator
import GemelloCore
import GemelloTesting

/// `gemello-bench twin-load`: fills a twin store for `ops/bench/twin`: the four shared datasets
/// ingested whole by their agents, then their sites replicated as distinct sites across the
/// metropolitan area (one agent per replica site, with the four datasets' sensors and their
/// latest values) until the twin holds `--entities` telemetry entities.
struct TwinLoadBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "twin-load", abstract: "Fill a twin store with the shared datasets and replicated sites (for ops/bench/twin).")

    @Option(help: "The twin store to create (must not exist).")
    var store: String

    @Option(help: "Telemetry entities to reach.")
    var entities = 100_000

    func run() async throws {
        guard !FileManager.default.fileExists(atPath: store) else { throw ValidationError("\(store) exists; give a new path") }
        let started = ContinuousClock.now
        let datasets = try await SharedDataset.loadAll()
        let twin = try TwinStore(path: store)
        let readings = try SharedDataset.ingest(datasets, into: twin)
        print("twin-load: \(readings) readings of \(datasets.count) datasets in \(String(format: "%.1f", (ContinuousClock.now - started).seconds)) s")

        // The latest value of each series of each dataset: what a replica site reports.
        var latest: [(sensor: SensorInfo, readings: [Reading])] = []
        for dataset in datasets {
            var newest: [String: Reading] = [:]
            for r in dataset.readings where (newest[r.series.name]?.timestamp ?? .min) <= r.timestamp { newest[r.series.name] = r }
            latest.append((dataset.sensor, newest.values.sorted { $0.series.name < $1.series.name }))
        }
        let perSite = latest.count
        let sites = max(0, (entities - perSite + perSite - 1) / perSite)
        var random = SeededGenerator(seed: 42)  // the same sites every run
        for site in 0..<sites {
            let id = "replica-\(site)"
            // Spread over the Città Metropolitana's bounding box (roughly 8.70–9.55 E, 45.16–45.65 N).
            let lat = 45.16 + Double.random(in: 0..<1, using: &random) * 0.49, lon = 8.70 + Double.random(in: 0..<1, using: &random) * 0.85
            _ = try twin.recordBirth(AgentBirth(agentID: id, bootEpoch: 1, version: GemelloVersion.current,
                                                site: Site(id: "site-\(site)", kind: .fiveGTower, latitude: lat, longitude: lon),
                                                sensors: latest.map(\.sensor), time: 0), now: 0)
            var batch = Batch(agentID: id, bootEpoch: 1, sequence: 1, createdAt: 0)
            var lookup: [SeriesInfo: UInt32] = [:]
            for (_, readings) in latest {
                for r in readings {
                    // Values vary per site so that queries select a share of them.
                    let value = (r.value * (0.5 + Double.random(in: 0..<1, using: &random))).rounded(toPlaces: 2)
                    batch.append(Reading(series: r.series, timestamp: r.timestamp, value: value), lookup: &lookup)
                }
            }
            _ = try twin.ingest(batch, receivedAt: 0)
            if (site + 1) % 5000 == 0 { print("twin-load: \(site + 1)/\(sites) replica sites") }
        }
        let total = try twin.entities().count
        print("twin-load: \(total) telemetry entities (\(sites) replica sites + \(datasets.count) dataset sites) in "
              + "\(String(format: "%.1f", (ContinuousClock.now - started).seconds)) s")
    }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let scale = pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}
