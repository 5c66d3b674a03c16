import GemelloCore
import GemelloSQLite

/// Taking batches: in acceptance order, or **live first** after an outage.
///
/// Live first: when the oldest reading not yet sent was accepted more than the live window ago,
/// the buffer splits what waits into a **backlog** (every waiting reading accepted before the
/// window) and the **live** part (everything accepted since). Live batches are taken first,
/// so the twin is current within seconds of a reconnect; backlog batches only when the caller's
/// rate budget has room, oldest first. Cursors over reading ids (all persisted with each batch):
///
///     assigned ≤ A < backlog ≤ L < assigned to live batches ≤ T < live, waiting
///
/// Without a backlog only A exists. When the backlog is empty A jumps to T. A live part that
/// went stale itself (a second outage while draining) is taken only within the budget too.
extension ReadingBuffer {
    public enum BatchSource: Sendable, Equatable {
        /// Readings accepted within the live window (or no window given).
        case live
        /// Older readings, sent behind the live ones within the rate budget.
        case backlog
    }

    /// Takes the next unbatched readings (at most `maxReadings`) in acceptance order as a new
    /// batch with the next sequence number, recorded as taken. `nil` when nothing is waiting.
    public func takeBatch(agentID: String, maxReadings: Int, now: Int64) throws(AgentError) -> Batch? {
        try takeBatch(agentID: agentID, maxReadings: maxReadings, now: now, liveWindow: nil, backlogAllowed: true)?.batch
    }

    /// Takes the next batch live first (see above). `now` is the wall clock in Unix ms (the clock
    /// readings were accepted by); `backlogAllowed` says whether the rate budget has room for
    /// stale readings. `nil` when nothing may be sent now.
    ///
    /// `maxDelay` (latency-cut batches): fewer than `maxReadings` live readings wait until the
    /// oldest of them was accepted `maxDelay` ago, unless a backlog drains; `nil` or zero takes
    /// them at once.
    public func takeBatch(agentID: String, maxReadings: Int, now: Int64, liveWindow: Duration?,
                          backlogAllowed: Bool, maxDelay: Duration? = nil) throws(AgentError) -> (batch: Batch, source: BatchSource)? {
        do {
            return try state.withLock { (state: inout State) throws -> (batch: Batch, source: BatchSource)? in
                defer { state.db.resetStatements() }
                let cutoff = liveWindow.map { now - $0.wholeMilliseconds }
                if let backlog = state.backlogThrough, try Self.firstID(after: state.assignedThrough, through: backlog, state) == nil {
                    state.assignedThrough = state.liveThrough  // the backlog is drained
                    state.backlogThrough = nil
                }
                if let cutoff, state.backlogThrough == nil { try Self.openBacklogIfStale(cutoff: cutoff, state: &state) }

                let liveAfter = state.backlogThrough == nil ? state.assignedThrough : state.liveThrough
                if let first = try Self.firstID(after: liveAfter, through: nil, state) {
                    var source = BatchSource.live
                    if state.backlogThrough != nil, let cutoff, let accepted = try Self.acceptedAt(first, in: state.db), accepted < cutoff {
                        source = .backlog
                    }
                    var held = false
                    // (Not while a backlog drains: batches flow anyway, and the twin waits for live readings.)
                    if source == .live, state.backlogThrough == nil, let maxDelay, maxDelay > .zero,
                       let accepted = try Self.acceptedAt(first, in: state.db),
                       accepted > now - maxDelay.wholeMilliseconds {
                        // Young and not a full batch yet: wait for company.
                        held = try Self.nthID(after: liveAfter, through: nil, n: maxReadings, state) == nil
                    }
                    if !held && (source == .live || backlogAllowed) {
                        let last = try Self.lastID(after: liveAfter, through: nil, maxReadings: maxReadings, state)
                        let batch = try take(agentID: agentID, first: first, last: last, now: now, state: &state) { state in
                            if state.backlogThrough == nil { state.assignedThrough = last } else { state.liveThrough = last }
                        }
                        return (batch, source)
                    }
                }
                guard let backlog = state.backlogThrough, backlogAllowed,
                      let first = try Self.firstID(after: state.assignedThrough, through: backlog, state) else { return nil }
                let last = try Self.lastID(after: state.assignedThrough, through: backlog, maxReadings: maxReadings, state)
                let batch = try take(agentID: agentID, first: first, last: last, now: now, state: &state) { state in
                    state.assignedThrough = last
                    if last >= backlog {
                        state.assignedThrough = state.liveThrough
                        state.backlogThrough = nil
                    }
                }
                return (batch, .backlog)
            }
        } catch {
            throw AgentError(.buffer, "cannot take a batch from the buffer at \(path): \(error)")
        }
    }

