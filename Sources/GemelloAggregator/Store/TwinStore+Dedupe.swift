import GemelloStorage

/// De-duplication that survives restarts and does not grow with every batch.
///
/// An agent numbers its batches 1, 2, 3, … within a boot epoch (a resent batch keeps its epoch
/// and number). The store keeps, per (agent, epoch), the **ranges** of sequences it has stored:
/// in steady state one row `first…last` whose `last` is the high-water mark below which every
/// batch is in; batches that arrive out of order (live-first sending after an outage, a resend
/// overtaken by newer batches) open a few more ranges above it, which merge back into one as
/// the gaps fill. A batch is a duplicate exactly when its sequence lies in a stored range.
///
/// Why not "high-water mark minus a fixed window": a batch that is *not* a duplicate can arrive
/// far below the mark (a batch the aggregator refused until it was upgraded, an agent that sent
/// newer live batches first): a fixed window would drop it as a duplicate and lose it silently.
/// Ranges are exact and stay as small as the gaps are few.
extension TwinStore {
    static let deliveredSchema = """
        CREATE TABLE IF NOT EXISTS delivered (agent_id TEXT NOT NULL, epoch INTEGER NOT NULL,
            first_sequence INTEGER NOT NULL, last_sequence INTEGER NOT NULL,
            PRIMARY KEY (agent_id, epoch, first_sequence)) WITHOUT ROWID;
        """

    /// Records the delivery of (agent, epoch, sequence); `false` if it was already recorded.
    /// Runs inside the ingest transaction, so the record commits with the batch's readings.
    static func recordDelivery(agent: String, epoch: UInt64, sequence: UInt64, in db: any StoreConnection) throws -> Bool {
        let agentValue = StoreValue.text(agent)
        let epochValue = StoreValue.integer(Int64(bitPattern: epoch))
        let s = Int64(bitPattern: sequence)
        let below = try db.query("""
            SELECT first_sequence, last_sequence FROM delivered WHERE agent_id = ? AND epoch = ? AND first_sequence <= ?
            ORDER BY first_sequence DESC LIMIT 1
            """, [agentValue, epochValue, .integer(s)])
        var previous: (first: Int64, last: Int64)?
        if try below.step() { previous = (below.int64(0), below.int64(1)) }
        if let previous, previous.last >= s { return false }

        var next: Int64?
        if s < Int64.max {
            let above = try db.query("SELECT last_sequence FROM delivered WHERE agent_id = ? AND epoch = ? AND first_sequence = ?", [agentValue, epochValue, .integer(s + 1)])
            if try above.step() { next = above.int64(0) }
        }
        let joinsPrevious = previous.map { $0.last == s - 1 } ?? false
        switch (joinsPrevious, next) {
        case (true, let nextLast?):  // fills the gap between two ranges: they become one
            try db.run("DELETE FROM delivered WHERE agent_id = ? AND epoch = ? AND first_sequence = ?", [agentValue, epochValue, .integer(s + 1)])
            try extend(agentValue, epochValue, first: previous!.first, to: nextLast, db)
        case (true, nil):
            try extend(agentValue, epochValue, first: previous!.first, to: s, db)
        case (false, _?):  // extends the range above it downwards
            try db.run("UPDATE delivered SET first_sequence = ? WHERE agent_id = ? AND epoch = ? AND first_sequence = ?", [.integer(s), agentValue, epochValue, .integer(s + 1)])
        case (false, nil):
            try db.run("INSERT INTO delivered VALUES (?, ?, ?, ?)", [agentValue, epochValue, .integer(s), .integer(s)])
        }
        return true
    }

    private static func extend(_ agent: StoreValue, _ epoch: StoreValue, first: Int64, to last: Int64, _ db: any StoreConnection) throws {
        try db.run("UPDATE delivered SET last_sequence = ? WHERE agent_id = ? AND epoch = ? AND first_sequence = ?", [.integer(last), agent, epoch, .integer(first)])
    }

    /// Stores from before ranges kept one `batches` row per batch (keyed by agent and sequence
    /// in the oldest ones, then by agent, epoch and sequence): folded into ranges once, in the store's
    /// opening transaction, every delivery kept.
    static func migrateToDeliveryRanges(_ db: any StoreConnection) throws {
        guard try db.scalarInt("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'batches'") ?? 0 > 0 else { return }
        do {
            try db.executeSchema(deliveredSchema)
            // Gaps and islands: within a run of consecutive sequences, sequence − rank is constant.
            try db.executeSchema("""
                INSERT INTO delivered (agent_id, epoch, first_sequence, last_sequence)
                SELECT agent_id, epoch, min(sequence), max(sequence) FROM (
                    SELECT agent_id, epoch, sequence,
                           sequence - row_number() OVER (PARTITION BY agent_id, epoch ORDER BY sequence) AS island
                    FROM batches)
                GROUP BY agent_id, epoch, island;
                DROP TABLE batches;
                """)
        }
    }

    /// How many ranges the de-duplication record holds (one per agent epoch when nothing is missing).
    public func deliveryRangeCount() throws(AggregatorError) -> Int {
        try read { db in Int(try db.scalarInt("SELECT count(*) FROM delivered") ?? 0) }
    }
}
