import GemelloAggregator
import GemelloStorage
import GemelloStoragePostgres
import GemelloCore
import GemelloTesting
import Testing

/// The PostgreSQL backend when its server restarts under it (an operator's restart, a failover):
/// the connections are cut; a transaction they broke fails whole (nothing of its batch kept, so
/// its batch is not acknowledged and comes again), and the store connects again on its own.
@Suite struct PostgresRestartTests {
    @Test func theStoreOutlivesAServerRestart() throws {
        let server = try PostgresHarness()
        defer { server.stop() }
        let store = try StoreBackendKind.postgres.open(try server.makeDatabase("restart"))
        let one = TwinStoreTests.batch(1, [Reading(series: TwinStoreTests.temperature, timestamp: 1000, value: 20)])
        let two = TwinStoreTests.batch(2, [Reading(series: TwinStoreTests.temperature, timestamp: 2000, value: 21)])
        #expect(try store.ingest(one, receivedAt: 1) == .stored(readings: 1))

        try server.restart()
        var outcome: TwinStore.IngestOutcome?
        var failures = 0
        for _ in 0..<3 where outcome == nil {
            do { outcome = try store.ingest(two, receivedAt: 2) } catch { failures += 1 }
        }
        #expect(outcome == .stored(readings: 1))
        #expect(failures <= 1)
        #expect(try store.ingest(one, receivedAt: 3) == .duplicate)
        #expect(try store.totals().readings == 2)  // reads reconnect too
        #expect(try store.history(agent: "tower-1", series: TwinStoreTests.temperature.name).map(\.value) == [20, 21])
    }

    @Test func anUnreachableServerIsNamedWithTheFix() throws {
        let port = try FreePort.find()
        do {
            _ = try StoreBackendKind.postgres.open("postgres://gemello@127.0.0.1:\(port)/twin")
            Issue.record("opened a store on a closed port")
        } catch {
            let message = "\(error)"
            #expect(message.contains("127.0.0.1:\(port)") && message.contains("Fix:"), "\(message)")
        }
    }
}

/// A statement the server does not finish (a hung server, a lock never released) fails after
/// `statementTimeout` instead of stalling ingest.
@Suite struct PostgresTimeoutTests {
    @Test func aStatementPastTheTimeoutFails() throws {
        var configuration = try PostgresBackend.Configuration(url: try PostgresHarness.shared().makeDatabase("timeout"))
        configuration.statementTimeout = .seconds(1)
        let backend = try PostgresBackend(configuration)
        defer { backend.close() }
        let started = ContinuousClock.now
        #expect(throws: StorageError.self) { try backend.read { db in try db.run("SELECT pg_sleep(5)") } }
        #expect(ContinuousClock.now - started < .seconds(4))
        #expect(try backend.read { db in try db.scalarInt("SELECT 1") } == 1)  // the connection is still good
    }
}
