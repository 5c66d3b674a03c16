import GemelloCore
import GemelloSQLite
import Synchronization

/// The agent's durable buffer: every accepted reading lives here until the aggregator
/// acknowledges the batch that carried it (Telegraf's transactional buffer: take, then accept
/// or retry; never delete before the receiver confirmed).
///
/// SQLite in WAL mode. `readings.id` is AUTOINCREMENT so ids never go back after the table
/// empties (a reused id would fall below `assignedThrough` and never be sent). Tables: `series` (dictionary), `readings` (rowid order = acceptance
/// order), `batches` (taken but unacknowledged: sequence → rowid range), `positions` (resumable
/// inputs' read positions, committed with their readings), `commits` (when each group of
/// readings was accepted), `meta` (counters and the take cursors).
public final class ReadingBuffer: Sendable {
    struct State {
        let db: SQLiteConnection
        var seriesIDs: [SeriesInfo: Int64] = [:]
        var seriesByID: [Int64: SeriesInfo] = [:]
        /// Every reading up to this rowid is in a batch (or gone). Readings above it wait,
        /// except, while a backlog drains (`ReadingBuffer+Batches.swift`), those in
        /// `backlogThrough < id ≤ liveThrough`, which went out first as live batches.
        var assignedThrough: Int64
        var backlogThrough: Int64?
        var liveThrough: Int64 = 0
        var nextSequence: UInt64
        var buffered: Int64
        /// Readings dropped by the overflow policy over the buffer's life (persisted in `meta`).
        var dropped: Int64 = 0
        /// When the age limit was last enforced (Unix ms).
        var lastAgeCheck: Int64?
        /// Sensors of inputs that can wait: the overflow policy never drops their readings
        /// (see ``ReadingBuffer/protect(sensors:)``).
        var protectedSensors: Set<String> = []
    }

    let state: Mutex<State>
    /// Where a corrupt database found at ``path`` was moved when this buffer opened, if it was.
    public let movedAside: String?
    /// The quota and what happens past it (buffer.max-bytes, max-age, when-full).
    public let limits: Limits
    /// Incremented on every open; part of every batch identity from this run.
    public let bootEpoch: UInt64
    public let path: String

    /// Opens (or creates) the buffer at `path`, creating its folder's file if needed.
    ///
    /// A new buffer starts its boot epochs at `epochSeed` (the agent passes the Unix time in
    /// seconds): batch identity is (agent, epoch, sequence) and sequences restart at 1 in a new
    /// buffer, so a replaced or reinstalled buffer must not reuse an epoch an earlier one used,
    /// or the aggregator would take its first batches for duplicates.
    ///
    /// A database that SQLite finds corrupt is **moved aside** (renamed to
    /// `<path>.corrupt-<unix ms>`, with its WAL), never deleted, and a fresh buffer is created:
    /// ``movedAside`` names the kept file so the agent can report it.
    public init(path: String, epochSeed: UInt64 = UInt64(max(0, SystemWallClock().nowMilliseconds() / 1000)),
                limits: Limits = .none) throws(AgentError) {
        self.path = path
        self.limits = limits
        movedAside = try Self.moveAsideIfCorrupt(path)
        do {
            let db = try SQLiteConnection(path: path)
            try db.execute("""
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, name TEXT NOT NULL, unit TEXT NOT NULL,
                    UNIQUE(name, unit));
                CREATE TABLE IF NOT EXISTS readings (id INTEGER PRIMARY KEY AUTOINCREMENT, series INTEGER NOT NULL,
                    ts INTEGER NOT NULL, value REAL NOT NULL);
                CREATE TABLE IF NOT EXISTS batches (sequence INTEGER PRIMARY KEY, epoch INTEGER NOT NULL,
                    first_id INTEGER NOT NULL, last_id INTEGER NOT NULL, count INTEGER NOT NULL, created INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS positions (input TEXT PRIMARY KEY, position INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS commits (first_id INTEGER PRIMARY KEY, accepted INTEGER NOT NULL);
                INSERT OR IGNORE INTO meta VALUES ('dropped', 0);
                """)
            try Self.applyQuota(limits, to: db)
            try db.statement("INSERT OR IGNORE INTO meta VALUES ('boot_epoch', ?), ('next_sequence', 1)")
                .run([.integer(Int64(clamping: epochSeed))])
            try db.execute("UPDATE meta SET value = value + 1 WHERE key = 'boot_epoch'")
            let epoch = UInt64(try db.scalarInt("SELECT value FROM meta WHERE key = 'boot_epoch'") ?? 1)
            let next = UInt64(try db.scalarInt("SELECT value FROM meta WHERE key = 'next_sequence'") ?? 1)
            let buffered = try db.scalarInt("SELECT count(*) FROM readings") ?? 0
            var initial = State(db: db, assignedThrough: 0, nextSequence: next, buffered: buffered)
            try Self.restoreCursors(&initial)
            initial.dropped = try db.scalarInt("SELECT value FROM meta WHERE key = 'dropped'") ?? 0
            let rows = try db.statement("SELECT id, name, unit FROM series")
            while try rows.step() {
                let info = SeriesInfo(name: rows.text(1), unit: rows.text(2))
                initial.seriesIDs[info] = rows.int64(0)
                initial.seriesByID[rows.int64(0)] = info
            }
            bootEpoch = epoch
            state = Mutex(initial)
        } catch {
            throw AgentError(.buffer, "cannot open the buffer database at \(path): \(error). "
                             + "Fix: make sure the folder exists and is writable by the agent (buffer.path; the Debian package makes /var/lib/gemello), or run with --state-dir DIR")
        }
    }

