import Foundation
import GemelloBrokerAccess
import GemelloCore
import GemelloStorage
import GemelloStoragePostgres

/// The aggregator's settings, validated once at start-up.
///
/// Keys (defaults in brackets):
/// - `broker`: `mqtts://host:port`, or `mqtt://host:port` to a broker on this machine
///   [`mqtt://127.0.0.1:1883`]; `broker-tls` (`ca-file`, `cert-file`, `key-file`), `broker-username`,
///   `broker-password-file`, `broker-insecure` [false] (``BrokerAccess``)
/// - `security`: `enrolment` [none: every agent's batches are taken; a path: the enrolment
///   registry of `gemello agent enroll`, and batches of agents not in it, revoked, unsigned or
///   signed with another key are refused]
/// - `client-id` [`gemello-aggregator`]: with a persistent session, the broker queues batches
///   for this id while the aggregator restarts
/// - `store`: `kind` [`sqlite`: the embedded store, one file; `postgres`: a PostgreSQL server, for
///   large twins and several aggregators], `path` [`/var/lib/gemello/twin.sqlite`, sqlite only],
///   `url` [postgres only, required: `postgres://user@host:port/database`], `password-file`
///   [postgres only: a file holding the password, kept out of the config]
/// - `http`: `host` [`127.0.0.1`], `port` [8080]; `tokens-file` [none: the API is open, allowed only on a
///   loopback host or with `insecure: true`; a path: bearer tokens with scopes from `gemello token create`],
///   `public` [`[/health]`: paths served without a token], `rate-limit` [50 requests/s per token],
///   `burst` [200], `max-body` [16MiB], `max-query` [8KiB], `request-timeout` [30s: a request must arrive
///   whole within it, against slow clients], `tls-cert-file` and `tls-key-file` [none: plain HTTP; both:
///   HTTPS with HTTP/1.1 and HTTP/2], `insecure` [false]
/// - `fleet`: `stale-intervals` [3: an agent that announced its health interval is `stale` after
///   this many intervals of silence], `stale-after` [30s, for agents that did not], `offline-after`
///   [120s of silence, when its Last Will was lost], `health-history` [6h of health reports kept],
///   `transition-history` [30d of status transitions kept]
/// - `metrics`: `agent-labels` [50: per-agent series on `/metrics` for the largest backlogs only]
/// - `contexts`: `folder` [none: JSON-LD contexts preloaded for offline sites, listed in its
///   `index.txt` as `<URL> <file>` lines], `fetch` [true: fetch other contexts over HTTP(S)],
///   `cache-size` [128 documents], `cache-ttl` [1h], `fetch-timeout` [5s]
/// - `ngsi-ld`: `default-limit` [20], `max-limit` [1000], `max-batch` [10000 entities],
///   `max-instances` [10000 instances per attribute in a temporal reply; longer ones are paged]
/// - `history`: `chunk-points` [4096 readings per sealed chunk], `seal-after` [10m: a series'
///   newest readings are sealed into a chunk after this long even if it is not full],
///   `compact-every` [5s between compaction passes], `retention` [none: raw readings kept forever;
///   a mapping of entity type → duration, `"*"` for every other type], `rollup-retention` [none:
///   the hourly rollups (count, sum, sum of squares, min, max) are kept forever]
/// - `ingest`: `share-group` [none: this aggregator takes every batch; a name: several
///   aggregators with this group name share the agents' batches through an MQTT shared
///   subscription, on one PostgreSQL store (docs/scale-out.md)]
/// - `alerts`: `rules` [none: the rules file, reloaded on SIGHUP], `keep-cleared` [30d], `cap`
///   (sender, sender-name, status, scope, restriction), `sinks` (webhook, mqtt, ngsi-ld): see
///   ``AlertsConfiguration`` and docs/alerts.md
/// - `subscriptions`: `outbox-limit` [1000000 queued notifications; past it the oldest are
///   dropped, counted in `/metrics`], `mqtt-ca-file` [none: `mqtts://` endpoints' brokers are checked
///   against the system's CAs]
public struct AggregatorConfiguration: Sendable {
    public var broker: BrokerAccess
    /// `security.enrolment`: the registry of enrolled agents and their batch keys (nil: open).
    public var enrolmentFile: String?
    public var clientID: String
    public var storePath: String
    /// Which backend keeps the twin (`store.kind`).
    public var storeKind: StoreDialect = .sqlite
    /// The PostgreSQL server (`store.url`, `store.password-file`), when `storeKind` is `.postgres`.
    public var postgres: PostgresBackend.Configuration?
    public var httpHost: String
    public var httpPort: Int
    /// Tokens, public paths, rate limit and size caps of the HTTP API (`http.*`).
    public var api = APIAccess.Policy()
    /// `http.tls-cert-file` and `http.tls-key-file`: HTTPS (HTTP/1.1 and HTTP/2 by ALPN).
    public var httpTLS: (certFile: String, keyFile: String)?
    /// `http.request-timeout`: a request's head and body must arrive within this (slow clients are cut).
    public var httpRequestTimeout: Duration = .seconds(30)
    /// `http.insecure`: an open or plain-HTTP API on a non-loopback address, accepted explicitly.
    public var httpInsecure = false
    public var fleet: FleetStatusPolicy
    public var healthHistory: Duration = .seconds(6 * 3600)
    public var transitionHistory: Duration = .seconds(30 * 86_400)
    public var metricsAgentLabels = 50
    /// JSON-LD contexts: preload folder, remote fetching and its cache.
    public var contextsFolder: String?
    public var contextsFetch = true
    public var contextsCacheSize = 128
    public var contextsCacheTTL: Duration = .seconds(3600)
    public var contextsFetchTimeout: Duration = .seconds(5)
    public var ngsiDefaultLimit = 20
    public var ngsiMaxLimit = 1000
    public var ngsiMaxBatch = 10_000
    public var ngsiMaxInstances = 10_000
    public var outboxLimit = 1_000_000
    /// `subscriptions.mqtt-ca-file`: the CA of `mqtts://` notification endpoints' brokers (nil: the system's CAs).
    public var subscriptionsMQTTCAFile: String?
    /// `ingest.share-group`: the MQTT share group of several aggregators on one store (nil: alone).
    public var shareGroup: String?
    /// How the history is sealed into compressed chunks.
    public var history = HistoryStore.Policy()
    public var compactEvery: Duration = .seconds(5)
    /// Rules, CAP sender and sinks (`alerts:`, docs/alerts.md).
    public var alerts = AlertsConfiguration()

