import GemelloCore
import GemelloStorage
import GemelloStorageSQLite

/// The twin's store, on a ``StoreBackend`` (embedded SQLite by default, or PostgreSQL:
/// `store.kind`, docs/storage.md) through portable SQL: ingest (one transaction per batch: de-duplication
/// record as sequence ranges, `TwinStore+Dedupe.swift`; history fragments; derived indicators;
/// latest values; agent counters), the agents and their sensors (`TwinStore+Fleet.swift`), the
/// twin's entities (`TwinStore+Twin.swift`). Its history is a part of its own, ``history``
/// (``HistoryStore``: reads, sealing, retention). Both share one ``TwinDatabase``.
public final class TwinStore: Sendable {
    let database: TwinDatabase
    /// The columnar history: points, lineage, sealing, rollups, retention.
    public let history: HistoryStore
    public var path: String { database.path }
    /// Readings moved from a pre-columnar store's `history` table when it was opened (0: none).
    public let migratedReadings: Int

    static let schema = """
        CREATE TABLE IF NOT EXISTS agents (id TEXT PRIMARY KEY, site_id TEXT, site_kind TEXT, latitude REAL, longitude REAL,
            version TEXT, boot_epoch INTEGER NOT NULL DEFAULT 0, death_epoch INTEGER NOT NULL DEFAULT 0,
            birth_time INTEGER, last_seen INTEGER, batches INTEGER NOT NULL DEFAULT 0, readings INTEGER NOT NULL DEFAULT 0,
            duplicates INTEGER NOT NULL DEFAULT 0, rejected INTEGER NOT NULL DEFAULT 0,
            reported_accepted INTEGER, reported_buffered INTEGER);
        CREATE TABLE IF NOT EXISTS sensors (agent_id TEXT NOT NULL, sensor_id TEXT NOT NULL, entity_type TEXT NOT NULL,
            PRIMARY KEY (agent_id, sensor_id)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, name TEXT NOT NULL,
            unit TEXT NOT NULL, latest_ts INTEGER, latest_value REAL, count INTEGER NOT NULL DEFAULT 0,
            UNIQUE (agent_id, name));
        """ + HistoryStore.schema + deliveredSchema + fleetSchema + alertsSchema

    /// Opens the embedded store (SQLite) at `path`.
    public convenience init(path: String) throws(AggregatorError) {
        let backend: SQLiteBackend
        do {
            backend = try SQLiteBackend(path: path)
        } catch {
            throw AggregatorError(.store, "cannot open the twin store at \(path): \(error). "
                                  + "Fix: make sure the folder exists and is writable (store.path; the Debian package makes /var/lib/gemello), or run with --state-dir DIR")
        }
        try self.init(backend: backend)
    }

    /// Opens the store on `backend`: makes its schema, migrates what earlier releases left (in one
    /// transaction), and loads the series ids.
    public init(backend: any StoreBackend) throws(AggregatorError) {
        do {
            // SQLite's synchronous=FULL (SQLiteBackend's default) and PostgreSQL's synchronous
            // commit: a commit is on disk before the batch is acknowledged, so an acknowledged
            // batch survives a power cut too (the agent deletes it on the ack).
            let (moved, ids) = try backend.transaction { db -> (Int, [String: [String: Int64]]) in
                if db.dialect == .sqlite { try Self.migrateToDeliveryRanges(db) }
                try db.executeSchema(Self.schema)
                try Self.addFleetColumns(db)
                // Share groups: whose rule state of an agent is current (AlertEngine).
                try Self.addColumns(table: "agents", [("alert_version", "INTEGER")], db)
                try Self.addColumns(table: "series", [("alert_watermark", "INTEGER")], db)
                let moved = db.dialect == .sqlite ? try HistoryStore.migrateRowHistory(db) : 0
                var ids: [String: [String: Int64]] = [:]
                let rows = try db.query("SELECT id, agent_id, name FROM series")
                while try rows.step() { ids[rows.text(1), default: [:]][rows.text(2)] = rows.int64(0) }
                return (moved, ids)
            }
            migratedReadings = moved
            database = TwinDatabase(backend: backend, seriesIDs: ids)
            history = HistoryStore(database: database)
        } catch {
            throw AggregatorError(.store, "cannot open the twin store at \(backend.location): \(error). "
                                  + (backend.dialect == .sqlite ? "Fix: make sure the folder exists and is writable (store.path; the Debian package makes /var/lib/gemello), or run with --state-dir DIR"
                                                                : "Fix: check that the server is up and store.url names a database the user may write"))
        }
    }

