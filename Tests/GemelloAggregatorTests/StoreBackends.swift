import GemelloAggregator
import GemelloStorage
import GemelloStoragePostgres
import GemelloTesting
import Testing

/// The backends the store's contract suite runs over: every test taking a `StoreBackendKind`
/// argument runs once on SQLite (a temporary file) and once on PostgreSQL (a database of its
/// own on the test process's server, ``PostgresHarness``).
enum StoreBackendKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// Where a new, empty store lives: a file path or a `postgres://` URL.
    func newLocation(_ name: String = "twin") throws -> String {
        switch self {
        case .sqlite: try Repository.temporaryFolder(name).appendingPathComponent("twin.sqlite").path
        case .postgres: try PostgresHarness.shared().makeDatabase(name)
        }
    }

    /// Opens the store at `location` (again: a reopen after a restart).
    func open(_ location: String) throws -> TwinStore {
        switch self {
        case .sqlite: try TwinStore(path: location)
        case .postgres: try TwinStore(backend: PostgresBackend(PostgresBackend.Configuration(url: location)))
        }
    }

    /// A new, empty store.
    func store(_ name: String = "twin") throws -> TwinStore { try open(try newLocation(name)) }
}