    public init(broker: String = "mqtt://127.0.0.1:1883", clientID: String = "gemello-aggregator",
                storePath: String = "/var/lib/gemello/twin.sqlite", httpHost: String = "127.0.0.1", httpPort: Int = 8080,
                fleet: FleetStatusPolicy = FleetStatusPolicy()) {
        self.broker = BrokerAccess(url: broker)
        self.clientID = clientID
        self.storePath = storePath
        self.httpHost = httpHost
        self.httpPort = httpPort
        self.fleet = fleet
    }

    public static func load(path: String) throws(CoreError) -> AggregatorConfiguration {
        try decode(try ConfigSection.load(path: path))
    }

    public static func decode(_ text: String, file: String) throws(CoreError) -> AggregatorConfiguration {
        try decode(try ConfigSection.parse(text, file: file))
    }

    static func decode(_ root: ConfigSection) throws(CoreError) -> AggregatorConfiguration {
        var c = AggregatorConfiguration()
        c.broker = try BrokerAccess.decode(root, defaultURL: c.broker.url)
        if let security = try root.section("security") {
            c.enrolmentFile = try security.optionalString("enrolment").map { _ throws(CoreError) in try security.path("enrolment") }
            try security.rejectUnknownKeys()
        }
        c.clientID = try root.string("client-id", default: c.clientID)
        let store = try root.sectionOrEmpty("store")
        c.storeKind = try store.choice("kind", default: StoreDialect.sqlite)
        c.storePath = try store.path("path", default: c.storePath)
        if c.storeKind == .postgres {
            let url = try store.string("url")
            do {
                c.postgres = try PostgresBackend.Configuration(url: url)
            } catch {
                throw store.error("url", error.message, value: url, fix: "write postgres://user@host:port/database")
            }
            if store.has("password-file") {
                let file = try store.path("password-file")
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw store.error("password-file", "cannot be read", value: file, fix: "make it readable by the aggregator's user")
                }
                c.postgres?.password = text.split(whereSeparator: \.isNewline).first.map(String.init)
            }
        } else {
            for key in ["url", "password-file"] where store.has(key) {
                throw store.error(key, "is for store.kind: postgres", fix: "remove it, or set store.kind: postgres")
            }
        }
        try store.rejectUnknownKeys()
        let http = try root.sectionOrEmpty("http")
        c.httpHost = try http.string("host", default: c.httpHost)
        c.httpPort = try http.int("port", default: c.httpPort, range: 0...65535)
        c.api.tokensFile = try http.optionalString("tokens-file").map { _ throws(CoreError) in try http.path("tokens-file") }
        if let paths = try http.optionalStringList("public") {
            for path in paths where !["/health", "/metrics"].contains(path) {
                throw http.error("public", "only /health and /metrics may be made public", value: path,
                                 fix: "list /health and/or /metrics; everything else needs a token")
            }
            c.api.publicPaths = paths
        }
        c.api.ratePerSecond = try http.double("rate-limit", default: c.api.ratePerSecond, range: 0.1...1_000_000)
        c.api.burst = try http.double("burst", default: c.api.burst, range: 1...10_000_000)
        c.api.maxBody = Int(try http.byteSize("max-body", default: Int64(c.api.maxBody), range: 1024...(1 << 30)))
        c.api.maxQuery = Int(try http.byteSize("max-query", default: Int64(c.api.maxQuery), range: 256...(1 << 20)))
        c.httpRequestTimeout = try http.duration("request-timeout", default: c.httpRequestTimeout, range: .seconds(1)...(.seconds(3600)))
        let cert = try http.optionalString("tls-cert-file").map { _ throws(CoreError) in try http.path("tls-cert-file") }
        let key = try http.optionalString("tls-key-file").map { _ throws(CoreError) in try http.path("tls-key-file") }
        switch (cert, key) {
        case (let cert?, let key?): c.httpTLS = (cert, key)
        case (nil, nil): break
        default:
            throw http.error(cert == nil ? "tls-cert-file" : "tls-key-file", "HTTPS needs both tls-cert-file and tls-key-file",
                             fix: "set both, or neither for plain HTTP")
        }
        let insecure = try http.bool("insecure", default: false)
        let loopback = c.httpHost == "localhost" || c.httpHost == "::1" || c.httpHost.hasPrefix("127.")
        if !loopback && !insecure {
            if c.api.tokensFile == nil {
                throw http.error("host", "the API would be open to the network without tokens", value: c.httpHost,
                                 fix: "set http.tokens-file (then: gemello token create), or 'insecure: true' to accept the risk")
            }
            if c.httpTLS == nil {
                throw http.error("host", "bearer tokens would cross the network in clear without TLS", value: c.httpHost,
                                 fix: "set http.tls-cert-file and http.tls-key-file, or 'insecure: true' behind a TLS proxy")
            }
        }
        c.httpInsecure = insecure
        try http.rejectUnknownKeys()
        let fleet = try root.sectionOrEmpty("fleet")
        c.fleet.staleAfter = try fleet.duration("stale-after", default: c.fleet.staleAfter, range: .seconds(1)...(.seconds(86_400)))
        c.fleet.staleIntervals = try fleet.int("stale-intervals", default: c.fleet.staleIntervals, range: 2...100)
        c.fleet.offlineAfter = try fleet.duration("offline-after", default: c.fleet.offlineAfter, range: .seconds(1)...(.seconds(86_400)))
        guard c.fleet.offlineAfter >= c.fleet.staleAfter else {
            throw fleet.error("offline-after", "must not be shorter than stale-after", fix: "raise offline-after or lower stale-after")
        }
        c.healthHistory = try fleet.duration("health-history", default: c.healthHistory, range: .seconds(60)...(.seconds(90 * 86_400)))
        c.transitionHistory = try fleet.duration("transition-history", default: c.transitionHistory,
                                                 range: .seconds(3600)...(.seconds(3650 * 86_400)))
        try fleet.rejectUnknownKeys()
        let metrics = try root.sectionOrEmpty("metrics")
        c.metricsAgentLabels = try metrics.int("agent-labels", default: c.metricsAgentLabels, range: 0...10_000)
        try metrics.rejectUnknownKeys()
        let contexts = try root.sectionOrEmpty("contexts")
        if contexts.has("folder") { c.contextsFolder = try contexts.path("folder") }
        c.contextsFetch = try contexts.bool("fetch", default: c.contextsFetch)
        c.contextsCacheSize = try contexts.int("cache-size", default: c.contextsCacheSize, range: 1...100_000)
        c.contextsCacheTTL = try contexts.duration("cache-ttl", default: c.contextsCacheTTL, range: .seconds(1)...(.seconds(365 * 86_400)))
        c.contextsFetchTimeout = try contexts.duration("fetch-timeout", default: c.contextsFetchTimeout, range: .milliseconds(100)...(.seconds(120)))
        try contexts.rejectUnknownKeys()
        let ngsi = try root.sectionOrEmpty("ngsi-ld")
        c.ngsiDefaultLimit = try ngsi.int("default-limit", default: c.ngsiDefaultLimit, range: 1...100_000)
        c.ngsiMaxLimit = try ngsi.int("max-limit", default: c.ngsiMaxLimit, range: 1...100_000)
        guard c.ngsiDefaultLimit <= c.ngsiMaxLimit else {
            throw ngsi.error("default-limit", "must not be above max-limit", value: String(c.ngsiDefaultLimit), fix: "lower default-limit or raise max-limit")
        }
        c.ngsiMaxBatch = try ngsi.int("max-batch", default: c.ngsiMaxBatch, range: 1...1_000_000)
        c.ngsiMaxInstances = try ngsi.int("max-instances", default: c.ngsiMaxInstances, range: 10...1_000_000)
        try ngsi.rejectUnknownKeys()
        let ingest = try root.sectionOrEmpty("ingest")
        if ingest.has("share-group") {
            let group = try ingest.string("share-group")
            guard !group.isEmpty, group.utf8.count <= 64, !group.contains(where: { "/+#$ ".contains($0) }) else {
                throw ingest.error("share-group", "not a share group name", value: group,
                                   fix: "use letters, digits, '-' or '_' (it becomes an MQTT topic level)")
            }
            guard c.storeKind == .postgres else {
                throw ingest.error("share-group", "several aggregators need one shared store", value: group,
                                   fix: "set store.kind: postgres and store.url to the group's database (docs/scale-out.md)")
            }
            c.shareGroup = group
        }
        try ingest.rejectUnknownKeys()
        let subscriptions = try root.sectionOrEmpty("subscriptions")
        c.outboxLimit = try subscriptions.int("outbox-limit", default: c.outboxLimit, range: 100...100_000_000)
        c.subscriptionsMQTTCAFile = try subscriptions.optionalString("mqtt-ca-file").map { _ throws(CoreError) in try subscriptions.path("mqtt-ca-file") }
        try subscriptions.rejectUnknownKeys()
        let history = try root.sectionOrEmpty("history")
        c.history.chunkPoints = try history.int("chunk-points", default: c.history.chunkPoints, range: 64...65_536)
        c.history.sealAfter = try history.duration("seal-after", default: c.history.sealAfter, range: .seconds(1)...(.seconds(86_400)))
        c.compactEvery = try history.duration("compact-every", default: c.compactEvery, range: .milliseconds(100)...(.seconds(3600)))
        if let retention = try history.section("retention") {
            for type in retention.keys {
                c.history.retention[type] = try retention.duration(type, default: .seconds(0), range: .seconds(3600)...(.seconds(100 * 366 * 86_400)))
            }
            try retention.rejectUnknownKeys()
        }
        if history.has("rollup-retention") {
            c.history.rollupRetention = try history.duration("rollup-retention", default: .seconds(0), range: .seconds(86_400)...(.seconds(100 * 366 * 86_400)))
        }
        try history.rejectUnknownKeys()
        if let alerts = try root.section("alerts") { c.alerts = try AlertsConfiguration.decode(alerts) }
        try root.rejectUnknownKeys()
        return c
    }

    /// `--store`: a file path (the embedded store) or a `postgres://` URL (that server).
    /// `--state-dir DIR`: the files this aggregator writes (the SQLite twin store, the API token
    /// file) kept in `DIR` under their configured names, instead of where the configuration says
    /// (`/var/lib/gemello` as shipped): a run from the build tree, as the README's tour does.
    public mutating func moveState(to folder: String) {
        let base = folder.hasSuffix("/") ? String(folder.dropLast()) : folder
        func moved(_ path: String) -> String { base + "/" + (path.split(separator: "/").last.map(String.init) ?? path) }
        if storeKind == .sqlite { storePath = moved(storePath) }
        api.tokensFile = api.tokensFile.map(moved)
    }

    public mutating func overrideStore(_ value: String) throws(AggregatorError) {
        guard value.hasPrefix("postgres://") || value.hasPrefix("postgresql://") else {
            if let shareGroup {
                throw AggregatorError(.configuration, "--store \(value): the share group \(shareGroup) needs one PostgreSQL store. "
                                      + "Fix: pass --store postgres://user@host:port/database")
            }
            storeKind = .sqlite
            storePath = value
            return
        }
        do {
            let password = postgres?.password
            postgres = try PostgresBackend.Configuration(url: value)
            if postgres?.password == nil { postgres?.password = password }
            storeKind = .postgres
        } catch {
            throw AggregatorError(.configuration, "--store \(value): \(error.message)")
        }
    }

}

