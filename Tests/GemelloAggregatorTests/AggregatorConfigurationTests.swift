@testable import GemelloAggregator
import GemelloCore
import GemelloTesting
import Testing

@Suite struct AggregatorConfigurationTests {
    /// The sample configuration in the repository is valid and states the defaults.
    @Test func theSampleConfigurationLoads() throws {
        let c = try AggregatorConfiguration.load(path: Repository.root.appendingPathComponent("aggregator-config/aggregator.yaml").path)
        #expect(c.history == HistoryStore.Policy())
        #expect(c.compactEvery == .seconds(5))
        #expect(c.ngsiMaxInstances == 10_000)
    }

    /// `--state-dir` (or GEMELLO_STATE_DIR): the SQLite store and the token file move under their
    /// names; a PostgreSQL store is not a file and stays.
    @Test func stateDirectoryMovesTheStoreAndTheTokenFile() throws {
        var c = try AggregatorConfiguration.load(path: Repository.root.appendingPathComponent("aggregator-config/aggregator.yaml").path)
        #expect(c.storePath == "/var/lib/gemello/twin.sqlite" && c.api.tokensFile == "/var/lib/gemello/api-tokens")
        c.moveState(to: "/tmp/tour/state/")
        #expect(c.storePath == "/tmp/tour/state/twin.sqlite" && c.api.tokensFile == "/tmp/tour/state/api-tokens")
        try c.overrideStore("postgres://gemello@127.0.0.1:5432/twin")
        c.moveState(to: "/elsewhere")
        #expect(c.storeKind == .postgres && c.api.tokensFile == "/elsewhere/api-tokens")
    }

    @Test func historyRetentionPerEntityType() throws {
        let c = try AggregatorConfiguration.decode("""
            history:
              chunk-points: 8192
              seal-after: 2m
              retention:
                TrafficFlowObserved: 400d
                "*": 3650d
              rollup-retention: 36500d
            """, file: "a.yaml")
        #expect(c.history.chunkPoints == 8192 && c.history.sealAfter == .seconds(120))
        #expect(c.history.retention(of: "TrafficFlowObserved") == .seconds(400 * 86_400))
        #expect(c.history.retention(of: "WeatherObserved") == .seconds(3650 * 86_400))
        #expect(c.history.rollupRetention == .seconds(36_500 * 86_400))
        #expect(HistoryStore.Policy().retention(of: "WeatherObserved") == nil)
    }

    @Test(arguments: [
        ("history:\n  chunk-points: 10\n", "history.chunk-points"),
        ("history:\n  retention:\n    WeatherObserved: soon\n", "history.retention.WeatherObserved"),
        ("history:\n  retention:\n    WeatherObserved: 1s\n", "history.retention.WeatherObserved"),
        ("history:\n  seal-afer: 1m\n", "history.seal-afer"),
        ("store:\n  kind: postgres\n", "store.url"),
        ("store:\n  kind: postgres\n  url: mysql://x/y\n", "store.url"),
        ("store:\n  kind: postgres\n  url: postgres://u@h:99999/d\n", "store.url"),
        ("store:\n  kind: postgres\n  url: postgres://u@h\n", "store.url"),
        ("store:\n  url: postgres://u@h/d\n", "store.url"),
        ("store:\n  kind: oracle\n", "store.kind"),
        ("ingest:\n  share-group: twin\n", "ingest.share-group"),
        ("store:\n  kind: postgres\n  url: postgres://u@h/d\ningest:\n  share-group: a/b\n", "ingest.share-group"),
        ("store:\n  kind: postgres\n  url: postgres://u@h/d\n  password-file: /nonexistent/pw\n", "store.password-file"),
    ])
    func badSettingsNameTheKey(text: String, key: String) {
        do {
            _ = try AggregatorConfiguration.decode(text, file: "a.yaml")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.key == key, "\(error)")
            #expect(error.fix != nil)
        }
    }

    @Test func postgresStoreFromURLAndPasswordFile() throws {
        let folder = try Repository.temporaryFolder("config")
        try "s3cret\n".write(to: folder.appendingPathComponent("db-password"), atomically: true, encoding: .utf8)
        let c = try AggregatorConfiguration.decode("""
            store:
              kind: postgres
              url: postgres://twin@db.example:6432/milano
              password-file: db-password
            """, file: folder.appendingPathComponent("a.yaml").path)
        #expect(c.storeKind == .postgres)
        #expect(c.postgres?.host == "db.example" && c.postgres?.port == 6432 && c.postgres?.database == "milano")
        #expect(c.postgres?.user == "twin" && c.postgres?.password == "s3cret")
        #expect(c.postgres?.url == "postgres://twin@db.example:6432/milano")  // never the password
        var overridden = c
        try overridden.overrideStore("/tmp/twin.sqlite")
        #expect(overridden.storeKind == .sqlite && overridden.storePath == "/tmp/twin.sqlite")
        try overridden.overrideStore("postgres://gemello@127.0.0.1/other")
        #expect(overridden.storeKind == .postgres && overridden.postgres?.port == 5432 && overridden.postgres?.database == "other")
        let group = try AggregatorConfiguration.decode("store:\n  kind: postgres\n  url: postgres://u@h/d\ningest:\n  share-group: twin\n", file: "a.yaml")
        #expect(group.shareGroup == "twin")
        var member = group
        #expect(throws: AggregatorError.self) { try member.overrideStore("/tmp/twin.sqlite") }  // a group needs PostgreSQL
    }
}
