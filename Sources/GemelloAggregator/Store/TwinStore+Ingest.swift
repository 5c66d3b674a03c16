import GemelloCore
import GemelloStorage

/// The writes of one ingest transaction, gathered so that a group of batches costs a handful of
/// statements whatever its size: the agents' rows, the de-duplication record of the agents it
/// touches (read once into a ``DeliveryLedger``, written back once), the history fragments and
/// the series' latest values (multi-row statements), the agents' counters.
struct IngestWriter {
    let now: Int64
    var ids: SeriesIDs
    private var ledger: DeliveryLedger
    private var fragments: [(chunk: SeriesChunk, series: Int64)] = []
    /// series id → readings added, and the newest (time, value) among them.
    private var latest: [Int64: (count: Int64, ts: Int64, value: Double)] = [:]
    private var agents: [String: (batches: Int64, readings: Int64, duplicates: Int64)] = [:]

    /// Starts the transaction's writes for `batches`: makes their agents' rows and reads their
    /// de-duplication record (one statement each).
    init(_ batches: [Batch], now: Int64, ids: SeriesIDs, db: any StoreConnection) throws {
        self.now = now
        self.ids = ids
        var agentIDs: [String] = []
        var keys: [DeliveryLedger.Key] = []
        for batch in batches {
            if !agentIDs.contains(batch.agentID) { agentIDs.append(batch.agentID) }
            let key = DeliveryLedger.Key(agent: batch.agentID, epoch: Int64(bitPattern: batch.bootEpoch))
            if !keys.contains(key) { keys.append(key) }
        }
        agentIDs.sort()
        try db.send("INSERT INTO agents (id) VALUES \(Self.tuples(1, agentIDs.count)) ON CONFLICT DO NOTHING", agentIDs.map { .text($0) })
        // Several aggregators on one store (a share group) may get batches of one agent at once:
        // its row is locked, in id order (no deadlock), before its record is read.
        try TwinStore.lockAgents(agentIDs, db)
        var rows: [(key: DeliveryLedger.Key, first: Int64, last: Int64)] = []
        for part in stride(from: 0, to: keys.count, by: 200) {
            let slice = keys[part..<min(part + 200, keys.count)]
            let found = try db.query("""
                SELECT agent_id, epoch, first_sequence, last_sequence FROM delivered WHERE \
                \(Array(repeating: "(agent_id = ? AND epoch = ?)", count: slice.count).joined(separator: " OR "))
                """, slice.flatMap { [StoreValue.text($0.agent), .integer($0.epoch)] })
            while try found.step() {
                rows.append((DeliveryLedger.Key(agent: found.text(0), epoch: found.int64(1)), found.int64(2), found.int64(3)))
            }
        }
        ledger = DeliveryLedger(rows)
    }

    /// One batch: a duplicate changes only its agent's count; otherwise its readings, latest
    /// values and derived indicators are written (the history as it goes, when an indicator
    /// needs to read it back).
    mutating func add(_ batch: Batch, db: any StoreConnection) throws -> TwinStore.IngestOutcome {
        let key = DeliveryLedger.Key(agent: batch.agentID, epoch: Int64(bitPattern: batch.bootEpoch))
        guard ledger.record(key, Int64(bitPattern: batch.sequence)) else {
            agents[batch.agentID, default: (0, 0, 0)].duplicates += 1
            return .duplicate
        }
        var seriesIDs: [Int64] = []
        for info in batch.series { seriesIDs.append(try ids.id(of: info, agent: batch.agentID, db: db)) }
        append(batch, seriesIDs: seriesIDs)
        // Derived indicators, from this batch's lineage, commit with it; they read the history
        // (this batch's readings included), so what is gathered so far is written first.
        if TwinStore.mayDeriveIndicators(batch) {
            try flushHistory(db)
            if let derived = try TwinStore.airQualityIndicators(for: batch, seriesIDs: ids, db: db) {
                var derivedIDs: [Int64] = []
                for info in derived.series { derivedIDs.append(try ids.id(of: info, agent: batch.agentID, db: db)) }
                append(derived, seriesIDs: derivedIDs)
            }
        }
        agents[batch.agentID, default: (0, 0, 0)].batches += 1
        agents[batch.agentID, default: (0, 0, 0)].readings += Int64(batch.count)
        return .stored(readings: batch.count)
    }

    private mutating func append(_ batch: Batch, seriesIDs: [Int64]) {
        fragments += HistoryStore.fragments(of: batch, seriesIDs: seriesIDs, committedAt: now)
        for i in 0..<batch.count {
            let series = seriesIDs[Int(batch.seriesIndex[i])]
            let (ts, value) = (batch.millisecondTimestamp(i), batch.values[i])
            var entry = latest[series] ?? (0, .min, 0)
            entry.count += 1
            if ts >= entry.ts { (entry.ts, entry.value) = (ts, value) }  // ties: the later reading wins
            latest[series] = entry
        }
    }

    /// Writes the history fragments and latest values gathered so far.
    mutating func flushHistory(_ db: any StoreConnection) throws {
        for part in stride(from: 0, to: fragments.count, by: 500) {
            try HistoryStore.insert(Array(fragments[part..<min(part + 500, fragments.count)]), sealed: false, db: db)
        }
        fragments.removeAll(keepingCapacity: true)
        // A row of VALUES per series: id, count, time, value (VALUES columns are column1… on both backends).
        let entries = latest.sorted { $0.key < $1.key }
        for part in stride(from: 0, to: entries.count, by: 500) {
            let slice = entries[part..<min(part + 500, entries.count)]
            try db.send("""
                UPDATE series SET count = series.count + v.column2,
                    latest_value = CASE WHEN series.latest_ts IS NULL OR series.latest_ts <= v.column3 THEN v.column4 ELSE series.latest_value END,
                    latest_ts = CASE WHEN series.latest_ts IS NULL OR series.latest_ts <= v.column3 THEN v.column3 ELSE series.latest_ts END
                FROM (VALUES \(Self.tuples(4, slice.count))) AS v WHERE series.id = v.column1
                """, slice.flatMap { [StoreValue.integer($0.key), .integer($0.value.count), .integer($0.value.ts), .real($0.value.value)] })
        }
        latest.removeAll(keepingCapacity: true)
    }

    /// Writes everything left: history, the agents' counters, the de-duplication record.
    mutating func finish(_ db: any StoreConnection) throws {
        try flushHistory(db)
        for (agent, n) in agents.sorted(by: { $0.key < $1.key }) {
            try db.send("""
                UPDATE agents SET batches = batches + ?, readings = readings + ?, duplicates = duplicates + ?, last_seen = ? WHERE id = ?
                """, [.integer(n.batches), .integer(n.readings), .integer(n.duplicates), .integer(now), .text(agent)])
        }
        for (key, ranges) in ledger.changes {
            try db.send("DELETE FROM delivered WHERE agent_id = ? AND epoch = ?", [.text(key.agent), .integer(key.epoch)])
            guard !ranges.isEmpty else { continue }
            try db.send("INSERT INTO delivered (agent_id, epoch, first_sequence, last_sequence) VALUES \(Self.tuples(4, ranges.count))",
                        ranges.flatMap { [StoreValue.text(key.agent), .integer(key.epoch), .integer($0.lowerBound), .integer($0.upperBound)] })
        }
    }

    /// `(?, ?, …), (…)`: `count` tuples of `width` placeholders.
    static func tuples(_ width: Int, _ count: Int) -> String {
        let one = "(" + Array(repeating: "?", count: width).joined(separator: ", ") + ")"
        return Array(repeating: one, count: count).joined(separator: ", ")
    }
}
