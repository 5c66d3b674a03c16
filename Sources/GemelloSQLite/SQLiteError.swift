import CSQLite

/// The one error type of the SQLite wrapper. Every SQLite result code becomes one of these in
/// ``SQLiteError/check(_:_:sql:)``; callers switch on ``code`` and never see raw integers.
public struct SQLiteError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: Sendable, Equatable {
        /// The disk (or a quota) is full: `SQLITE_FULL`.
        case diskFull
        /// The file is not a database or is damaged: `SQLITE_CORRUPT`, `SQLITE_NOTADB`.
        case corrupt
        /// Another connection holds a lock past the busy timeout.
        case busy
        /// A constraint (unique key, not null, ...) was violated.
        case constraint
        /// The file cannot be opened or created (missing folder, permissions).
        case cannotOpen
        /// The file system refused a read or write.
        case ioError
        /// The database or its folder is read-only.
        case readOnly
        /// A statement was misused (wrong SQL, bad binding): a programming error.
        case misuse
        /// Any other result code.
        case other(Int32)
    }

    public let code: Code
    /// SQLite's own message (`sqlite3_errmsg`).
    public let message: String
    /// The statement that failed, when known.
    public let sql: String?

    public init(code: Code, message: String, sql: String? = nil) {
        self.code = code
        self.message = message
        self.sql = sql
    }

    public var description: String {
        if let sql { return "SQLite error \(code): \(message) [\(sql.prefix(120))]" }
        return "SQLite error \(code): \(message)"
    }

    static func code(for status: Int32) -> Code {
        switch status & 0xFF {  // primary code: extended codes carry detail in the upper bits
        case SQLITE_FULL: return .diskFull
        case SQLITE_CORRUPT, SQLITE_NOTADB: return .corrupt
        case SQLITE_BUSY, SQLITE_LOCKED: return .busy
        case SQLITE_CONSTRAINT: return .constraint
        case SQLITE_CANTOPEN: return .cannotOpen
        case SQLITE_IOERR: return .ioError
        case SQLITE_READONLY: return .readOnly
        case SQLITE_MISUSE, SQLITE_ERROR, SQLITE_RANGE: return .misuse
        default: return .other(status)
        }
    }

    /// Throws unless `status` is one of the success codes.
    static func check(_ status: Int32, _ handle: OpaquePointer?, sql: String? = nil) throws(SQLiteError) {
        switch status {
        case SQLITE_OK, SQLITE_ROW, SQLITE_DONE: return
        default:
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(status))
            throw SQLiteError(code: code(for: status), message: message, sql: sql)
        }
    }
}
