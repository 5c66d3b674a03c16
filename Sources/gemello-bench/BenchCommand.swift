import ArgumentParser
import Foundation
import GemelloAgent
import GemelloAggregator
import GemelloCore
import GemelloStorage
import GemelloStoragePostgres

/// `gemello-bench`: measurements behind docs/BENCHMARKS.md, run by the scripts in ops/bench/.
/// Always on the four shared datasets (never synthetic series), release build, one core.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemello-bench", abstract: "Gemello benchmarks on the shared datasets.",
        subcommands: [IngestBench.self, VictoriaBench.self, WireBench.self, DrainBench.self, TwinLoadBench.self, HistoryLoadBench.self,
                      RulesBench.self])
}

struct IngestBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Aggregator ingest: decode wire batches and commit them durably to a fresh twin store (median of N runs), then seal the history and measure its bytes on disk per reading.")

    @Option(help: "Repetitions; the median is reported.")
    var runs = 5

    @Option(help: "Readings per batch (the agent's default is 1000).")
    var batchSize = 1000

    @Option(help: "Copies of the corpus, each as distinct agents and sites (1: the datasets once).")
    var copies = 1

    @Option(help: "Points per sealed history chunk (the aggregator's history.chunk-points).")
    var chunkPoints = HistoryStore.Policy().chunkPoints

    @Option(help: "Also measure group commit: this many batches per transaction, as the aggregator commits batches that queued up together (0: skip).")
    var group = 16

    @Option(help: "The twin store backend: sqlite, or postgres (with --postgres-url).")
    var store = "sqlite"

    @Option(help: "A PostgreSQL server's URL (postgres://user@host:port/database); each run makes a database of its own on it.")
    var postgresURL: String?

    @Option(help: "Folder for the temporary twin stores.")
    var scratch = FileManager.default.temporaryDirectory.path

    func run() async throws {
        guard let kind = StoreDialect(rawValue: store) else { throw ValidationError("--store \(store): use sqlite or postgres") }
        let stores = try BenchStores(kind: kind, scratch: scratch, postgresURL: postgresURL)
        guard copies >= 1 else { throw ValidationError("--copies must be 1 or more") }
        var payloads: [[UInt8]] = []
        var readings = 0
        let datasets = try await SharedDataset.loadAll()
        for copy in 0..<copies {
            for dataset in datasets {
                for var batch in dataset.batches(target: batchSize) {
                    if copy > 0 { batch.agentID += "-copy-\(copy)" }
                    payloads.append(try WireFormat.encode(batch))
                    readings += batch.count
                }
                if copy == 0 { print("loaded \(dataset.name): \(dataset.readings.count) readings") }
            }
        }
        let bytes = payloads.reduce(0) { $0 + $1.count }
        print("batches \(payloads.count), readings \(readings) (\(copies) \(copies == 1 ? "copy" : "copies") of the corpus), wire bytes \(bytes) (\(String(format: "%.2f", Double(bytes) / Double(readings))) B/reading)")

        var decodeRates: [Double] = []
        var ingestRates: [Double] = []
        var disk: [Double] = []
        for run in 1...runs {
            let clock = ContinuousClock()
            var decoded: [Batch] = []
            decoded.reserveCapacity(payloads.count)
            let decodeTime = try clock.measure { for payload in payloads { decoded.append(try WireFormat.decode(payload)) } }
            let twin = try stores.fresh("run\(run)")
            defer { stores.remove(twin) }
            let ingestTime = try clock.measure { for batch in decoded { _ = try twin.ingest(batch, receivedAt: 1) } }
            guard try twin.totals().readings == Int64(readings) else { throw ValidationError("store lost readings") }
            decodeRates.append(Double(readings) / decodeTime.seconds)
            ingestRates.append(Double(readings) / ingestTime.seconds)
            // Sealing is the background compactor's work, measured apart from ingest.
            let sealTime = try clock.measure { try twin.history.compact(now: .max / 2, policy: .init(chunkPoints: chunkPoints), force: true) }
            let footprint = try twin.history.footprint()
            // The history also holds derived indicators (the air quality index of the UCI station).
            guard footprint.points >= Int64(readings), footprint.fragments == 0 else { throw ValidationError("history lost readings when sealed") }
            let fileBytes = try twin.compactFile()
            disk.append(Double(fileBytes) / Double(readings))
            print("run \(run): decode \(Int(decodeRates.last!)) readings/s, store \(Int(ingestRates.last!)) readings/s; sealed \(footprint.chunks) chunks in \(String(format: "%.1f", sealTime.seconds)) s (\(Int(Double(readings) / sealTime.seconds)) readings/s), chunk bytes \(String(format: "%.3f", Double(footprint.bytes) / Double(readings))) B/reading, file \(fileBytes) bytes")
        }
        if group > 1 {
            var rates: [Double] = []
            for run in 1...3 {
                let decoded = try payloads.map { try WireFormat.decode($0) }
                let twin = try stores.fresh("group\(run)")
                defer { stores.remove(twin) }
                let time = try ContinuousClock().measure {
                    for start in stride(from: 0, to: decoded.count, by: group) {
                        _ = try twin.ingest(Array(decoded[start..<min(start + group, decoded.count)]), receivedAt: 1)
                    }
                }
                guard try twin.totals().readings == Int64(readings) else { throw ValidationError("store lost readings") }
                rates.append(Double(readings) / time.seconds)
            }
            print("group commit (\(group) batches a transaction): store \(Int(median(rates))) readings/s (median of 3)")
        }
        let decode = median(decodeRates), ingest = median(ingestRates)
        let endToEnd = 1 / (1 / decode + 1 / ingest)
        print("ingest: decode \(Int(decode)) readings/s, store \(Int(ingest)) readings/s, decode+store \(Int(endToEnd)) readings/s (median of \(runs), \(payloads.count) batches of ≤\(batchSize))")
        print("ingest: backend \(store), decode+store \(Int(endToEnd)) readings/s, disk \(String(format: "%.3f", median(disk))) B/reading")
    }
}

