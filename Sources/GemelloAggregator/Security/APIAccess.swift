import Foundation
import GemelloCore
import GemelloNGSILD
import Logging
import Synchronization

/// Who may call what on the HTTP API (docs/security.md): bearer tokens with scopes from
/// `http.tokens-file`, the paths that stay public, a rate limit per token, and the request size
/// caps. Pure decisions; the HTTP module applies them as a middleware.
public final class APIAccess: Sendable {
    public struct Policy: Sendable, Equatable {
        /// nil: no tokens, the API is open (allowed only on a loopback address or with `http.insecure`).
        public var tokensFile: String?
        /// Paths served without a token (`/` and `/dashboard`, a page without data, always are).
        public var publicPaths: [String] = ["/health"]
        /// Requests per second per token, and the burst above it.
        public var ratePerSecond: Double = 50
        public var burst: Double = 200
        /// Largest request body accepted (413 above it).
        public var maxBody = 16 << 20
        /// Longest query string accepted (414 above it).
        public var maxQuery = 8 << 10
        public init() {}
    }

    /// What a request needs.
    public enum Requirement: Equatable, Sendable {
        case open
        case scope(APITokens.Scope)
    }

    public enum Decision: Equatable, Sendable {
        case allow(tokenID: String?)
        case deny(NGSILDError, retryAfterSeconds: Int?)
    }

    public let policy: Policy
    private let tokens: WatchedFile<APITokens>?
    private let buckets = Mutex<[String: Bucket]>([:])
    private let clock: any WallClock

    struct Bucket {
        var level: Double
        var updated: ContinuousClock.Instant
    }

    /// Loads the token file when the policy names one (created empty, mode 0600, when missing).
    public init(policy: Policy, clock: any WallClock = SystemWallClock(), logger: Logger) throws(AggregatorError) {
        self.policy = policy
        self.clock = clock
        if let path = policy.tokensFile {
            if !FileManager.default.fileExists(atPath: path) {
                let created = FileManager.default.createFile(atPath: path, contents: Data((APITokens.header + "\n").utf8),
                                                             attributes: [.posixPermissions: 0o600])
                guard created else {
                    throw AggregatorError(.configuration, "http.tokens-file: \(path) does not exist and cannot be created. Fix: create its folder, writable by the aggregator's user")
                }
                logger.warning("no API tokens yet: every request but the public paths gets 401 until one is made",
                               metadata: ["fix": "gemello token create --tokens-file \(path) --name ops --scope admin"])
            }
            tokens = try WatchedFile(path: path, what: "API token file", key: "http.tokens-file", logger: logger,
                                     describe: { t in ["active": "\(t.records.filter { $0.status == .active }.count)"] },
                                     parse: { text, path throws(CoreError) in try APITokens.parse(text, file: path) })
        } else {
            tokens = nil
        }
    }

    /// The scope a request needs: by path, and for the twin by method (reads and writes).
    public func requirement(method: String, path: String) -> Requirement {
        guard tokens != nil else { return .open }
        if path == "/" || path == "/dashboard" || policy.publicPaths.contains(path) { return .open }
        if path == "/health" || path == "/metrics" || path.hasPrefix("/fleet") { return .scope(.fleetRead) }
        if path.hasPrefix("/alerts") {
            return method == "GET" || method == "HEAD" ? .scope(.fleetRead) : .scope(.alertsAck)
        }
        if path.hasPrefix("/ngsi-ld/v1/subscriptions") { return .scope(.subscriptions) }
        if path.hasPrefix("/ngsi-ld/") {
            // Queries by POST read; everything else but GET writes.
            if method == "GET" || method == "HEAD" || path.hasSuffix("/entityOperations/query") { return .scope(.twinRead) }
            return .scope(.twinWrite)
        }
        return .scope(.admin)
    }

    /// Decides one request. `authorization` is the Authorization header as sent.
    /// `bearer` is the token of an `Authorization: Bearer` header; `hasAuthorization` says whether
    /// any Authorization header came (another scheme is refused as no token).
    public func decide(method: String, path: String, query: String?, bearer: String?, hasAuthorization: Bool = false,
                       contentLength: Int?) -> Decision {
        if let query, query.utf8.count > policy.maxQuery {
            return .deny(NGSILDError(.uriTooLong, "the query string is \(query.utf8.count) bytes; at most \(policy.maxQuery) are accepted"), retryAfterSeconds: nil)
        }
        if let contentLength, contentLength > policy.maxBody {
            return .deny(NGSILDError(.payloadTooLarge, "the body is \(contentLength) bytes; at most \(policy.maxBody) are accepted (http.max-body)"),
                         retryAfterSeconds: nil)
        }
        guard case .scope(let scope) = requirement(method: method, path: path), let tokens else { return .allow(tokenID: nil) }
        switch tokens.value.judge(bearer, scope: scope, now: Timestamp.iso8601(milliseconds: clock.nowMilliseconds())) {
        case .unauthenticated(let reason):
            let detail = bearer == nil
                ? (hasAuthorization ? "only bearer tokens are accepted (Authorization: Bearer <token>)"
                                    : "this API needs a bearer token (Authorization: Bearer <token>); an operator makes one with 'gemello token create'")
                : "the bearer token is not valid (\(reason == "unknown token" ? "unknown" : reason)); ask an operator for a current one"
            return .deny(NGSILDError(.unauthorized, detail), retryAfterSeconds: nil)
        case .forbidden(let record):
            return .deny(NGSILDError(.forbidden, "token '\(record.name)' has scopes \(record.scopes.map(\.rawValue).joined(separator: ", ")); \(method) \(path) needs \(scope.rawValue)"),
                         retryAfterSeconds: nil)
        case .allowed(let record):
            if let wait = take(record.id) {
                return .deny(NGSILDError(.tooManyRequests, "token '\(record.name)' is over its rate of \(Int(policy.ratePerSecond)) requests/s (burst \(Int(policy.burst))); retry in \(wait) s"),
                             retryAfterSeconds: wait)
            }
            return .allow(tokenID: record.id)
        }
    }

    /// Takes one request from the token's bucket; the whole seconds to wait when it is empty.
    private func take(_ id: String) -> Int? {
        let now = ContinuousClock.now
        return buckets.withLock { buckets in
            var bucket = buckets[id] ?? Bucket(level: policy.burst, updated: now)
            let elapsed = Double((now - bucket.updated).components.seconds) + Double((now - bucket.updated).components.attoseconds) / 1e18
            bucket.level = min(policy.burst, bucket.level + elapsed * policy.ratePerSecond)
            bucket.updated = now
            defer { buckets[id] = bucket }
            guard bucket.level >= 1 else { return max(1, Int(((1 - bucket.level) / policy.ratePerSecond).rounded(.up))) }
            bucket.level -= 1
            return nil
        }
    }
}
