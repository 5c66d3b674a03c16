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
/// Ranges are exact and stay as small as the gaps are few. Ingest reads the ranges of the agents a
/// transaction touches once, records its batches in memory (``DeliveryLedger``) and writes the
/// changed ranges back in the same transaction (``IngestWriter``).
extension TwinStore {
    static let deliveredSchema = """
        CREATE TABLE IF NOT EXISTS delivered (agent_id TEXT NOT NULL, epoch INTEGER NOT NULL,
            first_sequence INTEGER NOT NULL, last_sequence INTEGER NOT NULL,
            PRIMARY KEY (agent_id, epoch, first_sequence)) WITHOUT ROWID;
        """

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
