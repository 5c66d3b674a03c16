import GemelloSQLite
import Synchronization

/// The twin store's SQLite file as its parts share it: one writer connection (ingest and every
/// write queue on its lock, never in SQLite's busy handler) and one read-only connection (HTTP
/// queries never wait for an ingest transaction). Errors are converted here, once.
final class TwinDatabase: Sendable {
    struct Writer {
        let db: SQLiteConnection
        /// (agent, series name) → series id.
        var seriesIDs: [String: [String: Int64]] = [:]
    }

    let writer: Mutex<Writer>
    let reader: Mutex<SQLiteConnection>
    let path: String

    init(path: String, writer: sending Writer, reader: sending SQLiteConnection) {
        self.path = path
        self.writer = Mutex(writer)
        self.reader = Mutex(reader)
    }

    /// Runs `body` in a transaction on the writer connection.
    func write(_ body: (SQLiteConnection) throws -> Void) throws(AggregatorError) {
        do {
            try writer.withLock { (state: inout Writer) throws in try state.db.transaction { try body($0) } }
        } catch let error as AggregatorError {
            throw error
        } catch {
            throw AggregatorError(.store, "cannot update the twin store: \(error)")
        }
    }

    /// Runs `body` in a transaction on the writer connection and returns its result.
    func writing<T: Sendable>(_ body: (SQLiteConnection) throws -> T) throws(AggregatorError) -> T {
        do {
            return try writer.withLock { (state: inout Writer) throws -> T in try state.db.transaction { try body($0) } }
        } catch let error as AggregatorError {
            throw error
        } catch {
            throw AggregatorError(.store, "cannot update the twin store: \(error)")
        }
    }

    /// Runs `body` on the reader connection.
    func read<T: Sendable>(_ body: (SQLiteConnection) throws -> T) throws(AggregatorError) -> T {
        do {
            return try reader.withLock { (db: inout SQLiteConnection) throws -> T in try db.reading(body) }
        } catch let error as AggregatorError {
            throw error
        } catch {
            throw AggregatorError(.store, "cannot read the twin store: \(error)")
        }
    }
}