    /// A backlog is open: some readings older than the live window wait behind live ones.
    public var hasBacklog: Bool { state.withLock { $0.backlogThrough != nil } }

    /// Readings waiting in the backlog (0 when there is none). Counts rows: for logs, not loops.
    public var backlogReadings: Int64 {
        state.withLock { state in
            guard let backlog = state.backlogThrough else { return 0 }
            return (try? state.db.reading { db in
                try db.scalarInt("SELECT count(*) FROM readings WHERE id > ? AND id <= ?",
                                 [.integer(state.assignedThrough), .integer(backlog)])
            }) ?? 0
        }
    }

    /// The SQL condition for readings in no batch yet (for the overflow policy).
    static func unbatchedCondition(_ state: State) -> String {
        guard let backlog = state.backlogThrough else { return "id > \(state.assignedThrough)" }
        return "((id > \(state.assignedThrough) AND id <= \(backlog)) OR id > \(state.liveThrough))"
    }

    /// Reads the persisted cursors; buffers written before they were persisted derive A from the
    /// batches in flight (every reading below the newest taken one was taken or is gone).
    static func restoreCursors(_ state: inout State) throws {
        let db = state.db
        if let assigned = try db.scalarInt("SELECT value FROM meta WHERE key = 'assigned_through'") {
            state.assignedThrough = assigned
            let backlog = try db.scalarInt("SELECT value FROM meta WHERE key = 'backlog_through'") ?? 0
            state.backlogThrough = backlog > 0 ? backlog : nil
            state.liveThrough = try db.scalarInt("SELECT value FROM meta WHERE key = 'live_through'") ?? assigned
        } else {
            state.assignedThrough = try db.scalarInt("SELECT max(last_id) FROM batches") ?? 0
        }
    }

    /// Splits the waiting readings into backlog and live when the oldest is older than `cutoff`.
    private static func openBacklogIfStale(cutoff: Int64, state: inout State) throws {
        guard let first = try firstID(after: state.assignedThrough, through: nil, state),
              let accepted = try acceptedAt(first, in: state.db), accepted < cutoff else { return }
        let firstFresh = try state.db.scalarInt("SELECT min(first_id) FROM commits WHERE first_id > ? AND accepted >= ?",
                                                [.integer(first), .integer(cutoff)])
        let backlog: Int64
        if let firstFresh { backlog = firstFresh - 1 } else { backlog = try state.db.scalarInt("SELECT max(id) FROM readings") ?? first }
        state.backlogThrough = backlog
        state.liveThrough = backlog
    }

    /// Loads `first...last` into a new batch and records it, the next sequence and the cursors
    /// (as `advance` moves them) in one transaction; the in-memory state changes only after it.
    private func take(agentID: String, first: Int64, last: Int64, now: Int64, state: inout State,
                      advance: (inout State) -> Void) throws -> Batch {
        let sequence = state.nextSequence
        var batch = Batch(agentID: agentID, bootEpoch: bootEpoch, sequence: sequence, createdAt: now)
        try Self.load(into: &batch, first: first, last: last, state: state)
        var moved = state
        advance(&moved)
        moved.nextSequence = sequence + 1
        try state.db.transaction { db in
            try db.statement("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?)")
                .run([.integer(Int64(sequence)), .integer(Int64(bootEpoch)), .integer(first),
                      .integer(last), .integer(Int64(batch.count)), .integer(now)])
            try db.statement("""
                INSERT OR REPLACE INTO meta VALUES ('next_sequence', ?), ('assigned_through', ?), ('backlog_through', ?),
                    ('live_through', ?)
                """).run([.integer(Int64(sequence + 1)), .integer(moved.assignedThrough), .integer(moved.backlogThrough ?? 0),
                          .integer(moved.liveThrough)])
        }
        state = moved
        return batch
    }

