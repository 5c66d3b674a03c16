import GemelloCore
import GemelloStorage

/// The twin's history, columnar and compressed (docs/history-format.md).
///
/// Every batch lands durably in its own transaction as one *fragment* per series: a
/// ``SeriesChunk`` of that series' points in the batch, with the batch (boot epoch, sequence,
/// commit time) as the source of every point. ``compact(now:policy:force:)`` then merges the
/// fragments of a series, together with the series' last chunk while it is not full, into
/// *sealed* chunks of up to `chunkPoints` points in observation order. Late readings (a backlog
/// after an outage) land as fragments like any other and are sealed into chunks of their own
/// time range: full chunks are never rewritten, so reads merge chunks that overlap in time.
///
/// A row per chunk: `(series_id, first_ts, last_ts, count, sealed, committed, data)`, indexed by
/// `(series_id, last_ts)`. Lineage rides inside `data` (the sources and runs of points per
/// source): bits per reading, not bytes.
///
/// A part of the ``TwinStore`` (its `history`), sharing its ``TwinDatabase``: ingest writes
/// fragments in the batch's transaction (the static functions here), this type does the rest.
public final class HistoryStore: Sendable {
    let database: TwinDatabase

    init(database: TwinDatabase) { self.database = database }

    func read<T: Sendable>(_ body: (any StoreConnection) throws -> T) throws(AggregatorError) -> T { try database.read(body) }
    func writing<T: Sendable>(_ body: (any StoreConnection) throws -> T) throws(AggregatorError) -> T { try database.writing(body) }

    static let schema = """
        CREATE TABLE IF NOT EXISTS chunks (id INTEGER PRIMARY KEY, series_id INTEGER NOT NULL, first_ts INTEGER NOT NULL,
            last_ts INTEGER NOT NULL, count INTEGER NOT NULL, sealed INTEGER NOT NULL, committed INTEGER NOT NULL, data BLOB NOT NULL);
        CREATE INDEX IF NOT EXISTS chunks_by_series ON chunks (series_id, last_ts);
        CREATE INDEX IF NOT EXISTS chunks_unsealed ON chunks (sealed, series_id) WHERE sealed = 0;
        CREATE TABLE IF NOT EXISTS rollups (series_id INTEGER NOT NULL, hour INTEGER NOT NULL, count INTEGER NOT NULL,
            sum REAL NOT NULL, sumsq REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
            PRIMARY KEY (series_id, hour)) WITHOUT ROWID;
        """

    /// How compaction shapes the history.
    public struct Policy: Sendable, Equatable {
        /// Points per sealed chunk.
        public var chunkPoints = 4096
        /// A series' fragments are sealed once they hold `chunkPoints` points or the oldest is this old.
        public var sealAfter: Duration = .seconds(600)
        /// How long raw readings are kept, per entity type (`"*"`: every other type); absent: forever.
        public var retention: [String: Duration] = [:]
        /// How long the hourly rollups are kept; nil: forever.
        public var rollupRetention: Duration?

        public init(chunkPoints: Int = 4096, sealAfter: Duration = .seconds(600), retention: [String: Duration] = [:],
                    rollupRetention: Duration? = nil) {
            self.chunkPoints = chunkPoints
            self.sealAfter = sealAfter
            self.retention = retention
            self.rollupRetention = rollupRetention
        }

        /// The raw retention of an entity type, if any.
        public func retention(of type: String) -> Duration? { retention[type] ?? retention["*"] }
    }

    /// One fragment per series of `batch` (written by ingest, in the batch's transaction).
    static func fragments(of batch: Batch, seriesIDs: [Int64], committedAt now: Int64) -> [(chunk: SeriesChunk, series: Int64)] {
        var timestamps = [[Int64]](repeating: [], count: seriesIDs.count)
        var values = [[Double]](repeating: [], count: seriesIDs.count)
        for i in 0..<batch.count {
            let s = Int(batch.seriesIndex[i])
            timestamps[s].append(batch.millisecondTimestamp(i))
            values[s].append(batch.values[i])
        }
        let source = SeriesChunk.Source(epoch: batch.bootEpoch, sequence: batch.sequence, committedAt: now)
        var fragments: [(chunk: SeriesChunk, series: Int64)] = []
        for s in seriesIDs.indices where !timestamps[s].isEmpty {
            var chunk = SeriesChunk(timestamps: timestamps[s], values: values[s], source: source)
            let order = SeriesChunk.stableOrder(chunk.timestamps)
            if order != Array(order.indices) {  // a batch is usually in order already
                chunk = SeriesChunk(timestamps: order.map { chunk.timestamps[$0] }, values: order.map { chunk.values[$0] }, source: source)
            }
            fragments.append((chunk, seriesIDs[s]))
        }
        return fragments
    }

