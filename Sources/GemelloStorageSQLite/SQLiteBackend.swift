import GemelloSQLite
import GemelloStorage
import Synchronization

/// The embedded backend (the default): one SQLite file in WAL mode with one writer connection
/// (every write of this process queues on its lock, never in SQLite's busy handler) and one
/// read-only connection (reads never wait for a write). SQLite's errors become
/// ``StorageError`` here, in ``convert(_:)``, and nowhere else.
public final class SQLiteBackend: StoreBackend {
    public var dialect: StoreDialect { .sqlite }
    public var location: String { path }
    public let path: String
    private let writer: Mutex<SQLiteStoreConnection>
    private let reader: Mutex<SQLiteStoreConnection>

    /// Opens (creating if needed) the store file at `path`. `synchronous` is SQLite's pragma:
    /// FULL makes every commit reach the disk before it returns (an acknowledged batch survives
    /// a power cut).
    public init(path: String, synchronous: String = "FULL", cacheKiB: Int = 32_768) throws(StorageError) {
        do {
            let db = try SQLiteConnection(path: path, options: .init(synchronous: synchronous))
            try db.execute("PRAGMA cache_size = -\(cacheKiB)")
            let readOnly = try SQLiteConnection(path: path, options: .init(readOnly: true))
            try readOnly.execute("PRAGMA cache_size = -\(cacheKiB)")
            self.path = path
            writer = Mutex(SQLiteStoreConnection(db))
            reader = Mutex(SQLiteStoreConnection(readOnly))
        } catch {
            throw Self.convert(error)
        }
    }

    public func transaction<T: Sendable>(_ body: (any StoreConnection) throws -> T) throws -> T {
        try writer.withLock { connection in try Self.converting { try connection.db.transaction { _ in try body(connection) } } }
    }

    public func read<T: Sendable>(_ body: (any StoreConnection) throws -> T) throws -> T {
        try reader.withLock { connection in try Self.converting { try connection.db.reading { _ in try body(connection) } } }
    }

    /// Runs `body`, SQLite's errors converted (what the body itself throws passes through).
    private static func converting<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as SQLiteError { throw convert(error) }
    }

    public func compact() throws(StorageError) -> Int64 {
        do {
            try writer.withLock { connection throws(SQLiteError) in
                try connection.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                try connection.db.execute("VACUUM")
                try connection.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            }
        } catch {
            throw Self.convert(error)
        }
        return try size()
    }

    public func size() throws(StorageError) -> Int64 {
        do {
            return try reader.withLock { connection throws(SQLiteError) -> Int64 in
                defer { connection.db.resetStatements() }
                return (try connection.db.scalarInt("PRAGMA page_count") ?? 0) * (try connection.db.scalarInt("PRAGMA page_size") ?? 0)
            }
        } catch {
            throw Self.convert(error)
        }
    }

    public func close() {}

    /// The one place SQLite's errors become the storage protocol's.
    static func convert(_ error: any Error) -> StorageError {
        guard let error = error as? SQLiteError else {
            return error as? StorageError ?? StorageError(.failed, "\(error)")
        }
        let kind: StorageError.Kind
        switch error.code {
        case .diskFull: kind = .full
        case .busy: kind = .conflict
        case .constraint: kind = .constraint
        case .cannotOpen, .readOnly: kind = .unavailable
        case .corrupt, .ioError, .misuse, .other: kind = .failed
        }
        return StorageError(kind, "SQLite: \(error.message)" + (error.code == .diskFull ? " (the disk is full)" : ""), sql: error.sql)
    }
}

/// A ``SQLiteConnection`` seen through the storage protocol; its statements stay prepared.
/// `@unchecked Sendable`: only ever used under its backend's `Mutex`, lent to one closure at a time.
final class SQLiteStoreConnection: StoreConnection, @unchecked Sendable {
    let db: SQLiteConnection
    var dialect: StoreDialect { .sqlite }

    init(_ db: SQLiteConnection) { self.db = db }

    @discardableResult
    func run(_ sql: String, _ values: [StoreValue]) throws(StorageError) -> Int {
        do {
            try db.statement(sql).run(values.map(Self.sqlite))
            return db.changes
        } catch {
            throw SQLiteBackend.convert(error)
        }
    }

    func send(_ sql: String, _ values: [StoreValue]) throws(StorageError) {
        do { try db.statement(sql).run(values.map(Self.sqlite)) } catch { throw SQLiteBackend.convert(error) }
    }

    func query(_ sql: String, _ values: [StoreValue]) throws(StorageError) -> any StoreRows {
        do {
            let statement = try db.statement(sql)
            try statement.bind(values.map(Self.sqlite))
            return SQLiteRows(statement)
        } catch {
            throw SQLiteBackend.convert(error)
        }
    }

    func executeSchema(_ script: String) throws(StorageError) {
        // Queries left part-read keep their tables locked against DROP: finish them first.
        db.resetStatements()
        do { try db.execute(script) } catch { throw SQLiteBackend.convert(error) }
    }

    static func sqlite(_ value: StoreValue) -> SQLiteValue {
        switch value {
        case .null: .null
        case .integer(let v): .integer(v)
        case .real(let v): .real(v)
        case .text(let v): .text(v)
        case .blob(let v): .blob(v)
        }
    }
}

final class SQLiteRows: StoreRows {
    let statement: SQLiteStatement
    init(_ statement: SQLiteStatement) { self.statement = statement }

    func step() throws(StorageError) -> Bool {
        do { return try statement.step() } catch { throw SQLiteBackend.convert(error) }
    }
    func isNull(_ column: Int32) -> Bool { statement.isNull(column) }
    func int64(_ column: Int32) -> Int64 { statement.int64(column) }
    func double(_ column: Int32) -> Double { statement.double(column) }
    func text(_ column: Int32) -> String { statement.text(column) }
    func blob(_ column: Int32) -> [UInt8] { statement.blob(column) }
}