/// Fresh twin stores for benchmark runs: SQLite files in a scratch folder, or databases of their
/// own on a PostgreSQL server (made with CREATE DATABASE, dropped after the run).
struct BenchStores {
    let kind: StoreDialect
    let scratch: String
    let server: PostgresBackend.Configuration?

    init(kind: StoreDialect, scratch: String, postgresURL: String?) throws {
        self.kind = kind
        self.scratch = scratch
        if kind == .postgres {
            guard let postgresURL else { throw ValidationError("--store postgres needs --postgres-url (ops/bench/ingest starts a server)") }
            server = try PostgresBackend.Configuration(url: postgresURL)
        } else {
            server = nil
        }
    }

    private func name(_ label: String) -> String { "gemello_bench_\(getpid())_\(label)" }

    func fresh(_ label: String) throws -> TwinStore {
        guard var server else { return try TwinStore(path: "\(scratch)/\(name(label)).sqlite") }
        try admin { try $0.run("CREATE DATABASE \(name(label))") }
        server.database = name(label)
        return try TwinStore(backend: PostgresBackend(server))
    }

    func remove(_ twin: TwinStore) {
        twin.close()
        if server == nil {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: twin.path + suffix) }
        } else if let database = twin.path.split(separator: "/").last {
            try? admin { try $0.run("DROP DATABASE IF EXISTS \(database)") }
        }
    }

    /// Runs `body` on the server's `postgres` database, outside a transaction (CREATE DATABASE).
    private func admin(_ body: (any StoreConnection) throws -> Void) throws {
        guard var server else { return }
        server.database = "postgres"
        let backend = try PostgresBackend(server)
        defer { backend.close() }
        try backend.read { db in try body(db) }
    }
}
