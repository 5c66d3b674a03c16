/// The aggregator's API tokens: who may call which part of the HTTP API.
///
/// Tokens are bearer secrets (`gmt_<id>_<secret>`, 32 random bytes) shown once by `gemello token
/// create`; the file keeps only their SHA-256, so a copy of it (a backup, a leaked config
/// folder) gives no access. The aggregator re-reads the file when it changes, so `gemello
/// token revoke` takes effect within a second. One token per line, fields separated by single
/// spaces:
///
/// ```
/// # gemello API tokens v1
/// <id> <name> <sha-256 of the token, hex> <scope,scope,...> <created at> <expires at or -> active|revoked
/// ```
public struct APITokens: Sendable, Equatable {
    /// What a token may do. `admin` includes every other scope.
    public enum Scope: String, Sendable, Equatable, CaseIterable, Comparable {
        /// Read the twin: NGSI-LD entities, types, attributes, temporal queries.
        case twinRead = "twin:read"
        /// Create, change and delete NGSI-LD entities (not the agents' own telemetry).
        case twinWrite = "twin:write"
        /// Create, read, change and delete NGSI-LD subscriptions.
        case subscriptions
        /// The fleet and its alerts: `/fleet`, `/alerts`, `/health` and `/metrics` when not public.
        case fleetRead = "fleet:read"
        /// Acknowledge alerts (`POST /alerts/{id}/ack`).
        case alertsAck = "alerts:ack"
        /// Everything.
        case admin

        public static func < (a: Scope, b: Scope) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
    }

    public enum Status: String, Sendable, Equatable { case active, revoked }

    public struct Record: Sendable, Equatable {
        /// Short public handle (8 hex digits), part of the token itself.
        public var id: String
        public var name: String
        /// SHA-256 of the whole token.
        public var hash: [UInt8]
        public var scopes: [Scope]
        public var createdAt: String
        public var expiresAt: String?
        public var status: Status

        public init(id: String, name: String, hash: [UInt8], scopes: [Scope], createdAt: String, expiresAt: String? = nil, status: Status = .active) {
            self.id = id
            self.name = name
            self.hash = hash
            self.scopes = scopes
            self.createdAt = createdAt
            self.expiresAt = expiresAt
            self.status = status
        }

        public func allows(_ scope: Scope) -> Bool { scopes.contains(.admin) || scopes.contains(scope) }
    }

    public private(set) var records: [Record]

    public init(records: [Record] = []) { self.records = records }

    public static let header = "# gemello API tokens v1: <id> <name> <sha-256> <scopes> <created> <expires|-> active|revoked"

    public subscript(id: String) -> Record? { records.first { $0.id == id } }

    public mutating func upsert(_ record: Record) {
        if let i = records.firstIndex(where: { $0.id == record.id }) { records[i] = record } else { records.append(record) }
    }

    /// A new token: its text (shown once) and the record that keeps its hash.
    public static func make(name: String, scopes: [Scope], createdAt: String, expiresAt: String?,
                            using generator: inout some RandomNumberGenerator) -> (token: String, record: Record) {
        let id = (0..<4).map { _ in UInt8.random(in: 0...255, using: &generator) }.hexString
        let secret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }.hexString
        let token = "gmt_\(id)_\(secret)"
        return (token, Record(id: id, name: name, hash: SHA256.hash(Array(token.utf8)), scopes: scopes.sorted(),
                              createdAt: createdAt, expiresAt: expiresAt))
    }

    public enum Verdict: Equatable, Sendable {
        case allowed(Record)
        /// 401: no token, not a token of this file, revoked or expired (the reason says which, for the log).
        case unauthenticated(String)
        /// 403: a valid token without the scope.
        case forbidden(Record)
    }

    /// Judges `token` (the bearer credential as sent) for `scope` at `now` (ISO 8601, compared as text).
    public func judge(_ token: String?, scope: Scope, now: String) -> Verdict {
        guard let token, !token.isEmpty else { return .unauthenticated("no bearer token") }
        let parts = token.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "gmt", let record = self[String(parts[1])] else { return .unauthenticated("unknown token") }
        guard HMACSHA256.constantTimeEqual(SHA256.hash(Array(token.utf8)), record.hash) else { return .unauthenticated("unknown token") }
        guard record.status == .active else { return .unauthenticated("token '\(record.name)' (\(record.id)) is revoked") }
        if let expiresAt = record.expiresAt, now >= expiresAt { return .unauthenticated("token '\(record.name)' (\(record.id)) expired at \(expiresAt)") }
        return record.allows(scope) ? .allowed(record) : .forbidden(record)
    }

    public static func parse(_ text: String, file: String) throws(CoreError) -> APITokens {
        var tokens = APITokens()
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.isEmpty || line.hasPrefix("#") { continue }
            let f = line.split(separator: " ").map(String.init)
            func bad(_ what: String) -> CoreError {
                CoreError(.invalidConfiguration, "API tokens: \(what)", file: file, line: n + 1,
                          fix: "the file is written by 'gemello token create' and 'gemello token revoke'; restore it from them or a backup")
            }
            guard f.count == 7 else { throw bad("expected 7 fields, found \(f.count)") }
            guard f[0].utf8.count == 8, f[0].hexBytes != nil else { throw bad("'\(f[0])' is not a token id (8 hex digits)") }
            guard let hash = f[2].hexBytes, hash.count == 32 else { throw bad("the hash of token \(f[0]) is not 64 hex digits") }
            var scopes: [Scope] = []
            for s in f[3].split(separator: ",") {
                guard let scope = Scope(rawValue: String(s)) else { throw bad("'\(s)' is not a scope (\(Scope.allCases.map(\.rawValue).joined(separator: ", ")))") }
                scopes.append(scope)
            }
            guard let status = Status(rawValue: f[6]) else { throw bad("status must be active or revoked, not '\(f[6])'") }
            guard tokens[f[0]] == nil else { throw bad("token id \(f[0]) is listed twice") }
            tokens.records.append(Record(id: f[0], name: f[1], hash: hash, scopes: scopes, createdAt: f[4],
                                         expiresAt: f[5] == "-" ? nil : f[5], status: status))
        }
        return tokens
    }

    public func format() -> String {
        var out = Self.header + "\n"
        for r in records {
            out += "\(r.id) \(r.name) \(r.hash.hexString) \(r.scopes.map(\.rawValue).joined(separator: ",")) \(r.createdAt) \(r.expiresAt ?? "-") \(r.status.rawValue)\n"
        }
        return out
    }

    /// Token names are one word: letters, digits, '-', '_', '.', '@'.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.unicodeScalars.allSatisfy { s in
            (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || (s >= "0" && s <= "9") || "-_.@".unicodeScalars.contains(s)
        }
    }
}
