import GemelloCore
import GemelloStorage

/// Reading one series' points (ranges, the newest N, bounded pages) and deleting them.
extension HistoryStore {
    /// The chunks of one series that may hold points in `range`, merged into one in observation
    /// order (points with equal times in the order the store received them).
    /// With `limit`, reading stops once more than `limit` points are held and no further chunk
    /// can hold an earlier one: the oldest `limit` (and a few more) are exact, and a hostile
    /// request for "everything" costs a page, not the whole history.
    static func points(series: Int64, in range: ClosedRange<Int64>, limit: Int?, db: any StoreConnection) throws -> SeriesChunk? {
        guard let limit else { return try points(series: series, in: range, db: db) }
        let rows = try db.query("SELECT id, first_ts, data FROM chunks WHERE series_id = ? AND last_ts >= ? AND first_ts <= ? ORDER BY first_ts, id", [.integer(series), .integer(range.lowerBound), .integer(range.upperBound)])
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
        guard !parts.isEmpty else { return nil }
        return trimmed(SeriesChunk.merged(parts.sorted { $0.id < $1.id }.map(\.chunk)), to: range)
    }

    static func points(series: Int64, in range: ClosedRange<Int64>, db: any StoreConnection) throws -> SeriesChunk? {
        let rows = try db.query("SELECT data FROM chunks WHERE series_id = ? AND last_ts >= ? AND first_ts <= ? ORDER BY id", [.integer(series), .integer(range.lowerBound), .integer(range.upperBound)])
        var parts: [SeriesChunk] = []
        while try rows.step() { parts.append(try SeriesChunk(decoding: rows.blob(0))) }
        guard !parts.isEmpty else { return nil }
        return trimmed(SeriesChunk.merged(parts), to: range)
    }

    /// The newest `n` points of one series (by observation time), in observation order.
    static func lastPoints(series: Int64, n: Int, before end: Int64 = .max, db: any StoreConnection) throws -> SeriesChunk? {
        let rows = try db.query("SELECT data, first_ts, last_ts FROM chunks WHERE series_id = ? AND first_ts <= ? ORDER BY last_ts DESC, id DESC", [.integer(series), .integer(end)])
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

    static func seriesID(agent: String, series: String, db: any StoreConnection) throws -> Int64? {
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
            try Self.lockSeries(id, db)
            let rows = try db.query("SELECT id, sealed, data FROM chunks WHERE series_id = ? AND last_ts >= ? AND first_ts <= ? ORDER BY id", [.integer(id), .integer(time), .integer(time)])
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
            guard let found else { return false }
            try Self.replace(chunk: found.row, sealed: found.sealed, series: id,
                             with: found.chunk.removing(found.index), db: db)
            try db.run("UPDATE series SET count = count - 1 WHERE id = ?", [.integer(id)])
            return true
        }
    }

    public func deleteHistory(agent: String, series: String) throws(AggregatorError) -> Int {
        try writing { db -> Int in
            guard let id = try Self.seriesID(agent: agent, series: series, db: db) else { return 0 }
            try Self.lockSeries(id, db)
            let count = Int(try db.scalarInt("SELECT CAST(coalesce(sum(count), 0) AS BIGINT) FROM chunks WHERE series_id = ?", [.integer(id)]) ?? 0)
            try db.run("DELETE FROM chunks WHERE series_id = ?", [.integer(id)])
            try db.run("DELETE FROM rollups WHERE series_id = ?", [.integer(id)])
            try db.run("UPDATE series SET count = 0 WHERE id = ?", [.integer(id)])
            return count
        }
    }
}
