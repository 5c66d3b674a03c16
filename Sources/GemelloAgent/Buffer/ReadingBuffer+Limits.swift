import GemelloCore
import GemelloSQLite

/// The buffer's bounds: a size quota (SQLite's `max_page_count`, so a quota and a full disk look
/// the same: `SQLITE_FULL`), an age limit, and the policy past them. Every reading dropped is
/// counted, persisted and reported; none disappears silently.
extension ReadingBuffer {
    public struct Limits: Sendable, Equatable {
        /// Largest database file, in bytes (the WAL adds up to ~4 MB between checkpoints).
        public var maxBytes: Int64?
        /// Readings accepted longer ago than this are dropped even when there is room.
        public var maxAge: Duration?
        public var whenFull: OverflowPolicy

        public init(maxBytes: Int64? = nil, maxAge: Duration? = nil, whenFull: OverflowPolicy = .dropOldest) {
            self.maxBytes = maxBytes
            self.maxAge = maxAge
            self.whenFull = whenFull
        }

        public static let none = Limits()
    }

    /// What to give up when the buffer is full: the oldest readings not yet in flight (default:
    /// the twin wants the present most) or the incoming ones (keep the oldest history intact).
    public enum OverflowPolicy: String, Sendable, CaseIterable {
        case dropOldest = "drop-oldest"
        case dropNewest = "drop-newest"
    }

    /// Readings dropped by the limits over the buffer's whole life (survives restarts).
    public var droppedReadings: Int64 { state.withLock { $0.dropped } }

    static func applyQuota(_ limits: Limits, to db: SQLiteConnection) throws {
        guard let maxBytes = limits.maxBytes else { return }
        let pageSize = try db.scalarInt("PRAGMA page_size") ?? 4096
        try db.execute("PRAGMA max_page_count = \(max(16, maxBytes / pageSize))")
    }

    /// Enforces the age limit (at most once a minute), then inserts; when the quota or the disk is
    /// full, applies the policy and retries. Returns how many readings were dropped.
    func appendWithinLimits(_ readings: [Reading], checkpoints: [InputCheckpoint], now: Int64, state: inout State) throws -> Int64 {
        var dropped: Int64 = 0
        if let maxAge = limits.maxAge, state.lastAgeCheck.map({ now - $0 >= 60_000 || now < $0 }) ?? true {
            state.lastAgeCheck = now
            dropped += try dropAcceptedBefore(now - maxAge.wholeMilliseconds, state: &state)
        }
        var incoming = readings[...]
        var refused: Int64 = 0  // older readings of this commit given up because the commit alone did not fit
        var attempts = 0
        while true {
            do {
                try insert(incoming, checkpoints: checkpoints, now: now, droppedDelta: refused, state: &state)
                dropped += refused
                break
            } catch let error as SQLiteError where error.code == .diskFull {
                attempts += 1
                if limits.whenFull == .dropOldest {
                    if attempts <= 4 {
                        // Make room for this commit and the next few: 5 % of the buffer, at least twice this commit.
                        let room = max(Int64(incoming.count) * 2, state.buffered / 20, 100)
                        let freed = try dropOldestUnbatched(room, state: &state)
                        if freed > 0 {
                            dropped += freed
                            continue
                        }
                    }
                    if incoming.count > 1 {
                        // Nothing older left to give up, and the commit does not fit on its own
                        // (a quota smaller than one flush): keep its newer half, count the rest.
                        let keep = incoming.count / 2
                        refused += Int64(incoming.count - keep)
                        incoming = incoming.suffix(keep)
                        continue
                    }
                }
                // Nothing left to give up (or drop-newest): the incoming readings are refused and
                // counted, in one transaction with their inputs' positions (so a replay moves on).
                refused += Int64(incoming.count)
                try? insert([], checkpoints: checkpoints, now: now, droppedDelta: refused, state: &state)
                dropped += refused
                break
            }
        }
        return dropped
    }

    /// Deletes up to `count` of the oldest readings not yet taken into a batch, never those of a
    /// protected sensor (an input that can wait); returns how many.
    private func dropOldestUnbatched(_ count: Int64, state: inout State) throws -> Int64 {
        let unbatched = Self.unbatchedCondition(state) + Self.unprotectedCondition(state)
        let bound = try state.db.reading { db in
            try db.scalarInt("SELECT max(id) FROM (SELECT id FROM readings WHERE \(unbatched) ORDER BY id LIMIT \(count))")
        }
        guard let bound else { return 0 }
        return try deleteUnbatched(through: bound, state: &state, extra: Self.unprotectedCondition(state))
    }

    /// ` AND series NOT IN (...)`: the series of protected sensors (empty when there are none).
    static func unprotectedCondition(_ state: State) -> String {
        guard !state.protectedSensors.isEmpty else { return "" }
        let ids = state.seriesIDs.filter { state.protectedSensors.contains(String($0.key.sensor)) }.map { String($0.value) }
        return ids.isEmpty ? "" : " AND series NOT IN (\(ids.joined(separator: ",")))"
    }

    /// Deletes the readings not yet in a batch that were accepted before `cutoff` (Unix ms).
    private func dropAcceptedBefore(_ cutoff: Int64, state: inout State) throws -> Int64 {
        let bound = try state.db.reading { db -> Int64? in
            // Commits record when each group of readings was accepted (by its first reading's id).
            // Buffers written before commits were recorded have none: their readings' age is unknown.
            guard try db.scalarInt("SELECT count(*) FROM commits") ?? 0 > 0 else { return nil }
            if let firstRecent = try db.scalarInt("SELECT min(first_id) FROM commits WHERE accepted >= \(cutoff)") {
                return firstRecent - 1
            }
            return try db.scalarInt("SELECT max(id) FROM readings")
        }
        guard let bound, bound > state.assignedThrough else { return 0 }
        return try deleteUnbatched(through: bound, state: &state)
    }

    /// Deletes the readings in no batch up to `bound` and the commit records no reading needs.
    private func deleteUnbatched(through bound: Int64, state: inout State, extra: String = "") throws -> Int64 {
        let unbatched = Self.unbatchedCondition(state) + extra
        // The count is persisted in the same transaction as the deletion: a crash cannot lose a
        // reading without its drop being counted.
        let removed = try state.db.transaction { db -> Int64 in
            try db.statement("DELETE FROM readings WHERE \(unbatched) AND id <= ?").run([.integer(bound)])
            let count = Int64(db.changes)
            try db.statement("UPDATE meta SET value = value + ? WHERE key = 'dropped'").run([.integer(count)])
            try Self.pruneCommits(db)
            return count
        }
        state.buffered -= removed
        state.dropped += removed
        return removed
    }

    /// Keeps only the commit records that still date a reading: the one covering the oldest
    /// remaining reading, and every later one.
    static func pruneCommits(_ db: SQLiteConnection) throws {
        try db.execute("""
            DELETE FROM commits WHERE first_id < coalesce(
                (SELECT max(first_id) FROM commits WHERE first_id <= (SELECT min(id) FROM readings)),
                (SELECT max(first_id) FROM commits))
            """)
    }
}
