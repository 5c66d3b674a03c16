import GemelloStorage
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The server backend (`store.kind: postgres`): a PostgreSQL database reached with postgres-nio,
/// with one writer connection (this process's writes queue on its lock) and one reader. The
/// store's API is synchronous, so each statement waits for its reply (never on an event loop
/// thread: the store is called from tasks and services). A connection lost (server restart) is
/// opened again on the next use; a transaction it broke fails and is retried by its caller.
/// PostgreSQL's errors become ``StorageError`` here, in ``convert(_:sql:)``, and nowhere else.
public final class PostgresBackend: StoreBackend {
    public struct Configuration: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var database: String
        public var user: String
        public var password: String?
        /// Waits this long for a connection before reporting the server unavailable.
        public var connectTimeout: Duration
        /// The server cancels a statement that runs (or waits for a lock) longer than this: a hung
        /// server or a stuck lock fails the transaction (its batches come again) instead of
        /// stalling ingest for ever.
        public var statementTimeout: Duration = .seconds(300)

        public init(host: String = "127.0.0.1", port: Int = 5432, database: String = "gemello",
                    user: String = "gemello", password: String? = nil, connectTimeout: Duration = .seconds(10)) {
            self.host = host
            self.port = port
            self.database = database
            self.user = user
            self.password = password
            self.connectTimeout = connectTimeout
        }

        /// `postgres://user[:password]@host[:port]/database` (the password is never printed).
        public init(url: String) throws(StorageError) {
            let fix = "Fix: write it as postgres://user[:password]@host[:port]/database"
            guard let rest = url.split(separator: "://", maxSplits: 1).dropFirst().first,
                  ["postgres", "postgresql"].contains(url.split(separator: "://").first ?? "") else {
                throw StorageError(.failed, "store.url '\(url)' is not a PostgreSQL URL. \(fix)")
            }
            let (authority, path) = rest.firstIndex(of: "/").map { (rest[..<$0], rest[rest.index(after: $0)...]) } ?? (rest, "")
            guard !path.isEmpty, !path.contains("/") else { throw StorageError(.failed, "store.url '\(url)' names no database. \(fix)") }
            var userPart: Substring = "gemello", hostPart = authority
            if let at = authority.lastIndex(of: "@") {
                userPart = authority[..<at]
                hostPart = authority[authority.index(after: at)...]
            }
            let credentials = userPart.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            var port = 5432
            var host = hostPart
            if let colon = hostPart.lastIndex(of: ":"), !hostPart.hasSuffix("]") {
                guard let p = Int(hostPart[hostPart.index(after: colon)...]), (1...65535).contains(p) else {
                    throw StorageError(.failed, "store.url '\(url)' has a bad port. \(fix)")
                }
                port = p
                host = hostPart[..<colon]
            }
            self.init(host: host.isEmpty ? "127.0.0.1" : String(host).trimming(["[", "]"]), port: port,
                      database: String(path.split(separator: "?").first ?? path),
                      user: String(credentials[0]), password: credentials.count > 1 ? String(credentials[1]) : nil)
        }

        /// The URL without its password.
        public var url: String { "postgres://\(user)@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)" }
    }

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