    /// Writes one chunk row (its times, count and newest commit time from the chunk itself).
    static func insert(_ chunk: SeriesChunk, series: Int64, sealed: Bool, db: any StoreConnection) throws {
        try insert([(chunk, series)], sealed: sealed, db: db)
    }

    /// Writes chunk rows in one statement.
    static func insert(_ chunks: [(chunk: SeriesChunk, series: Int64)], sealed: Bool, db: any StoreConnection) throws {
        guard !chunks.isEmpty else { return }
        var values: [StoreValue] = []
        values.reserveCapacity(chunks.count * 7)
        for (chunk, series) in chunks {
            values += [.integer(series), .integer(chunk.timestamps[0]), .integer(chunk.timestamps[chunk.count - 1]), .integer(Int64(chunk.count)),
                       .integer(sealed ? 1 : 0), .integer(chunk.sources.map(\.committedAt).max() ?? 0), .blob(try chunk.encoded())]
        }
        let tuples = Array(repeating: "(?, ?, ?, ?, ?, ?, ?)", count: chunks.count).joined(separator: ", ")
        try db.send("INSERT INTO chunks (series_id, first_ts, last_ts, count, sealed, committed, data) VALUES \(tuples)", values)
    }

    /// Locks a series' row until the transaction ends: aggregators sharing a store (a share
    /// group) then never seal, merge or trim one series' chunks at once. Nothing on SQLite.
    static func lockSeries(_ series: Int64, _ db: any StoreConnection) throws {
        guard db.dialect != .sqlite else { return }
        _ = try db.query("SELECT id FROM series WHERE id = ?\(db.dialect.forUpdate)", [.integer(series)])
    }

    /// Replaces chunk row `row` by `chunk` (or deletes it when `chunk` is empty).
    static func replace(chunk row: Int64, sealed: Int64, series: Int64, with chunk: SeriesChunk, db: any StoreConnection) throws {
        try db.run("DELETE FROM chunks WHERE id = ?", [.integer(row)])
        guard chunk.count > 0 else { return }
        try insert(chunk, series: series, sealed: sealed == 1, db: db)
    }

    /// Bytes and rows of the history (for `/metrics`, benchmarks and `gemello twin`).
    public func footprint() throws(AggregatorError) -> (chunks: Int64, fragments: Int64, points: Int64, bytes: Int64) {
        try read { db in
            let row = try db.query("""
                SELECT count(*), CAST(coalesce(sum(CASE WHEN sealed = 0 THEN 1 ELSE 0 END), 0) AS BIGINT),
                       CAST(coalesce(sum(count), 0) AS BIGINT), CAST(coalesce(sum(length(data)), 0) AS BIGINT) FROM chunks
                """)
            guard try row.step() else { return (0, 0, 0, 0) }
            return (row.int64(0), row.int64(1), row.int64(2), row.int64(3))
        }
    }
}

extension SeriesChunk {
    /// Points `range` of the chunk (sources kept as they are).
    func slice(_ range: Range<Int>) -> SeriesChunk {
        SeriesChunk(timestamps: Array(timestamps[range]), values: Array(values[range]), sources: sources,
                    sourceIndex: Array(sourceIndex[range]))
    }

    func suffix(_ n: Int) -> SeriesChunk { slice((count - n)..<count) }

    /// The chunk without point `i` (sources no point uses any more are dropped).
    func removing(_ i: Int) -> SeriesChunk {
        var rest = self
        rest.timestamps.remove(at: i)
        rest.values.remove(at: i)
        rest.sourceIndex.remove(at: i)
        let used = Array(Set(rest.sourceIndex)).sorted()
        guard used.count < sources.count else { return rest }
        var remap = [UInt32: UInt32]()
        for (new, old) in used.enumerated() { remap[old] = UInt32(new) }
        rest.sources = used.map { sources[Int($0)] }
        rest.sourceIndex = rest.sourceIndex.map { remap[$0]! }
        return rest
    }
}
