import GemelloStorage
import Logging
import NIOCore
import PostgresNIO

/// One postgres-nio connection used synchronously. Statements are written with `?` and sent with
/// `$1…$n`; the rewritten text is kept per statement.
/// `@unchecked Sendable`: only ever used under its backend's `Mutex`, lent to one closure at a time.
final class PostgresStoreConnection: StoreConnection, @unchecked Sendable {
    let configuration: PostgresBackend.Configuration
    let logger: Logger
    private var connection: PostgresConnection?
    private var rewritten: [String: String] = [:]
    /// Statements sent without waiting (``send(_:_:)``), oldest first.
    private var pending: [(sql: String, reply: EventLoopFuture<PostgresQueryResult>)] = []
    var dialect: StoreDialect { .postgres }

    init(configuration: PostgresBackend.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    deinit { close() }

    func connect() throws(StorageError) {
        var options = PostgresConnection.Configuration.Options()
        options.connectTimeout = .nanoseconds(Int64(configuration.connectTimeout.components.seconds) * 1_000_000_000
                                              + configuration.connectTimeout.components.attoseconds / 1_000_000_000)
        var pg = PostgresConnection.Configuration(host: configuration.host, port: configuration.port, username: configuration.user,
                                                  password: configuration.password, database: configuration.database, tls: .disable)
        options.additionalStartupParameters = [
            ("statement_timeout", "\(configuration.statementTimeout.components.seconds * 1000)"),
            ("application_name", "gemello-aggregator"),
        ]
        pg.options = options
        do {
            connection = try PostgresConnection.connect(on: PostgresConnection.defaultEventLoopGroup.any(), configuration: pg,
                                                        id: 1, logger: logger).wait()
        } catch {
            throw PostgresBackend.convert(error, sql: nil, configuration: configuration)
        }
    }

    func connectIfClosed() throws(StorageError) {
        if connection?.isClosed ?? true { try connect() }
    }

    func close() {
        if let connection, !connection.isClosed { try? connection.close().wait() }
        connection = nil
    }

    private func start(_ sql: String, _ values: [StoreValue]) throws(StorageError) -> EventLoopFuture<PostgresQueryResult> {
        guard let connection else {
            throw StorageError(.unavailable, "PostgreSQL at \(configuration.url): not connected", sql: sql)
        }
        let text = rewritten[sql] ?? Self.numberPlaceholders(sql)
        rewritten[sql] = text
        var binds = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .null: binds.appendNull()
            case .integer(let v): binds.append(v)
            case .real(let v): binds.append(v)
            case .text(let v): binds.append(v)
            case .blob(let v): binds.append(ByteBuffer(bytes: v))
            }
        }
        return connection.query(PostgresQuery(unsafeSQL: text, binds: binds), logger: logger)
    }

    /// Sends a statement and waits for its reply (and for everything sent before it).
    private func execute(_ sql: String, _ values: [StoreValue]) throws(StorageError) -> PostgresQueryResult {
        let reply = try start(sql, values)
        try flush()
        do {
            return try reply.wait()
        } catch {
            throw PostgresBackend.convert(error, sql: sql, configuration: configuration)
        }
    }

    func send(_ sql: String, _ values: [StoreValue]) throws(StorageError) {
        pending.append((sql, try start(sql, values)))
    }

    /// Waits for the statements sent without waiting; the first one that failed is the error.
    func flush() throws(StorageError) {
        let waiting = pending
        pending.removeAll()
        var failure: StorageError?
        for (sql, reply) in waiting {
            do { _ = try reply.wait() } catch {
                if failure == nil { failure = PostgresBackend.convert(error, sql: sql, configuration: configuration) }
            }
        }
        if let failure { throw failure }
    }

    /// Waits for the statements sent without waiting, ignoring their outcome (a rollback follows).
    func discardPending() {
        for (_, reply) in pending { _ = try? reply.wait() }
        pending.removeAll()
    }

    @discardableResult
    func run(_ sql: String, _ values: [StoreValue]) throws(StorageError) -> Int {
        try execute(sql, values).metadata.rows ?? 0
    }

    func query(_ sql: String, _ values: [StoreValue]) throws(StorageError) -> any StoreRows {
        PostgresRows(try execute(sql, values).rows)
    }

    func executeSchema(_ script: String) throws(StorageError) {
        // Aggregators of a share group start together: CREATE TABLE IF NOT EXISTS is not safe
        // against a concurrent one, so schema changes take a lock (held to the end of the transaction).
        _ = try execute("SELECT pg_advisory_xact_lock(\(Self.schemaLock))", [])
        for statement in Self.translateSchema(script) { _ = try execute(statement, []) }
    }

    /// The advisory lock key that serializes schema changes ("GEMELLO" in ASCII, as a number).
    static let schemaLock: Int64 = 0x47_45_4D_45_4C_4C_4F

    /// `?` → `$1…$n` in order, `?N` → `$N`, outside quoted strings and identifiers.
    static func numberPlaceholders(_ sql: String) -> String {
        var out = ""
        out.reserveCapacity(sql.utf8.count + 16)
        var n = 0
        var quote: Character?
        var numbered = false  // just wrote a `$` for `?N`: its digits follow as they are
        for c in sql {
            if let q = quote {
                if c == q { quote = nil }
                out.append(c)
            } else if c == "'" || c == "\"" {
                quote = c
                out.append(c)
            } else if c == "?" {
                n += 1
                out += "$"
                numbered = true
                continue
            } else if numbered {
                if !c.isNumber { out += "\(n)" }
                out.append(c)
            } else {
                out.append(c)
            }
            numbered = false
        }
        if numbered { out += "\(n)" }
        return out
    }

    /// A schema script in SQLite's spelling, as PostgreSQL statements: 64-bit integers, identity
    /// keys, `DOUBLE PRECISION`, `BYTEA`, byte-order text comparison (as SQLite's), no
    /// `WITHOUT ROWID`.
    static func translateSchema(_ script: String) -> [String] {
        script.split(separator: ";").map { statement in
            var s = String(statement)
            s = s.replacingOccurrences(" WITHOUT ROWID", "")
            s = s.replacingOccurrences("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
            s = s.replacingOccurrences("INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
            s = s.replacingWords(["INTEGER": "BIGINT", "REAL": "DOUBLE PRECISION", "BLOB": "BYTEA", "TEXT": "TEXT COLLATE \"C\""])
            return s.trimming([" ", "\n", "\t"])
        }.filter { !$0.isEmpty }
    }
}

final class PostgresRows: StoreRows {
    private let rows: [PostgresRow]
    private var index = -1
    private var current: PostgresRandomAccessRow?

    init(_ rows: [PostgresRow]) { self.rows = rows }

    func step() throws(StorageError) -> Bool {
        index += 1
        guard index < rows.count else { current = nil; return false }
        current = rows[index].makeRandomAccess()
        return true
    }

    private func cell(_ column: Int32) -> PostgresCell? { current.map { $0[Int(column)] } }

    func isNull(_ column: Int32) -> Bool { cell(column)?.bytes == nil }

    func int64(_ column: Int32) -> Int64 {
        guard let cell = cell(column), cell.bytes != nil else { return 0 }
        if let v = try? cell.decode(Int64.self) { return v }
        if let v = try? cell.decode(Double.self) { return Int64(v) }
        if let v = try? cell.decode(Bool.self) { return v ? 1 : 0 }
        if let s = try? cell.decode(String.self) { return Int64(s) ?? Int64(Double(s) ?? 0) }
        return 0
    }

    func double(_ column: Int32) -> Double {
        guard let cell = cell(column), cell.bytes != nil else { return 0 }
        if let v = try? cell.decode(Double.self) { return v }
        if let v = try? cell.decode(Int64.self) { return Double(v) }
        if let s = try? cell.decode(String.self) { return Double(s) ?? 0 }
        return 0
    }

    func text(_ column: Int32) -> String {
        guard let cell = cell(column), cell.bytes != nil else { return "" }
        if let v = try? cell.decode(String.self) { return v }
        if let v = try? cell.decode(Int64.self) { return String(v) }
        if let v = try? cell.decode(Double.self) { return String(v) }
        return ""
    }

    func blob(_ column: Int32) -> [UInt8] {
        guard let cell = cell(column), var bytes = cell.bytes else { return [] }
        if cell.dataType == .bytea { return bytes.readBytes(length: bytes.readableBytes) ?? [] }
        return (try? cell.decode(String.self)).map { Array($0.utf8) } ?? []
    }
}

extension String {
    /// Every occurrence of `target` replaced (no Foundation).
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            out += rest[..<range.lowerBound]
            out += replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }

    /// Whole words (letters, digits, `_`) replaced by their entry in `words`.
    func replacingWords(_ words: [String: String]) -> String {
        var out = ""
        var word = ""
        func flush() { out += words[word] ?? word; word = "" }
        for c in self {
            if c.isLetter || c.isNumber || c == "_" { word.append(c) } else { flush(); out.append(c) }
        }
        flush()
        return out
    }

    /// Without leading and trailing characters of `set`.
    func trimming(_ set: Set<Character>) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
