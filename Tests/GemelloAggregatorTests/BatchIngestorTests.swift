@testable import GemelloAggregator
import GemelloCore
import GemelloMosquitto
import Logging
import Testing

/// What the ingest does with a batch its store will not take: not acknowledged (the agent keeps
/// it and resends), counted in `storeFailures` (`gemello_ingest_store_failures_total`) so a batch
/// refused at every resend shows, and stored once the store takes it again.
@Suite struct BatchIngestorTests {
    @Test func aBatchTheStoreRefusesIsCountedAndTakenWhenTheStoreIsBack() throws {
        let store = try StoreBackendKind.sqlite.store("ingest-refused")
        defer { store.close() }
        let counters = IngestCounters()
        let ingestor = BatchIngestor(store: store, counters: counters, metrics: nil, projection: nil, clock: SystemWallClock(),
                                     logger: Logger(label: "test"))
        // No broker: the acknowledgement cannot go out (logged), which this test does not need.
        let client = try MQTTClient(options: .init(clientID: "ingest-test"))
        let batch = AlertStoreTests.batch(1, [(60_000, 1), (120_000, 2), (180_000, 3)])
        let payload = try WireFormat.encode(batch)
        try store.writing { db in
            _ = try db.run("CREATE TRIGGER refuse_for_test BEFORE INSERT ON delivered BEGIN SELECT RAISE(ABORT, 'refused for the test'); END")
        }
        for _ in 0..<2 { ingestor.ingest([("gauge-agent", payload)], client: client) }
        #expect(counters.storeFailures.load(ordering: .relaxed) == 2)
        #expect(counters.batches.load(ordering: .relaxed) == 0 && counters.rejected.load(ordering: .relaxed) == 0)

        try store.writing { db in _ = try db.run("DROP TRIGGER refuse_for_test") }
        ingestor.ingest([("gauge-agent", payload)], client: client)
        #expect(counters.batches.load(ordering: .relaxed) == 1 && counters.readings.load(ordering: .relaxed) == 3)
        #expect(counters.storeFailures.load(ordering: .relaxed) == 2)
    }
}
