import GemelloStorage

extension PostgresBackend {
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
}
