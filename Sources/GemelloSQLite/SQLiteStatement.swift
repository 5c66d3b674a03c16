import CSQLite

/// A value to bind to a statement parameter.
public enum SQLiteValue: Sendable, Equatable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
    case null
}

/// A compiled statement. Owned by its ``SQLiteConnection``'s cache, which finalizes it before
/// the connection closes, so the statement pointer never outlives the database handle.
public final class SQLiteStatement {
    let pointer: OpaquePointer
    /// The SQL text, kept for error messages.
    public let sql: String
    private unowned let connection: SQLiteConnection

    init(connection: SQLiteConnection, sql: String) throws(SQLiteError) {
        var raw: OpaquePointer?
        try SQLiteError.check(sqlite3_prepare_v2(connection.handle, sql, -1, &raw, nil), connection.handle, sql: sql)
        guard let raw else { throw SQLiteError(code: .misuse, message: "empty statement", sql: sql) }
        self.pointer = raw
        self.sql = sql
        self.connection = connection
    }

    deinit { sqlite3_finalize(pointer) }

    /// Resets the statement for another execution and clears its bindings.
    public func reset() {
        sqlite3_reset(pointer)
        sqlite3_clear_bindings(pointer)
    }

    /// Binds `values` to parameters 1...n.
    public func bind(_ values: [SQLiteValue]) throws(SQLiteError) {
        for (offset, value) in values.enumerated() { try bind(value, at: Int32(offset + 1)) }
    }

    /// Binds one value to the 1-based parameter `index`.
    public func bind(_ value: SQLiteValue, at index: Int32) throws(SQLiteError) {
        let status: Int32
        switch value {
        case .integer(let v): status = sqlite3_bind_int64(pointer, index, v)
        case .real(let v): status = sqlite3_bind_double(pointer, index, v)
        case .text(let v):
            // Bound with SQLITE_TRANSIENT: SQLite copies the bytes before the closure returns.
            status = v.withCString { gemello_sqlite_bind_text(pointer, index, $0, Int32(v.utf8.count)) }
        case .blob(let v):
            status = v.withUnsafeBytes { gemello_sqlite_bind_blob(pointer, index, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, Int32($0.count)) }
        case .null: status = sqlite3_bind_null(pointer, index)
        }
        try SQLiteError.check(status, connection.handle, sql: sql)
    }

    /// Hot-path binders that avoid building a ``SQLiteValue``.
    public func bind(int64 value: Int64, at index: Int32) throws(SQLiteError) {
        try SQLiteError.check(sqlite3_bind_int64(pointer, index, value), connection.handle, sql: sql)
    }

    public func bind(double value: Double, at index: Int32) throws(SQLiteError) {
        try SQLiteError.check(sqlite3_bind_double(pointer, index, value), connection.handle, sql: sql)
    }

    /// Advances to the next row; `false` when the statement is done.
    @discardableResult
    public func step() throws(SQLiteError) -> Bool {
        let status = sqlite3_step(pointer)
        if status == SQLITE_ROW { return true }
        if status == SQLITE_DONE { return false }
        try SQLiteError.check(status, connection.handle, sql: sql)
        return false
    }

    /// Executes the statement with `values`, ignoring any rows, and resets it for reuse.
    public func run(_ values: [SQLiteValue] = []) throws(SQLiteError) {
        try bind(values)
        while try step() {}
        sqlite3_reset(pointer)
    }

    /// Executes after binding via the fast binders, then resets (keeping no bindings).
    public func runBound() throws(SQLiteError) {
        defer { sqlite3_reset(pointer) }
        while try step() {}
    }

    public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(pointer, column) == SQLITE_NULL }
    public func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(pointer, column) }
    public func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(pointer, column)) }
    public func double(_ column: Int32) -> Double { sqlite3_column_double(pointer, column) }

    public func text(_ column: Int32) -> String {
        guard let raw = sqlite3_column_text(pointer, column) else { return "" }
        return String(cString: raw)
    }

    public func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(pointer, column))
        guard count > 0, let raw = sqlite3_column_blob(pointer, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: raw, count: count))
    }
}
