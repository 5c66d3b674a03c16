/// The rows of one query, read in order. Column indexes start at 0.
public protocol StoreRows: AnyObject {
    /// Moves to the next row; false past the last one.
    func step() throws(StorageError) -> Bool
    func isNull(_ column: Int32) -> Bool
    func int64(_ column: Int32) -> Int64
    func double(_ column: Int32) -> Double
    func text(_ column: Int32) -> String
    func blob(_ column: Int32) -> [UInt8]
}

extension StoreRows {
    public func int(_ column: Int32) -> Int { Int(int64(column)) }
    /// The column, or nil when it is NULL.
    public func optionalInt64(_ column: Int32) -> Int64? { isNull(column) ? nil : int64(column) }
    public func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }
    public func optionalDouble(_ column: Int32) -> Double? { isNull(column) ? nil : double(column) }
}

/// One connection of a backend, lent to a closure inside a transaction (writes) or a read.
/// Not `Sendable`: it belongs to the closure it is lent to. SQL is portable: `?` placeholders,
/// the types of ``StoreValue``, differences spelled through ``dialect``.
public protocol StoreConnection: AnyObject {
    var dialect: StoreDialect { get }
    /// Runs a statement that returns no rows; the number of rows it changed.
    @discardableResult
    func run(_ sql: String, _ values: [StoreValue]) throws(StorageError) -> Int
    /// Runs a write whose result is not needed. A backend may send it without waiting for its
    /// reply (PostgreSQL: pipelined); an error then fails the next statement that waits, or the
    /// commit, and the transaction rolls back as a whole.
    func send(_ sql: String, _ values: [StoreValue]) throws(StorageError)
    /// Runs a query; its rows (valid until the next statement on this connection).
    func query(_ sql: String, _ values: [StoreValue]) throws(StorageError) -> any StoreRows
    /// Runs a schema script: statements separated by `;`, no bindings. Written in SQLite's
    /// spelling of types (`INTEGER PRIMARY KEY`, `REAL`, `BLOB`, `WITHOUT ROWID`); other
    /// backends translate it.
    func executeSchema(_ script: String) throws(StorageError)
}

extension StoreConnection {
    @discardableResult
    public func run(_ sql: String) throws(StorageError) -> Int { try run(sql, []) }

    public func query(_ sql: String) throws(StorageError) -> any StoreRows { try query(sql, []) }

    /// A query's first column of its first row as an integer (nil: no row, or NULL).
    public func scalarInt(_ sql: String, _ values: [StoreValue] = []) throws(StorageError) -> Int64? {
        let rows = try query(sql, values)
        guard try rows.step() else { return nil }
        return rows.isNull(0) ? nil : rows.int64(0)
    }
}

/// A store's database as its users share it: writes in transactions, one at a time in this
/// process (other processes may write too: PostgreSQL), and reads that never wait for a write.
public protocol StoreBackend: Sendable {
    var dialect: StoreDialect { get }
    /// Where the data lives, for messages (a file path, `postgres://host:port/db`).
    var location: String { get }
    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    func transaction<T: Sendable>(_ body: (any StoreConnection) throws -> T) throws -> T
    /// Runs `body` on the read connection (each statement sees committed data).
    func read<T: Sendable>(_ body: (any StoreConnection) throws -> T) throws -> T
    /// Gives free space back (SQLite: checkpoint and VACUUM; PostgreSQL: VACUUM); the bytes the
    /// store takes afterwards.
    func compact() throws(StorageError) -> Int64
    /// Bytes the store takes now (SQLite: the file; PostgreSQL: the store's tables with their
    /// indexes and TOAST).
    func size() throws(StorageError) -> Int64
    /// Closes the connections (the store is unusable afterwards).
    func close()
}
