import GemelloStorage
import GemelloStoragePostgres

extension TwinStore {
    /// Opens the store the configuration names (`store.kind`): the SQLite file at `store.path`,
    /// or the PostgreSQL database at `store.url`.
    public static func open(_ configuration: AggregatorConfiguration) throws(AggregatorError) -> TwinStore {
        switch configuration.storeKind {
        case .sqlite:
            return try TwinStore(path: configuration.storePath)
        case .postgres:
            guard let server = configuration.postgres else {
                throw AggregatorError(.configuration, "store.kind is postgres but store.url is missing. Fix: set store.url")
            }
            let backend: PostgresBackend
            do {
                backend = try PostgresBackend(server)
            } catch {
                throw AggregatorError(.store, "cannot open the twin store at \(server.url): \(error)")
            }
            return try TwinStore(backend: backend)
        }
    }
}
