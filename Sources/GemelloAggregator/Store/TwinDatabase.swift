import GemelloCore
import GemelloStorage
import Synchronization

/// The store's backend as its parts share it (``TwinStore``, its ``HistoryStore``, the NGSI-LD
/// documents and the subscription outbox): writes in transactions (one at a time in this
/// process), reads that never wait for one, and the cache of series ids. The storage
/// protocol's errors become ``AggregatorError`` here, once.
final class TwinDatabase: Sendable {
    let backend: any StoreBackend
    /// (agent, series name) → series id, of committed series only (see ``SeriesIDs``).
    let seriesIDs: Mutex<[String: [String: Int64]]>
    var path: String { backend.location }

    init(backend: any StoreBackend, seriesIDs: [String: [String: Int64]]) {
        self.backend = backend
        self.seriesIDs = Mutex(seriesIDs)
    }

    /// Runs `body` in a transaction.
    func write(_ body: (any StoreConnection) throws -> Void) throws(AggregatorError) {
        try writing(body)
    }

    /// Runs `body` in a transaction and returns its result.
    func writing<T: Sendable>(_ body: (any StoreConnection) throws -> T) throws(AggregatorError) -> T {
        do {
            return try backend.transaction(body)
        } catch {
            throw Self.convert(error, doing: "update")
        }
    }

    /// Runs `body` on the read connection.
    func read<T: Sendable>(_ body: (any StoreConnection) throws -> T) throws(AggregatorError) -> T {
        do {
            return try backend.read(body)
        } catch {
            throw Self.convert(error, doing: "read")
        }
    }

    static func convert(_ error: any Error, doing what: String) -> AggregatorError {
        if let error = error as? AggregatorError { return error }
        if let error = error as? StorageError, error.kind == .full {
            return AggregatorError(.store, "cannot \(what) the twin store: \(error). Fix: free disk space where the store lives")
        }
        return AggregatorError(.store, "cannot \(what) the twin store: \(error)")
    }
}

/// Series ids as one transaction sees them: the committed ones (the shared cache) and those it
/// made itself, which join the cache only once it commits (a rolled-back series row must never
/// be found by the next transaction).
struct SeriesIDs {
    let committed: [String: [String: Int64]]
    var made: [String: [String: Int64]] = [:]

    subscript(agent: String, series: String) -> Int64? {
        committed[agent]?[series] ?? made[agent]?[series]
    }

    /// The id of `info`'s series of `agent`, made when new.
    mutating func id(of info: SeriesInfo, agent: String, db: any StoreConnection) throws -> Int64 {
        if let id = self[agent, info.name] { return id }
        try db.run("INSERT INTO series (agent_id, name, unit) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                   [.text(agent), .text(info.name), .text(info.unit)])
        guard let id = try db.scalarInt("SELECT id FROM series WHERE agent_id = ? AND name = ?", [.text(agent), .text(info.name)]) else {
            throw AggregatorError(.store, "series \(info.name) of \(agent) vanished")
        }
        made[agent, default: [:]][info.name] = id
        return id
    }
}