    /// Readings waiting for acknowledgement (in batches or not yet batched).
    public var bufferedReadings: Int64 { state.withLock { $0.buffered } }

    /// Appends `readings` in one transaction (a group commit), with the inputs' read positions
    /// after them. When this returns, they survive a crash of the process; if it throws, neither
    /// the readings nor the positions were stored. Past the buffer's limits (or on a full disk)
    /// the overflow policy drops readings, counted in the result and in ``droppedReadings``.
    @discardableResult
    public func append(_ readings: [Reading], checkpoints: [InputCheckpoint] = [], now: Int64 = 0) throws(AgentError) -> Int64 {
        guard !readings.isEmpty || !checkpoints.isEmpty else { return 0 }
        do {
            return try state.withLock { (state: inout State) throws -> Int64 in
                try appendWithinLimits(readings, checkpoints: checkpoints, now: now, state: &state)
            }
        } catch {
            throw AgentError(.buffer, "cannot write \(readings.count) readings to the buffer at \(path): \(error)")
        }
    }

    /// One attempt: readings, their commit time and the inputs' positions, in one transaction.
    /// On failure the series added to the in-memory dictionary during the attempt are forgotten
    /// (their rows were rolled back with the rest).
    func insert(_ readings: ArraySlice<Reading>, checkpoints: [InputCheckpoint], now: Int64, droppedDelta: Int64 = 0,
                state: inout State) throws {
        let knownSeries = state.seriesIDs.count
        do {
            try state.db.transaction { db in
                let insert = try db.statement("INSERT INTO readings (series, ts, value) VALUES (?, ?, ?)")
                for (n, reading) in readings.enumerated() {
                    let seriesID = try Self.seriesID(reading.series, state: &state)
                    try insert.bind(int64: seriesID, at: 1)
                    try insert.bind(int64: reading.timestamp, at: 2)
                    try insert.bind(double: reading.value, at: 3)
                    try insert.runBound()
                    if n == 0 { try db.statement("INSERT INTO commits VALUES (?, ?)").run([.integer(db.lastInsertRowID), .integer(now)]) }
                }
                let save = try db.statement("INSERT INTO positions VALUES (?, ?) ON CONFLICT(input) DO UPDATE SET position = excluded.position")
                for checkpoint in checkpoints { try save.run([.text(checkpoint.key), .integer(checkpoint.position)]) }
                if droppedDelta > 0 {
                    try db.statement("UPDATE meta SET value = value + ? WHERE key = 'dropped'").run([.integer(droppedDelta)])
                }
            }
        } catch {
            if state.seriesIDs.count != knownSeries {
                let rows = try? state.db.reading { db -> Set<Int64> in
                    let select = try db.statement("SELECT id FROM series")
                    var ids = Set<Int64>()
                    while try select.step() { ids.insert(select.int64(0)) }
                    return ids
                }
                for (info, id) in state.seriesIDs where !(rows?.contains(id) ?? false) {
                    state.seriesIDs[info] = nil
                    state.seriesByID[id] = nil
                }
            }
            throw error
        }
        state.buffered += Int64(readings.count)
        state.dropped += droppedDelta
    }

