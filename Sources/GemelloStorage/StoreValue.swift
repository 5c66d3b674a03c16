/// A value bound to or read from a statement, in the types both backends share.
public enum StoreValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

/// Which SQL a connection speaks. The stores above write portable SQL (`?` placeholders,
/// `INSERT ... ON CONFLICT`, `CAST(... AS BIGINT)`); the few spots where the dialects differ ask
/// for their spelling here.
public enum StoreDialect: String, Sendable, CaseIterable {
    case sqlite
    case postgres

    /// The larger of two expressions (SQLite's scalar `max(a, b)`, PostgreSQL's `GREATEST`).
    public func greatest(_ a: String, _ b: String) -> String {
        self == .sqlite ? "max(\(a), \(b))" : "GREATEST(\(a), \(b))"
    }

    /// The 1-based position of `needle` in `haystack` (0: absent): `instr` / `strpos`.
    public func position(of needle: String, in haystack: String) -> String {
        self == .sqlite ? "instr(\(haystack), \(needle))" : "strpos(\(haystack), \(needle))"
    }

    /// Appended to a SELECT to lock the rows it reads until the transaction ends (PostgreSQL:
    /// other processes writing the same store wait; SQLite: nothing, its one writer holds the
    /// whole file).
    public var forUpdate: String { self == .sqlite ? "" : " FOR UPDATE" }

    /// The smaller of two expressions.
    public func least(_ a: String, _ b: String) -> String {
        self == .sqlite ? "min(\(a), \(b))" : "LEAST(\(a), \(b))"
    }
}
