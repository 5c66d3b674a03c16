import Foundation
import GemelloAggregator
import GemelloStorage
import GemelloStoragePostgres
import GemelloTesting
import Synchronization

/// Which backend the integration suites' stores use: SQLite unless `GEMELLO_TEST_STORE=postgres`
/// (ops/test runs the NGSI-LD suites once more that way), or a test's own choice.
enum TestStore {
    static var defaultKind: StoreDialect {
        ProcessInfo.processInfo.environment["GEMELLO_TEST_STORE"].flatMap(StoreDialect.init(rawValue:)) ?? .sqlite
    }

    /// storePath → the PostgreSQL database standing in for it, so a test that reopens "the same
    /// file" reopens the same database.
    private static let databases = Mutex<[String: String]>([:])

    /// Opens the store `configuration` names, on `kind`: its `storePath` file (SQLite) or the
    /// database standing for that path (PostgreSQL, made on first use); `configuration` is
    /// pointed at it, as an operator's config would be.
    static func open(_ configuration: inout AggregatorConfiguration, kind: StoreDialect = defaultKind) throws -> TwinStore {
        if kind == .postgres {
            let path = configuration.storePath
            let url = try databases.withLock { known in
                if let url = known[path] { return url }
                let url = try PostgresHarness.shared().makeDatabase("it")
                known[path] = url
                return url
            }
            configuration.storeKind = .postgres
            configuration.postgres = try PostgresBackend.Configuration(url: url)
        }
        return try TwinStore.open(configuration)
    }

    /// The store at `path` (a file, or the database standing for it), for tests that open a
    /// store without an aggregator configuration; opening the same path again reopens it.
    static func open(path: String, kind: StoreDialect = defaultKind) throws -> TwinStore {
        var configuration = AggregatorConfiguration(storePath: path)
        return try open(&configuration, kind: kind)
    }
}