    static func load(into batch: inout Batch, first: Int64, last: Int64, state: State) throws {
        let rows = try state.db.statement("SELECT series, ts, value FROM readings WHERE id BETWEEN ? AND ? ORDER BY id")
        try rows.bind([.integer(first), .integer(last)])
        var lookup: [SeriesInfo: UInt32] = [:]
        while try rows.step() {
            guard let info = state.seriesByID[rows.int64(0)] else { continue }
            batch.append(Reading(series: info, timestamp: rows.int64(1), value: rows.double(2)), lookup: &lookup)
        }
    }

    private static func firstID(after: Int64, through: Int64?, _ state: State) throws -> Int64? {
        guard let through else { return try state.db.scalarInt("SELECT min(id) FROM readings WHERE id > ?", [.integer(after)]) }
        return try state.db.scalarInt("SELECT min(id) FROM readings WHERE id > ? AND id <= ?", [.integer(after), .integer(through)])
    }

    /// The id of the `n`-th reading after `after`, `nil` when fewer wait.
    private static func nthID(after: Int64, through: Int64?, n: Int, _ state: State) throws -> Int64? {
        try state.db.scalarInt("SELECT id FROM readings WHERE id > ? AND id <= ? ORDER BY id LIMIT 1 OFFSET ?",
                               [.integer(after), .integer(through ?? Int64.max), .integer(Int64(n - 1))])
    }

    /// The id of the `maxReadings`-th reading after `after` (or the last one there is).
    private static func lastID(after: Int64, through: Int64?, maxReadings: Int, _ state: State) throws -> Int64 {
        let upper = through ?? Int64.max
        if let nth = try nthID(after: after, through: through, n: maxReadings, state) { return nth }
        return try state.db.scalarInt("SELECT max(id) FROM readings WHERE id > ? AND id <= ?", [.integer(after), .integer(upper)]) ?? after
    }

    /// When the commit holding reading `id` was accepted; `nil` for buffers from before commits were recorded.
    static func acceptedAt(_ id: Int64, in db: SQLiteConnection) throws -> Int64? {
        try db.scalarInt("SELECT accepted FROM commits WHERE first_id <= ? ORDER BY first_id DESC LIMIT 1", [.integer(id)])
    }

    /// Batches taken earlier and still unacknowledged (e.g. from before a restart), rebuilt with
    /// their original identity so the aggregator can recognise duplicates.
    public func unacknowledgedBatches(agentID: String) throws(AgentError) -> [Batch] {
        do {
            return try state.withLock { (state: inout State) throws -> [Batch] in
                defer { state.db.resetStatements() }
                let rows = try state.db.statement("SELECT sequence, epoch, first_id, last_id, created FROM batches ORDER BY sequence")
                var ranges: [(UInt64, UInt64, Int64, Int64, Int64)] = []
                while try rows.step() {
                    ranges.append((UInt64(rows.int64(0)), UInt64(rows.int64(1)), rows.int64(2), rows.int64(3), rows.int64(4)))
                }
                return try ranges.map { sequence, epoch, first, last, created in
                    var batch = Batch(agentID: agentID, bootEpoch: epoch, sequence: sequence, createdAt: created)
                    try Self.load(into: &batch, first: first, last: last, state: state)
                    return batch
                }
            }
        } catch {
            throw AgentError(.buffer, "cannot read unacknowledged batches from \(path): \(error)")
        }
    }
}