    /// Appends `readings` and the positions in one transaction if the buffer has room for them,
    /// and drops nothing: `false` (nothing stored) when the quota or the disk is full. For the
    /// readings of inputs that can wait, which are held back and retried instead (back-pressure).
    public func appendIfRoom(_ readings: [Reading], checkpoints: [InputCheckpoint] = [], now: Int64 = 0) throws(AgentError) -> Bool {
        guard !readings.isEmpty || !checkpoints.isEmpty else { return true }
        do {
            return try state.withLock { (state: inout State) throws -> Bool in
                do {
                    try insert(readings[...], checkpoints: checkpoints, now: now, state: &state)
                    return true
                } catch let error as SQLiteError where error.code == .diskFull {
                    return false
                }
            }
        } catch {
            throw AgentError(.buffer, "cannot write \(readings.count) readings to the buffer at \(path): \(error)")
        }
    }

    /// Readings of these sensors (the inputs that can wait) are never dropped to make room: the
    /// drop-oldest policy gives up only other sensors' readings. Set once, before inputs start.
    public func protect(sensors: Set<String>) {
        state.withLock { $0.protectedSensors = sensors }
    }

    /// The last committed read position of a resumable input, `nil` if it never committed one.
    public func checkpoint(for key: String) throws(AgentError) -> Int64? {
        do {
            return try state.withLock { (state: inout State) throws -> Int64? in
                defer { state.db.resetStatements() }
                let select = try state.db.statement("SELECT position FROM positions WHERE input = ?")
                try select.bind([.text(key)])
                return try select.step() ? select.int64(0) : nil
            }
        } catch {
            throw AgentError(.buffer, "cannot read the position of '\(key)' from the buffer at \(path): \(error)")
        }
    }

    private static func seriesID(_ info: SeriesInfo, state: inout State) throws -> Int64 {
        if let id = state.seriesIDs[info] { return id }
        try state.db.statement("INSERT INTO series (name, unit) VALUES (?, ?)").run([.text(info.name), .text(info.unit)])
        let id = state.db.lastInsertRowID
        state.seriesIDs[info] = id
        state.seriesByID[id] = info
        return id
    }

    /// Deletes the readings of acknowledged batches. Unknown sequences (already deleted) are
    /// ignored. Returns how many readings were released.
    @discardableResult
    public func acknowledge(_ sequences: [UInt64]) throws(AgentError) -> Int64 {
        do {
            return try state.withLock { (state: inout State) throws -> Int64 in
                var released: Int64 = 0
                try state.db.transaction { db in
                    let find = try db.statement("SELECT first_id, last_id, count FROM batches WHERE sequence = ?")
                    for sequence in sequences {
                        try find.bind([.integer(Int64(sequence))])
                        guard try find.step() else { find.reset(); continue }
                        let (first, last, count) = (find.int64(0), find.int64(1), find.int64(2))
                        find.reset()
                        try db.statement("DELETE FROM readings WHERE id BETWEEN ? AND ?").run([.integer(first), .integer(last)])
                        try db.statement("DELETE FROM batches WHERE sequence = ?").run([.integer(Int64(sequence))])
                        released += count
                    }
                    if released > 0 { try Self.pruneCommits(db) }
                }
                state.buffered -= released
                return released
            }
        } catch {
            throw AgentError(.buffer, "cannot release acknowledged batches in \(path): \(error)")
        }
    }
}
