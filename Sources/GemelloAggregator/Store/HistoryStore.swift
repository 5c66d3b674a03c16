import GemelloCore
import GemelloSQLite

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

    func read<T: Sendable>(_ body: (SQLiteConnection) throws -> T) throws(AggregatorError) -> T { try database.read(body) }
    func writing<T: Sendable>(_ body: (SQLiteConnection) throws -> T) throws(AggregatorError) -> T { try database.writing(body) }

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

    /// Writes one fragment per series of `batch` (inside the ingest transaction).
    static func appendFragments(_ batch: Batch, seriesIDs: [Int64], committedAt now: Int64, in db: SQLiteConnection) throws {
        var timestamps = [[Int64]](repeating: [], count: seriesIDs.count)
        var values = [[Double]](repeating: [], count: seriesIDs.count)
        for i in 0..<batch.count {
            let s = Int(batch.seriesIndex[i])
            timestamps[s].append(batch.millisecondTimestamp(i))
            values[s].append(batch.values[i])
        }
        let source = SeriesChunk.Source(epoch: batch.bootEpoch, sequence: batch.sequence, committedAt: now)
        for s in seriesIDs.indices where !timestamps[s].isEmpty {
            var chunk = SeriesChunk(timestamps: timestamps[s], values: values[s], source: source)
            let order = SeriesChunk.stableOrder(chunk.timestamps)
            if order != Array(order.indices) {  // a batch is usually in order already
                chunk = SeriesChunk(timestamps: order.map { chunk.timestamps[$0] }, values: order.map { chunk.values[$0] }, source: source)
            }
            try insert(chunk, series: seriesIDs[s], sealed: false, db: db)
        }
    }

    /// What one compaction pass did.
    public struct CompactionReport: Sendable, Equatable {
        public var series = 0
        public var fragments = 0
        public var chunksRewritten = 0
        public var chunksWritten = 0
        public var points = 0
    }

    /// Seals the fragments that are due (see ``Policy``); with `force`, every fragment.
    /// One transaction per series, so ingest waits for at most one series' merge.
    @discardableResult
    public func compact(now: Int64, policy: Policy = Policy(), force: Bool = false) throws(AggregatorError) -> CompactionReport {
        let due: [Int64] = try read { db in
            let rows = try db.statement("SELECT series_id, sum(count), min(committed) FROM chunks WHERE sealed = 0 GROUP BY series_id")
            var ids: [Int64] = []
            while try rows.step() {
                if force || rows.int64(1) >= Int64(policy.chunkPoints) || now - rows.int64(2) >= policy.sealAfter.wholeMilliseconds {
                    ids.append(rows.int64(0))
                }
            }
            return ids
        }
        var report = CompactionReport()
        for series in due {
            let one: CompactionReport = try writing { db in try Self.compact(series: series, chunkPoints: policy.chunkPoints, in: db) }
            report.series += 1
            report.fragments += one.fragments
            report.chunksRewritten += one.chunksRewritten
            report.chunksWritten += one.chunksWritten
            report.points += one.points
        }
        return report
    }

    /// Re-compresses a series' sealed chunks that are not full (late readings sealed into small
    /// chunks of their own, one per outage or per `seal-after`) into full ones, when that makes
    /// fewer chunks; full chunks are never touched. At most `limit` series per call.
    @discardableResult
    public func mergeSmallChunks(policy: Policy = Policy(), limit: Int = 100) throws(AggregatorError) -> CompactionReport {
        let points = Int64(policy.chunkPoints)
        let candidates: [Int64] = try read { db in
            let rows = try db.statement("""
                SELECT series_id FROM chunks WHERE sealed = 1 AND count < ?1 GROUP BY series_id
                HAVING count(*) > (sum(count) + ?1 - 1) / ?1 LIMIT ?2
                """)
            try rows.bind([.integer(points), .integer(Int64(limit))])
            var ids: [Int64] = []
            while try rows.step() { ids.append(rows.int64(0)) }
            rows.reset()
            return ids
        }
        var report = CompactionReport()
        for series in candidates {
            try writing { db in
                let rows = try db.statement("SELECT id, data FROM chunks WHERE series_id = ? AND sealed = 1 AND count < ? ORDER BY id")
                try rows.bind([.integer(series), .integer(points)])
                var ids: [Int64] = []
                var parts: [SeriesChunk] = []
                while try rows.step() {
                    ids.append(rows.int64(0))
                    parts.append(try SeriesChunk(decoding: rows.blob(1)))
                }
                rows.reset()
                let merged = SeriesChunk.merged(parts)
                for id in ids { try db.statement("DELETE FROM chunks WHERE id = ?").run([.integer(id)]) }
                for chunk in merged.split(size: policy.chunkPoints) {
                    try Self.insert(chunk, series: series, sealed: true, db: db)
                    report.chunksWritten += 1
                }
                report.series += 1
                report.chunksRewritten += ids.count
                report.points += merged.count
            }
        }
        return report
    }

    private static func compact(series: Int64, chunkPoints: Int, in db: SQLiteConnection) throws -> CompactionReport {
        var report = CompactionReport()
        // The fragments in arrival order, and the series' newest sealed chunk if it has room.
        let rows = try db.statement("""
            SELECT id, data, sealed FROM chunks WHERE series_id = ?1 AND sealed = 0
            UNION ALL
            SELECT id, data, sealed FROM (SELECT id, data, sealed, count FROM chunks WHERE series_id = ?1 AND sealed = 1
                ORDER BY last_ts DESC, id DESC LIMIT 1) WHERE count < ?2
            ORDER BY sealed DESC, id
            """)
        try rows.bind([.integer(series), .integer(Int64(chunkPoints))])
        var ids: [Int64] = []
        var parts: [SeriesChunk] = []
        while try rows.step() {
            ids.append(rows.int64(0))
            let part = try SeriesChunk(decoding: rows.blob(1))
            parts.append(part)
            if rows.int64(2) == 0 { report.fragments += 1 } else { report.chunksRewritten += 1 }
        }
        rows.reset()
        guard report.fragments > 0 else { return report }
        let merged = SeriesChunk.merged(parts)
        let delete = try db.statement("DELETE FROM chunks WHERE id = ?")
        for id in ids { try delete.run([.integer(id)]) }
        for chunk in merged.split(size: chunkPoints) {
            try insert(chunk, series: series, sealed: true, db: db)
            report.chunksWritten += 1
        }
        report.points = merged.count
        return report
    }

    static let hour: Int64 = 3_600_000

    /// Adds points to the hourly rollups (count, sum, sum of squares, min, max per series and hour).
    static func addRollups(series: Int64, _ chunks: [SeriesChunk], db: SQLiteConnection) throws {
        var buckets: [Int64: (count: Int64, sum: Double, squares: Double, min: Double, max: Double)] = [:]
        for chunk in chunks {
            for (t, v) in zip(chunk.timestamps, chunk.values) where v.isFinite {
                let h = t >= 0 ? t / hour * hour : (t - hour + 1) / hour * hour
                if let b = buckets[h] {
                    buckets[h] = (b.count + 1, b.sum + v, b.squares + v * v, Swift.min(b.min, v), Swift.max(b.max, v))
                } else {
                    buckets[h] = (1, v, v * v, v, v)
                }
            }
        }
        let upsert = try db.statement("""
            INSERT INTO rollups (series_id, hour, count, sum, sumsq, min, max) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (series_id, hour) DO UPDATE SET count = count + excluded.count, sum = sum + excluded.sum,
                sumsq = sumsq + excluded.sumsq, min = min(min, excluded.min), max = max(max, excluded.max)
            """)
        for (h, b) in buckets {
            try upsert.run([.integer(series), .integer(h), .integer(b.count), .real(b.sum), .real(b.squares), .real(b.min), .real(b.max)])
        }
    }

    /// Hourly rollups of one series within `range` (hours whose start lies in it), in time order.
    public func rollups(agent: String, series: String, in range: ClosedRange<Int64>) throws(AggregatorError) -> [HourRollup] {
        try read { db in
            guard let id = try Self.seriesID(agent: agent, series: series, db: db) else { return [] }
            let rows = try db.statement("SELECT hour, count, sum, sumsq, min, max FROM rollups WHERE series_id = ? AND hour BETWEEN ? AND ? ORDER BY hour")
            try rows.bind([.integer(id), .integer(range.lowerBound), .integer(range.upperBound)])
            var out: [HourRollup] = []
            while try rows.step() {
                out.append(HourRollup(hour: rows.int64(0), count: rows.int64(1), sum: rows.double(2), sumOfSquares: rows.double(3),
                                      min: rows.double(4), max: rows.double(5)))
            }
            rows.reset()
            return out
        }
    }

    /// What retention removed.
    public struct RetentionReport: Sendable, Equatable {
        public var chunks = 0
        public var points = 0
        public var rollups = 0
    }

    /// Drops sealed chunks wholly older than their entity type's retention, their points added to
    /// the hourly rollups, and rollups older than the rollup retention. A chunk that straddles
    /// the limit stays until it is wholly past.
    @discardableResult
    public func applyRetention(now: Int64, policy: Policy) throws(AggregatorError) -> RetentionReport {
        var report = RetentionReport()
        guard !policy.retention.isEmpty || policy.rollupRetention != nil else { return report }
        try writing { db in
            if !policy.retention.isEmpty {
                // Each series' entity type: its sensor's, from the agent's birth (DeviceMeasurement if unknown).
                let rows = try db.statement("""
                    SELECT s.id, coalesce(x.entity_type, 'DeviceMeasurement') FROM series s
                    LEFT JOIN sensors x ON x.agent_id = s.agent_id AND x.sensor_id = substr(s.name, 1, instr(s.name, '/') - 1)
                    """)
                var limits: [(Int64, Int64)] = []
                while try rows.step() {
                    if let keep = policy.retention(of: rows.text(1)) { limits.append((rows.int64(0), now - keep.wholeMilliseconds)) }
                }
                rows.reset()
                // A chunk wholly past the limit goes; its points live on in the hourly rollups
                // (which thus hold exactly the readings the raw history no longer has).
                let expired = try db.statement("SELECT id, data FROM chunks WHERE series_id = ? AND sealed = 1 AND last_ts < ?")
                let drop = try db.statement("DELETE FROM chunks WHERE id = ?")
                for (series, limit) in limits {
                    try expired.bind([.integer(series), .integer(limit)])
                    var ids: [Int64] = []
                    var chunks: [SeriesChunk] = []
                    while try expired.step() {
                        ids.append(expired.int64(0))
                        chunks.append(try SeriesChunk(decoding: expired.blob(1)))
                    }
                    expired.reset()
                    guard !ids.isEmpty else { continue }
                    try Self.addRollups(series: series, chunks, db: db)
                    for id in ids { try drop.run([.integer(id)]) }
                    report.chunks += ids.count
                    report.points += chunks.reduce(0) { $0 + $1.count }
                }
            }
            if let keep = policy.rollupRetention {
                try db.statement("DELETE FROM rollups WHERE hour < ?").run([.integer(now - keep.wholeMilliseconds)])
                report.rollups = db.changes
            }
        }
        return report
    }

    /// The chunks of one series that may hold points in `range`, merged into one in observation
    /// order (points with equal times in the order the store received them).
    /// With `limit`, reading stops once more than `limit` points are held and no further chunk
    /// can hold an earlier one: the oldest `limit` (and a few more) are exact, and a hostile
    /// request for "everything" costs a page, not the whole history.
    static func points(series: Int64, in range: ClosedRange<Int64>, limit: Int?, db: SQLiteConnection) throws -> SeriesChunk? {
        guard let limit else { return try points(series: series, in: range, db: db) }
        let rows = try db.statement("SELECT id, first_ts, data FROM chunks WHERE series_id = ? AND last_ts >= ? AND first_ts <= ? ORDER BY first_ts, id")
        try rows.bind([.integer(series), .integer(range.lowerBound), .integer(range.upperBound)])
        var parts: [(id: Int64, chunk: SeriesChunk)] = []
        var times: [Int64] = []
        while try rows.step() {
            if times.count > limit {
                // Every further chunk starts after the (limit+1)-th point held: it cannot change the first limit.
                let boundary = times.sorted()[limit]
                if rows.int64(1) > boundary { break }
            }
            let chunk = try SeriesChunk(decoding: rows.blob(2))
            parts.append((rows.int64(0), chunk))
            times += chunk.timestamps.lazy.filter { range.contains($0) }
        }
        rows.reset()
        guard !parts.isEmpty else { return nil }
        return trimmed(SeriesChunk.merged(parts.sorted { $0.id < $1.id }.map(\.chunk)), to: range)
    }

    static func points(series: Int64, in range: ClosedRange<Int64>, sealedOnly: Bool = false, db: SQLiteConnection) throws -> SeriesChunk? {
        let rows = try db.statement("SELECT data FROM chunks WHERE series_id = ? AND last_ts >= ? AND first_ts <= ?"
                                    + (sealedOnly ? " AND sealed = 1" : "") + " ORDER BY id")
        try rows.bind([.integer(series), .integer(range.lowerBound), .integer(range.upperBound)])
        var parts: [SeriesChunk] = []
        while try rows.step() { parts.append(try SeriesChunk(decoding: rows.blob(0))) }
        rows.reset()
        guard !parts.isEmpty else { return nil }
        return trimmed(SeriesChunk.merged(parts), to: range)
    }

    /// The newest `n` points of one series (by observation time), in observation order.
    static func lastPoints(series: Int64, n: Int, before end: Int64 = .max, db: SQLiteConnection) throws -> SeriesChunk? {
        let rows = try db.statement("SELECT data, first_ts, last_ts FROM chunks WHERE series_id = ? AND first_ts <= ? ORDER BY last_ts DESC, id DESC")
        try rows.bind([.integer(series), .integer(end)])
        var parts: [SeriesChunk] = []
        var held = 0
        var oldestHeld = Int64.max
        while try rows.step() {
            // Every later chunk ends before the points already held: enough once they are n.
            if held >= n && rows.int64(2) < oldestHeld { break }
            let chunk = try SeriesChunk(decoding: rows.blob(0))
            parts.append(chunk)
            held += chunk.timestamps.lazy.filter { $0 <= end }.count
            oldestHeld = min(oldestHeld, rows.int64(1))
        }
        rows.reset()
        guard !parts.isEmpty else { return nil }
        var merged = trimmed(SeriesChunk.merged(parts.reversed()), to: Int64.min...end)
        if merged.count > n { merged = merged.suffix(n) }
        return merged.count == 0 ? nil : merged
    }

    static func trimmed(_ chunk: SeriesChunk, to range: ClosedRange<Int64>) -> SeriesChunk {
        guard let first = chunk.timestamps.firstIndex(where: { $0 >= range.lowerBound }) else { return chunk.slice(0..<0) }
        let end = chunk.timestamps[first...].firstIndex(where: { $0 > range.upperBound }) ?? chunk.count
        if first == 0 && end == chunk.count { return chunk }
        return chunk.slice(first..<end)
    }

    static func seriesID(agent: String, series: String, db: SQLiteConnection) throws -> Int64? {
        try db.scalarInt("SELECT id FROM series WHERE agent_id = ? AND name = ?", [.text(agent), .text(series)])
    }

    /// One series' stored points with their lineage, in observation order, within `range`.
    public func points(agent: String, series: String, in range: ClosedRange<Int64> = Int64.min...Int64.max,
                       limit: Int? = nil) throws(AggregatorError) -> SeriesChunk? {
        try read { db in
            guard let id = try Self.seriesID(agent: agent, series: series, db: db) else { return nil }
            return try Self.points(series: id, in: range, limit: limit, db: db)
        }
    }

    /// The newest `n` points of one series at or before `end`, in observation order.
    public func lastPoints(agent: String, series: String, n: Int, before end: Int64 = .max) throws(AggregatorError) -> SeriesChunk? {
        try read { db in
            guard let id = try Self.seriesID(agent: agent, series: series, db: db) else { return nil }
            return try Self.lastPoints(series: id, n: n, before: end, db: db)
        }
    }

    public func deletePoint(agent: String, series: String, time: Int64, epoch: UInt64, sequence: UInt64, ordinal: Int) throws(AggregatorError) -> Bool {
        try writing { db -> Bool in
            guard let id = try Self.seriesID(agent: agent, series: series, db: db) else { return false }
            let rows = try db.statement("SELECT id, sealed, data FROM chunks WHERE series_id = ? AND last_ts >= ? AND first_ts <= ? ORDER BY id")
            try rows.bind([.integer(id), .integer(time), .integer(time)])
            var found: (row: Int64, sealed: Int64, chunk: SeriesChunk, index: Int)?
            var seen = 0
            scan: while try rows.step() {
                let chunk = try SeriesChunk(decoding: rows.blob(2))
                for i in 0..<chunk.count where chunk.timestamps[i] == time {
                    let source = chunk.source(of: i)
                    guard source.epoch == epoch && source.sequence == sequence else { continue }
                    if seen == ordinal { found = (rows.int64(0), rows.int64(1), chunk, i); break scan }
                    seen += 1
                }
            }
            rows.reset()
            guard let found else { return false }
            try Self.replace(chunk: found.row, sealed: found.sealed, series: id,
                             with: found.chunk.removing(found.index), db: db)
            try db.statement("UPDATE series SET count = count - 1 WHERE id = ?").run([.integer(id)])
            return true
        }
    }

    public func deleteHistory(agent: String, series: String) throws(AggregatorError) -> Int {
        try writing { db -> Int in
            guard let id = try Self.seriesID(agent: agent, series: series, db: db) else { return 0 }
            let count = Int(try db.scalarInt("SELECT coalesce(sum(count), 0) FROM chunks WHERE series_id = ?", [.integer(id)]) ?? 0)
            try db.statement("DELETE FROM chunks WHERE series_id = ?").run([.integer(id)])
            try db.statement("DELETE FROM rollups WHERE series_id = ?").run([.integer(id)])
            try db.statement("UPDATE series SET count = 0 WHERE id = ?").run([.integer(id)])
            return count
        }
    }

    /// Writes one chunk row (its times, count and newest commit time from the chunk itself).
    static func insert(_ chunk: SeriesChunk, series: Int64, sealed: Bool, db: SQLiteConnection) throws {
        try db.statement("INSERT INTO chunks (series_id, first_ts, last_ts, count, sealed, committed, data) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .run([.integer(series), .integer(chunk.timestamps[0]), .integer(chunk.timestamps[chunk.count - 1]), .integer(Int64(chunk.count)),
                  .integer(sealed ? 1 : 0), .integer(chunk.sources.map(\.committedAt).max() ?? 0), .blob(try chunk.encoded())])
    }

    /// Replaces chunk row `row` by `chunk` (or deletes it when `chunk` is empty).
    private static func replace(chunk row: Int64, sealed: Int64, series: Int64, with chunk: SeriesChunk, db: SQLiteConnection) throws {
        try db.statement("DELETE FROM chunks WHERE id = ?").run([.integer(row)])
        guard chunk.count > 0 else { return }
        try insert(chunk, series: series, sealed: sealed == 1, db: db)
    }

    /// Bytes and rows of the history (for `/metrics`, benchmarks and `gemello twin`).
    public func footprint() throws(AggregatorError) -> (chunks: Int64, fragments: Int64, points: Int64, bytes: Int64) {
        try read { db in
            let row = try db.statement("SELECT count(*), coalesce(sum(sealed = 0), 0), coalesce(sum(count), 0), coalesce(sum(length(data)), 0) FROM chunks")
            guard try row.step() else { return (0, 0, 0, 0) }
            defer { row.reset() }
            return (row.int64(0), row.int64(1), row.int64(2), row.int64(3))
        }
    }

    /// Stores from before the columnar history kept one `history` row per reading: folded into
    /// sealed chunks once, series by series, in one transaction (nothing lost: it commits whole
    /// or not at all). Their lineage is unknown: source epoch 0, sequence 0, commit time 0.
    /// Returns how many readings moved.
    static func migrateRowHistory(_ db: SQLiteConnection, chunkPoints: Int = Policy().chunkPoints) throws -> Int {
        guard try db.scalarInt("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'history'") ?? 0 > 0 else { return 0 }
        return try db.transaction { db -> Int in
            try db.execute(schema)
            var seriesIDs: [Int64] = []
            let ids = try db.statement("SELECT DISTINCT series_id FROM history")
            while try ids.step() { seriesIDs.append(ids.int64(0)) }
            ids.reset()
            let rows = try db.statement("SELECT ts, value FROM history WHERE series_id = ? ORDER BY ts, rowid")
            let unknown = SeriesChunk.Source(epoch: 0, sequence: 0, committedAt: 0)
            var moved = 0
            for series in seriesIDs {
                try rows.bind([.integer(series)])
                var timestamps: [Int64] = [], values: [Double] = []
                while try rows.step() {
                    timestamps.append(rows.int64(0))
                    values.append(rows.double(1))
                }
                rows.reset()
                guard !timestamps.isEmpty else { continue }
                for chunk in SeriesChunk(timestamps: timestamps, values: values, source: unknown).split(size: chunkPoints) {
                    try insert(chunk, series: series, sealed: true, db: db)
                }
                moved += timestamps.count
            }
            guard moved == Int(try db.scalarInt("SELECT count(*) FROM history") ?? 0) else {
                throw AggregatorError(.store, "history migration moved \(moved) readings, the old table holds a different count")
            }
            try db.execute("DROP INDEX IF EXISTS history_by_series_time; DROP TABLE history;")
            return moved
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