    /// What ingesting one batch did.
    public enum IngestOutcome: Sendable, Equatable {
        case stored(readings: Int)
        /// Already ingested earlier (same agent, boot epoch and sequence): nothing written again.
        case duplicate
    }

    /// Stores a batch in one transaction: de-duplication record, history, latest values, agent
    /// counters, and whatever `alongside` writes through the same connection (the notifications
    /// the batch causes). When this returns the batch is durable and may be acknowledged.
    public func ingest(_ batch: Batch, receivedAt now: Int64,
                       alongside: ((any StoreConnection) throws -> Void)? = nil) throws(AggregatorError) -> IngestOutcome {
        try ingest([batch], receivedAt: now, alongside: alongside.map { hook in { stored, db in if !stored.isEmpty { try hook(db) } } })[0]
    }

    /// Stores batches in one transaction (group commit: one sync to disk for all of them), each
    /// as ``ingest(_:receivedAt:alongside:)`` would, in order (a batch repeated in the group is a
    /// duplicate the second time); `alongside` runs once after all of them, in the transaction,
    /// with the indexes of the batches stored (not duplicates). All or nothing: when this throws,
    /// none of them is stored.
    public func ingest(_ batches: [Batch], receivedAt now: Int64,
                       alongside: (([Int], any StoreConnection) throws -> Void)? = nil) throws(AggregatorError) -> [IngestOutcome] {
        guard !batches.isEmpty else { return [] }
        do {
            let (outcomes, made) = try database.backend.transaction { db -> ([IngestOutcome], [String: [String: Int64]]) in
                var writer = try IngestWriter(batches, now: now, ids: SeriesIDs(committed: database.seriesIDs.withLock { $0 }), db: db)
                var outcomes: [IngestOutcome] = []
                for batch in batches { outcomes.append(try writer.add(batch, db: db)) }
                try writer.finish(db)
                let stored = outcomes.indices.filter { if case .stored = outcomes[$0] { true } else { false } }
                try alongside?(stored, db)
                return (outcomes, writer.ids.made)
            }
            // Series made by this transaction are known from now on (never before its commit).
            if !made.isEmpty {
                database.seriesIDs.withLock { cache in
                    for (agent, series) in made { cache[agent, default: [:]].merge(series) { old, _ in old } }
                }
            }
            return outcomes
        } catch let error as AggregatorError {
            throw error
        } catch {
            let names = batches.prefix(3).map { "\($0.sequence) of \($0.agentID)" }.joined(separator: ", ")
            throw AggregatorError(.store, "cannot store batch\(batches.count == 1 ? "" : "es") \(names)\(batches.count > 3 ? ", …" : ""): \(error)")
        }
    }

    /// Gives free space back and returns the bytes the store takes (SQLite: checkpoint and
    /// `VACUUM`; PostgreSQL: `VACUUM FULL`). For benchmarks, never during ingest.
    public func compactFile() throws(AggregatorError) -> Int64 {
        do {
            return try database.backend.compact()
        } catch {
            throw AggregatorError(.store, "cannot compact \(path): \(error)")
        }
    }

    /// Which backend keeps this store.
    public var kind: StoreDialect { database.backend.dialect }

    /// Closes the backend's connections.
    public func close() { database.backend.close() }

    /// Runs `body` in a transaction on the writer connection (births, deaths, health, rejections).
    func write(_ body: (any StoreConnection) throws -> Void) throws(AggregatorError) { try database.write(body) }

    /// Runs `body` in a transaction on the writer connection and returns its result (the NGSI-LD
    /// tables and the notification outbox share it with ingest).
    func writing<T: Sendable>(_ body: (any StoreConnection) throws -> T) throws(AggregatorError) -> T { try database.writing(body) }

    /// Runs `body` on the reader connection.
    func read<T: Sendable>(_ body: (any StoreConnection) throws -> T) throws(AggregatorError) -> T { try database.read(body) }
}
