import GemelloCore
import GemelloStorage

extension HistoryStore {
    /// Stores from before the columnar history kept one `history` row per reading: folded into
    /// sealed chunks once, series by series, in the store's opening transaction (nothing lost: it
    /// commits whole or not at all). Their lineage is unknown: source epoch 0, sequence 0, commit time 0.
    /// Returns how many readings moved.
    static func migrateRowHistory(_ db: any StoreConnection, chunkPoints: Int = Policy().chunkPoints) throws -> Int {
        guard try db.scalarInt("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'history'") ?? 0 > 0 else { return 0 }
        do {
            try db.executeSchema(schema)
            var seriesIDs: [Int64] = []
            let ids = try db.query("SELECT DISTINCT series_id FROM history")
            while try ids.step() { seriesIDs.append(ids.int64(0)) }
            let unknown = SeriesChunk.Source(epoch: 0, sequence: 0, committedAt: 0)
            var moved = 0
            for series in seriesIDs {
                let rows = try db.query("SELECT ts, value FROM history WHERE series_id = ? ORDER BY ts, rowid", [.integer(series)])
                var timestamps: [Int64] = [], values: [Double] = []
                while try rows.step() {
                    timestamps.append(rows.int64(0))
                    values.append(rows.double(1))
                }
                guard !timestamps.isEmpty else { continue }
                for chunk in SeriesChunk(timestamps: timestamps, values: values, source: unknown).split(size: chunkPoints) {
                    try insert(chunk, series: series, sealed: true, db: db)
                }
                moved += timestamps.count
            }
            guard moved == Int(try db.scalarInt("SELECT count(*) FROM history") ?? 0) else {
                throw AggregatorError(.store, "history migration moved \(moved) readings, the old table holds a different count")
            }
            try db.executeSchema("DROP INDEX IF EXISTS history_by_series_time; DROP TABLE history;")
            return moved
        }
    }
}
