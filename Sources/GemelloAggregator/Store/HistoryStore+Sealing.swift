import GemelloCore
import GemelloStorage

/// Sealing fragments into chunks, and re-compressing small sealed chunks (docs/history-format.md).
extension HistoryStore {
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
            let rows = try db.query("SELECT series_id, CAST(sum(count) AS BIGINT), min(committed) FROM chunks WHERE sealed = 0 GROUP BY series_id")
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
            let rows = try db.query("""
                SELECT series_id FROM chunks WHERE sealed = 1 AND count < ?1 GROUP BY series_id
                HAVING count(*) > (CAST(sum(count) AS BIGINT) + ?1 - 1) / ?1 LIMIT ?2
                """, [.integer(points), .integer(Int64(limit))])
            var ids: [Int64] = []
            while try rows.step() { ids.append(rows.int64(0)) }
            return ids
        }
        var report = CompactionReport()
        for series in candidates {
            try writing { db in
                try Self.lockSeries(series, db)
                let rows = try db.query("SELECT id, data FROM chunks WHERE series_id = ? AND sealed = 1 AND count < ? ORDER BY id", [.integer(series), .integer(points)])
                var ids: [Int64] = []
                var parts: [SeriesChunk] = []
                while try rows.step() {
                    ids.append(rows.int64(0))
                    parts.append(try SeriesChunk(decoding: rows.blob(1)))
                }
                let merged = SeriesChunk.merged(parts)
                for id in ids { try db.send("DELETE FROM chunks WHERE id = ?", [.integer(id)]) }
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

    private static func compact(series: Int64, chunkPoints: Int, in db: any StoreConnection) throws -> CompactionReport {
        var report = CompactionReport()
        try lockSeries(series, db)
        // The fragments in arrival order, and the series' newest sealed chunk if it has room.
        let rows = try db.query("""
            SELECT id, data, sealed FROM chunks WHERE series_id = ?1 AND sealed = 0
            UNION ALL
            SELECT id, data, sealed FROM (SELECT id, data, sealed, count FROM chunks WHERE series_id = ?1 AND sealed = 1
                ORDER BY last_ts DESC, id DESC LIMIT 1) AS newest WHERE count < ?2
            ORDER BY sealed DESC, id
            """, [.integer(series), .integer(Int64(chunkPoints))])
        var ids: [Int64] = []
        var parts: [SeriesChunk] = []
        while try rows.step() {
            ids.append(rows.int64(0))
            let part = try SeriesChunk(decoding: rows.blob(1))
            parts.append(part)
            if rows.int64(2) == 0 { report.fragments += 1 } else { report.chunksRewritten += 1 }
        }
        guard report.fragments > 0 else { return report }
        let merged = SeriesChunk.merged(parts)
        for id in ids { try db.send("DELETE FROM chunks WHERE id = ?", [.integer(id)]) }
        for chunk in merged.split(size: chunkPoints) {
            try insert(chunk, series: series, sealed: true, db: db)
            report.chunksWritten += 1
        }
        report.points = merged.count
        return report
    }
}
