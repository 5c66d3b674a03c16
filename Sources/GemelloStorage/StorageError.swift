/// What a backend reports: the database's own message, which statement, and whether retrying
/// the transaction can help (another writer held a lock, a serialization conflict).
public struct StorageError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The database is unreachable or refused us (connection, authentication).
        case unavailable
        /// A lock or serialization conflict with another writer; the transaction may be retried.
        case conflict
        /// The disk or the database is full.
        case full
        /// A constraint was violated.
        case constraint
        /// Anything else (bad SQL, corrupt file, type mismatch).
        case failed
    }

    public var kind: Kind
    public var message: String
    public var sql: String?

    public init(_ kind: Kind, _ message: String, sql: String? = nil) {
        self.kind = kind
        self.message = message
        self.sql = sql
    }

    public var description: String {
        let statement = sql.map { " (in: \($0.split(whereSeparator: \.isNewline).map { $0.drop(while: { $0 == " " }) }.joined(separator: " ").prefix(160)))" } ?? ""
        return message + statement
    }
}
