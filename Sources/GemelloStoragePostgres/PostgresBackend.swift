import GemelloStorage
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The server backend (`store.kind: postgres`): a PostgreSQL database reached with postgres-nio,
/// with one writer connection (this process's writes queue on its lock) and one reader. The
/// store's API is synchronous: a statement whose reply is needed waits for it, writes that need
/// none are pipelined and waited for at the next reply or the commit (never on an event loop
/// thread: the store is called from tasks and services). A connection lost (server restart) is
/// opened again on the next use; a transaction it broke fails and is retried by its caller.
/// Connections and statements: `PostgresStoreConnection.swift`; settings and `store.url`:
/// `PostgresBackend+Configuration.swift`. PostgreSQL's errors become ``StorageError`` here, in
/// ``convert(_:sql:configuration:)``, and nowhere else.
public final class PostgresBackend: StoreBackend {
    public var dialect: StoreDialect { .postgres }
    public var location: String { configuration.url }
    public let configuration: Configuration
    private let writer: Mutex<PostgresStoreConnection>
    private let reader: Mutex<PostgresStoreConnection>

    /// Connects (the writer and the reader); fails at once with a message naming the server
    /// when it cannot be reached.
    public init(_ configuration: Configuration, logger: Logger = Logger(label: "gemello.store.postgres")) throws(StorageError) {
        self.configuration = configuration
        let writerConnection = PostgresStoreConnection(configuration: configuration, logger: logger)
        let readerConnection = PostgresStoreConnection(configuration: configuration, logger: logger)
        try writerConnection.connect()
        try readerConnection.connect()
        writer = Mutex(writerConnection)
        reader = Mutex(readerConnection)
    }

    public func transaction<T: Sendable>(_ body: (any StoreConnection) throws -> T) throws -> T {
        try writer.withLock { connection in
            try connection.connectIfClosed()
            try connection.send("BEGIN", [])
            do {
                let result = try body(connection)
                try connection.run("COMMIT", [])  // waits for every statement sent before it
                return result
            } catch {
                connection.discardPending()
                if let failure = error as? StorageError, failure.kind == .unavailable {
                    connection.close()  // opened again by the next transaction
                } else {
                    _ = try? connection.run("ROLLBACK", [])
                }
                throw error
            }
        }
    }

    public func read<T: Sendable>(_ body: (any StoreConnection) throws -> T) throws -> T {
        try reader.withLock { connection in
            func attempt() throws -> T {
                try connection.connectIfClosed()
                defer { connection.discardPending() }
                let result = try body(connection)
                try connection.flush()
                return result
            }
            do {
                return try attempt()
            } catch let error as StorageError where error.kind == .unavailable {
                // The server dropped the connection (a restart): reads are safe to run again, once.
                connection.close()
                return try attempt()
            }
        }
    }

    public func compact() throws(StorageError) -> Int64 {
        try writer.withLock { connection throws(StorageError) in
            try connection.connectIfClosed()
            try connection.run("VACUUM FULL", [])
        }
        return try size()
    }

    public func size() throws(StorageError) -> Int64 {
        try reader.withLock { connection throws(StorageError) -> Int64 in
            try connection.connectIfClosed()
            // The store's tables with their indexes and TOAST (not the catalog every database has).
            return try connection.scalarInt("""
                SELECT CAST(coalesce(sum(pg_total_relation_size(c.oid)), 0) AS BIGINT) FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'
                """) ?? 0
        }
    }

    public func close() {
        writer.withLock { $0.close() }
        reader.withLock { $0.close() }
    }

    /// The one place PostgreSQL's and postgres-nio's errors become the storage protocol's.
    static func convert(_ error: any Error, sql: String?, configuration: Configuration) -> StorageError {
        if let error = error as? StorageError { return error }
        guard let error = error as? PSQLError else {
            return StorageError(.unavailable, "PostgreSQL at \(configuration.url): \(error). "
                                + "Fix: start the server or correct store.url", sql: sql)
        }
        if let info = error.serverInfo {
            let state = info[.sqlState] ?? ""
            let message = (info[.message] ?? "\(error)") + (info[.detail].map { " (\($0))" } ?? "")
            let kind: StorageError.Kind
            switch state {
            case "40001", "40P01", "55P03": kind = .conflict
            case "53100": kind = .full
            case _ where state.hasPrefix("23"): kind = .constraint
            case _ where state.hasPrefix("08") || state.hasPrefix("28") || state.hasPrefix("57P") || state == "3D000": kind = .unavailable
            default: kind = .failed
            }
            return StorageError(kind, "PostgreSQL (\(state)): \(message)", sql: sql)
        }
        let detail = error.underlying.map { "\($0)" } ?? "\(error.code)"
        return StorageError(.unavailable, "PostgreSQL at \(configuration.url) is unreachable (\(detail)). "
                            + "Fix: start the server or correct store.url", sql: sql)
    }
}
