import GemelloCore
import GemelloStorage

/// Retention per entity type and the hourly rollups of what it drops (docs/history-format.md).
extension HistoryStore {
    static let hour: Int64 = 3_600_000

    /// Adds points to the hourly rollups (count, sum, sum of squares, min, max per series and hour).
    static func addRollups(series: Int64, _ chunks: [SeriesChunk], db: any StoreConnection) throws {
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
        let upsert = """
            INSERT INTO rollups (series_id, hour, count, sum, sumsq, min, max) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (series_id, hour) DO UPDATE SET count = rollups.count + excluded.count, sum = rollups.sum + excluded.sum,
                sumsq = rollups.sumsq + excluded.sumsq, min = \(db.dialect.least("rollups.min", "excluded.min")),
                max = \(db.dialect.greatest("rollups.max", "excluded.max"))
            """
        for (h, b) in buckets {
            try db.run(upsert, [.integer(series), .integer(h), .integer(b.count), .real(b.sum), .real(b.squares), .real(b.min), .real(b.max)])
        }
    }

    /// Hourly rollups of one series within `range` (hours whose start lies in it), in time order.
    public func rollups(agent: String, series: String, in range: ClosedRange<Int64>) throws(AggregatorError) -> [HourRollup] {
        try read { db in
            guard let id = try Self.seriesID(agent: agent, series: series, db: db) else { return [] }
            let rows = try db.query("SELECT hour, count, sum, sumsq, min, max FROM rollups WHERE series_id = ? AND hour BETWEEN ? AND ? ORDER BY hour", [.integer(id), .integer(range.lowerBound), .integer(range.upperBound)])
            var out: [HourRollup] = []
            while try rows.step() {
                out.append(HourRollup(hour: rows.int64(0), count: rows.int64(1), sum: rows.double(2), sumOfSquares: rows.double(3),
                                      min: rows.double(4), max: rows.double(5)))
            }
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
                let rows = try db.query("""
                    SELECT s.id, coalesce(x.entity_type, 'DeviceMeasurement') FROM series s
                    LEFT JOIN sensors x ON x.agent_id = s.agent_id
                        AND x.sensor_id = substr(s.name, 1, \(db.dialect.position(of: "'/'", in: "s.name")) - 1)
                    ORDER BY s.id
                    """)
                var limits: [(Int64, Int64)] = []
                while try rows.step() {
                    if let keep = policy.retention(of: rows.text(1)) { limits.append((rows.int64(0), now - keep.wholeMilliseconds)) }
                }
                // A chunk wholly past the limit goes; its points live on in the hourly rollups
                // (which thus hold exactly the readings the raw history no longer has).
                for (series, limit) in limits {
                    try Self.lockSeries(series, db)
                    let expired = try db.query("SELECT id, data FROM chunks WHERE series_id = ? AND sealed = 1 AND last_ts < ?",
                                               [.integer(series), .integer(limit)])
                    var ids: [Int64] = []
                    var chunks: [SeriesChunk] = []
                    while try expired.step() {
                        ids.append(expired.int64(0))
                        chunks.append(try SeriesChunk(decoding: expired.blob(1)))
                    }
                    guard !ids.isEmpty else { continue }
                    try Self.addRollups(series: series, chunks, db: db)
                    for id in ids { try db.send("DELETE FROM chunks WHERE id = ?", [.integer(id)]) }
                    report.chunks += ids.count
                    report.points += chunks.reduce(0) { $0 + $1.count }
                }
            }
            if let keep = policy.rollupRetention {
                report.rollups = try db.run("DELETE FROM rollups WHERE hour < ?", [.integer(now - keep.wholeMilliseconds)])
            }
        }
        return report
    }
}
