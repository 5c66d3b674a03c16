import CSQLite

/// One SQLite connection with a cache of prepared statements.
///
/// Not `Sendable`: a connection belongs to one owner at a time (a `Mutex` or an actor in the
/// layers above), which is how SQLite's "multi-thread" mode (`SQLITE_OPEN_NOMUTEX`) must be used.
public final class SQLiteConnection {
    /// How the file is opened.
    public struct Options: Sendable {
        /// Open read-only (an HTTP reader next to the ingest writer).
        public var readOnly: Bool
        /// Milliseconds to wait on a lock held by another connection before failing with `busy`.
        public var busyTimeoutMilliseconds: Int32
        /// Switch the file to write-ahead logging (readers never block the writer).
        public var writeAheadLog: Bool
        /// `synchronous` pragma; `NORMAL` in WAL mode is durable across process crashes and
        /// loses at most the last commits on a power cut, never corrupting the file.
        public var synchronous: String

        public init(readOnly: Bool = false, busyTimeoutMilliseconds: Int32 = 5_000,
                    writeAheadLog: Bool = true, synchronous: String = "NORMAL") {
            self.readOnly = readOnly
            self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
            self.writeAheadLog = writeAheadLog
            self.synchronous = synchronous
        }
    }

    /// The path this connection was opened on.
    public let path: String
    let handle: OpaquePointer
    private var statements: [String: SQLiteStatement] = [:]

    /// Opens (creating if needed) the database at `path`.
    public init(path: String, options: Options = Options()) throws(SQLiteError) {
        var raw: OpaquePointer?
        let flags = (options.readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE))
            | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &raw, flags, nil)
        guard status == SQLITE_OK, let raw else {
            let error = SQLiteError(code: SQLiteError.code(for: status),
                                    message: raw.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open",
                                    sql: nil)
            sqlite3_close_v2(raw)
            throw error
        }
        self.path = path
        self.handle = raw
        sqlite3_extended_result_codes(raw, 1)
        sqlite3_busy_timeout(raw, options.busyTimeoutMilliseconds)
        if options.writeAheadLog && !options.readOnly {
            try execute("PRAGMA journal_mode=WAL")
        }
        try execute("PRAGMA synchronous=\(options.synchronous)")
        // Touch the schema now so a file that is not a database fails at open, not at first use.
        try execute("SELECT count(*) FROM sqlite_master")
    }

    deinit {
        statements.removeAll()  // finalize every statement before closing the handle
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements that return no rows.
    public func execute(_ sql: String) throws(SQLiteError) {
        try SQLiteError.check(sqlite3_exec(handle, sql, nil, nil, nil), handle, sql: sql)
    }

    /// A prepared statement for `sql`, compiled once and reused (reset) on later calls.
    public func statement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let cached = statements[sql] {
            cached.reset()
            return cached
        }
        let statement = try SQLiteStatement(connection: self, sql: sql)
        statements[sql] = statement
        return statement
    }

    /// Runs `body` inside `BEGIN IMMEDIATE ... COMMIT`, rolling back if it throws.
    public func transaction<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        defer { resetStatements() }
        do {
            let result = try body(self)
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Runs `body` (reads outside a transaction) and then resets every cached statement.
    ///
    /// Why: a SELECT stepped but not run to completion keeps its read transaction open. In WAL
    /// mode that pins an old snapshot (later reads on this connection miss new commits) and
    /// stops checkpoints from recycling the WAL, which then grows without bound.
    public func reading<T>(_ body: (SQLiteConnection) throws -> T) rethrows -> T {
        defer { resetStatements() }
        return try body(self)
    }

    /// Resets every cached statement, ending any read transaction they hold.
    public func resetStatements() {
        for statement in statements.values { sqlite3_reset(statement.pointer) }
    }

    /// The rowid of the last inserted row.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Rows changed by the last statement.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Runs a query returning a single integer (`SELECT count(*) ...`).
    public func scalarInt(_ sql: String, _ bindings: [SQLiteValue] = []) throws(SQLiteError) -> Int64? {
        let statement = try statement(sql)
        defer { sqlite3_reset(statement.pointer) }
        try statement.bind(bindings)
        guard try statement.step() else { return nil }
        return statement.isNull(0) ? nil : statement.int64(0)
    }
}
