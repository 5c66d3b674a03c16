import GemelloCore
import GemelloSQLite

/// The twin's embedded store (SQLite, WAL): ingest (one transaction per batch: de-duplication
/// record as sequence ranges, `TwinStore+Dedupe.swift`; history fragments; derived indicators;
/// latest values; agent counters), the agents and their sensors (`TwinStore+Fleet.swift`), the
/// twin's entities (`TwinStore+Twin.swift`). Its history is a part of its own, ``history``
/// (``HistoryStore``: reads, sealing, retention). Both share one ``TwinDatabase``.
public final class TwinStore: Sendable {
    typealias Writer = TwinDatabase.Writer

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
        """ + HistoryStore.schema + deliveredSchema + fleetSchema

    public init(path: String) throws(AggregatorError) {
        do {
            // synchronous=FULL: a commit is on disk before the batch is acknowledged, so an
            // acknowledged batch survives a power cut too (the agent deletes it on the ack).
            let db = try SQLiteConnection(path: path, options: .init(synchronous: "FULL"))
            try Self.migrateToDeliveryRanges(db)
            try db.execute(Self.schema)
            try Self.addFleetColumns(db)
            migratedReadings = try HistoryStore.migrateRowHistory(db)
            var state = Writer(db: db)
            let rows = try db.statement("SELECT id, agent_id, name FROM series")
            while try rows.step() { state.seriesIDs[rows.text(1), default: [:]][rows.text(2)] = rows.int64(0) }
            // 32 MiB of page cache per connection (SQLite's default is 2 MiB): the fleet view and
            // the NGSI-LD projection re-read the agents and series of large fleets every second.
            try db.execute("PRAGMA cache_size = -32768")
            let readOnly = try SQLiteConnection(path: path, options: .init(readOnly: true))
            try readOnly.execute("PRAGMA cache_size = -32768")
            database = TwinDatabase(path: path, writer: state, reader: readOnly)
            history = HistoryStore(database: database)
        } catch {
            throw AggregatorError(.store, "cannot open the twin store at \(path): \(error). "
                                  + "Fix: make sure the folder exists and is writable (store.path)")
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
                       alongside: ((SQLiteConnection) throws -> Void)? = nil) throws(AggregatorError) -> IngestOutcome {
        try ingest([batch], receivedAt: now, alongside: alongside.map { hook in { stored, db in if !stored.isEmpty { try hook(db) } } })[0]
    }

    /// Stores batches in one transaction (group commit: one sync to disk for all of them), each
    /// as ``ingest(_:receivedAt:alongside:)`` would, in order (a batch repeated in the group is a
    /// duplicate the second time); `alongside` runs once after all of them, in the transaction,
    /// with the indexes of the batches stored (not duplicates). All or nothing: when this throws,
    /// none of them is stored.
    public func ingest(_ batches: [Batch], receivedAt now: Int64,
                       alongside: (([Int], SQLiteConnection) throws -> Void)? = nil) throws(AggregatorError) -> [IngestOutcome] {
        do {
            return try database.writer.withLock { (state: inout Writer) throws -> [IngestOutcome] in
                let known = state.seriesIDs
                do {
                    return try state.db.transaction { db -> [IngestOutcome] in
                        var outcomes: [IngestOutcome] = []
                        for batch in batches { outcomes.append(try Self.ingest(batch, now: now, state: &state, db: db)) }
                        let stored = outcomes.indices.filter { if case .stored = outcomes[$0] { true } else { false } }
                        try alongside?(stored, db)
                        return outcomes
                    }
                } catch {
                    state.seriesIDs = known  // series rows made in the rolled-back transaction are gone
                    throw error
                }
            }
        } catch let error as AggregatorError {
            throw error
        } catch {
            let names = batches.prefix(3).map { "\($0.sequence) of \($0.agentID)" }.joined(separator: ", ")
            throw AggregatorError(.store, "cannot store batch\(batches.count == 1 ? "" : "es") \(names)\(batches.count > 3 ? ", …" : ""): \(error)")
        }
    }

    private static func ingest(_ batch: Batch, now: Int64, state: inout Writer, db: SQLiteConnection) throws -> IngestOutcome {
        try db.statement("INSERT OR IGNORE INTO agents (id) VALUES (?)").run([.text(batch.agentID)])
        guard try recordDelivery(agent: batch.agentID, epoch: batch.bootEpoch, sequence: batch.sequence, in: db) else {
            try db.statement("UPDATE agents SET duplicates = duplicates + 1, last_seen = ? WHERE id = ?")
                .run([.integer(now), .text(batch.agentID)])
            return .duplicate
        }
        var ids: [Int64] = []
        for info in batch.series { ids.append(try seriesID(info, agent: batch.agentID, state: &state)) }
        try store(batch, seriesIDs: ids, committedAt: now, in: db)
        // Derived indicators, from this batch's lineage, commit with it.
        if let derived = try airQualityIndicators(for: batch, state: state, db: db) {
            var derivedIDs: [Int64] = []
            for info in derived.series { derivedIDs.append(try seriesID(info, agent: batch.agentID, state: &state)) }
            try store(derived, seriesIDs: derivedIDs, committedAt: now, in: db)
        }
        try db.statement("UPDATE agents SET batches = batches + 1, readings = readings + ?, last_seen = ? WHERE id = ?")
            .run([.integer(Int64(batch.count)), .integer(now), .text(batch.agentID)])
        return .stored(readings: batch.count)
    }

    /// A batch's history fragments and its series' latest values and counts.
    static func store(_ batch: Batch, seriesIDs ids: [Int64], committedAt now: Int64, in db: SQLiteConnection) throws {
        var latest = [(ts: Int64, value: Double)?](repeating: nil, count: ids.count)
        var counts = [Int64](repeating: 0, count: ids.count)
        try HistoryStore.appendFragments(batch, seriesIDs: ids, committedAt: now, in: db)
        for i in 0..<batch.count {
            let s = Int(batch.seriesIndex[i])
            let (ts, value) = (batch.millisecondTimestamp(i), batch.values[i])
            counts[s] += 1
            if let current = latest[s], current.ts > ts { continue }
            latest[s] = (ts, value)  // ties: the later reading in the batch wins
        }
        let update = try db.statement("""
            UPDATE series SET count = count + ?,
                latest_value = CASE WHEN latest_ts IS NULL OR latest_ts <= ? THEN ? ELSE latest_value END,
                latest_ts = CASE WHEN latest_ts IS NULL OR latest_ts <= ? THEN ? ELSE latest_ts END
            WHERE id = ?
            """)
        for (s, entry) in latest.enumerated() {
            guard let entry else { continue }
            try update.run([.integer(counts[s]), .integer(entry.ts), .real(entry.value),
                            .integer(entry.ts), .integer(entry.ts), .integer(ids[s])])
        }
    }

    private static func seriesID(_ info: SeriesInfo, agent: String, state: inout Writer) throws -> Int64 {
        if let id = state.seriesIDs[agent]?[info.name] { return id }
        try state.db.statement("INSERT OR IGNORE INTO series (agent_id, name, unit) VALUES (?, ?, ?)")
            .run([.text(agent), .text(info.name), .text(info.unit)])
        guard let id = try state.db.scalarInt("SELECT id FROM series WHERE agent_id = ? AND name = ?", [.text(agent), .text(info.name)]) else {
            throw AggregatorError(.store, "series \(info.name) of \(agent) vanished")
        }
        state.seriesIDs[agent, default: [:]][info.name] = id
        return id
    }

    /// Checkpoints the log and rebuilds the file without free pages (`VACUUM`); its size in bytes.
    /// For benchmarks, never during ingest.
    public func compactFile() throws(AggregatorError) -> Int64 {
        do {
            try database.writer.withLock { state in
                try state.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                try state.db.execute("VACUUM")
                try state.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            }
        } catch {
            throw AggregatorError(.store, "cannot compact \(path): \(error)")
        }
        return try read { db in
            (try db.scalarInt("PRAGMA page_count") ?? 0) * (try db.scalarInt("PRAGMA page_size") ?? 0)
        }
    }

    /// Runs `body` in a transaction on the writer connection (births, deaths, health, rejections).
    func write(_ body: (SQLiteConnection) throws -> Void) throws(AggregatorError) { try database.write(body) }

    /// Runs `body` in a transaction on the writer connection and returns its result (the NGSI-LD
    /// tables and the notification outbox share it with ingest).
    func writing<T: Sendable>(_ body: (SQLiteConnection) throws -> T) throws(AggregatorError) -> T { try database.writing(body) }

    /// Runs `body` on the reader connection.
    func read<T: Sendable>(_ body: (SQLiteConnection) throws -> T) throws(AggregatorError) -> T { try database.read(body) }
}
