import Foundation
@testable import GemelloAggregator
import GemelloCore
import GemelloSQLite
import GemelloTesting
import Testing

@Suite struct TwinStoreTests {
    static let temperature = SeriesInfo(name: "weather/temperature", unit: "CEL")
    static let pm25 = SeriesInfo(name: "air/pm25", unit: "GQ")

    static func batch(_ sequence: UInt64, _ readings: [Reading], agent: String = "tower-1") -> Batch {
        var batch = Batch(agentID: agent, bootEpoch: 1, sequence: sequence, createdAt: 0)
        var lookup: [SeriesInfo: UInt32] = [:]
        for reading in readings { batch.append(reading, lookup: &lookup) }
        return batch
    }

    /// Batch identity is (agent, boot epoch, sequence): a replaced agent buffer restarts its
    /// sequences at 1 with a new epoch, and those batches are new, not duplicates.
    @Test(arguments: StoreBackendKind.allCases) func sameSequenceInANewEpochIsANewBatch(backend: StoreBackendKind) throws {
        let store = try backend.store()
        let reading = Reading(series: Self.temperature, timestamp: 1000, value: 20.5)
        var first = Self.batch(1, [reading])
        first.bootEpoch = 1_700_000_001
        var replaced = Self.batch(1, [Reading(series: Self.temperature, timestamp: 2000, value: 21)])
        replaced.bootEpoch = 1_700_000_601
        #expect(try store.ingest(first, receivedAt: 1) == .stored(readings: 1))
        #expect(try store.ingest(replaced, receivedAt: 2) == .stored(readings: 1))
        #expect(try store.ingest(first, receivedAt: 3) == .duplicate)
        #expect(try store.seriesCounts(agent: "tower-1") == ["weather/temperature": 2])
    }

    /// A store from an earlier version, which kept one `batches` row per ingested batch
    /// (agent, sequence, epoch, readings, received) under `primaryKey`.
    static func legacyStore(primaryKey: String, rows: String) throws -> TwinStore {
        let path = try Repository.temporaryFolder("twin").appendingPathComponent("twin.sqlite").path
        do {
            let db = try SQLiteConnection(path: path)
            try db.execute("""
                CREATE TABLE batches (agent_id TEXT NOT NULL, sequence INTEGER NOT NULL, epoch INTEGER NOT NULL,
                    readings INTEGER NOT NULL, received INTEGER NOT NULL, PRIMARY KEY (\(primaryKey))) WITHOUT ROWID;
                INSERT INTO batches VALUES \(rows);
                """)
        }
        return try TwinStore(path: path)
    }

    /// A store created before epochs were part of the identity is migrated on open, records kept.
    @Test func migratesAStoreKeyedByAgentAndSequence() throws {
        let store = try Self.legacyStore(primaryKey: "agent_id, sequence", rows: "('tower-1', 1, 1, 1, 0)")
        var again = Self.batch(1, [Reading(series: Self.temperature, timestamp: 1000, value: 20.5)])
        #expect(try store.ingest(again, receivedAt: 1) == .duplicate)  // the old record survived
        again.bootEpoch = 2
        #expect(try store.ingest(again, receivedAt: 2) == .stored(readings: 1))
    }

    /// Out-of-order arrival (live batches first, then the backlog; resends overtaken by newer
    /// batches) opens ranges above the high-water mark; filling the gaps merges them back into
    /// one row per agent epoch, and every stored sequence stays a duplicate, across a reopen.
    @Test(arguments: StoreBackendKind.allCases) func deliveryRangesMergeAndStayExact(backend: StoreBackendKind) throws {
        let path = try backend.newLocation()
        let reading = Reading(series: Self.temperature, timestamp: 1000, value: 20.5)
        var order = Array(UInt64(1)...200)
        var generator = SeededGenerator(seed: 42)
        order.shuffle(using: &generator)
        do {
            let store = try backend.open(path)
            var maxRanges = 0
            for (n, sequence) in order.enumerated() {
                #expect(try store.ingest(Self.batch(sequence, [reading]), receivedAt: Int64(n)) == .stored(readings: 1))
                #expect(try store.ingest(Self.batch(sequence, [reading]), receivedAt: Int64(n)) == .duplicate)
                maxRanges = max(maxRanges, try store.deliveryRangeCount())
            }
            #expect(maxRanges > 10)  // the shuffle really left gaps
            #expect(try store.deliveryRangeCount() == 1)
            #expect(try store.ingest(Self.batch(500, [reading]), receivedAt: 1) == .stored(readings: 1))
            #expect(try store.deliveryRangeCount() == 2)
        }
        let reopened = try backend.open(path)
        for sequence in [UInt64(1), 77, 200, 500] {
            #expect(try reopened.ingest(Self.batch(sequence, [reading]), receivedAt: 9) == .duplicate)
        }
        for sequence in [UInt64(201), 499, 501] {
            #expect(try reopened.ingest(Self.batch(sequence, [reading]), receivedAt: 9) == .stored(readings: 1))
        }
        #expect(try reopened.deliveryRangeCount() == 2)  // 1…201 and 499…501
        #expect(try reopened.seriesCounts(agent: "tower-1") == ["weather/temperature": 204])
    }

    /// A store that kept one row per batch is folded into ranges on open, every delivery kept.
    @Test func migratesPerBatchRowsIntoRanges() throws {
        let store = try Self.legacyStore(primaryKey: "agent_id, epoch, sequence", rows: """
            ('tower-1', 1, 1, 1, 0), ('tower-1', 2, 1, 1, 0), ('tower-1', 3, 1, 1, 0),
            ('tower-1', 7, 1, 1, 0), ('tower-1', 8, 2, 1, 0), ('tower-2', 1, 1, 1, 0)
            """)
        #expect(try store.deliveryRangeCount() == 4)
        let reading = Reading(series: Self.temperature, timestamp: 1000, value: 20.5)
        for sequence in [UInt64(1), 2, 3, 7] { #expect(try store.ingest(Self.batch(sequence, [reading]), receivedAt: 1) == .duplicate) }
        for sequence in [UInt64(4), 8] { #expect(try store.ingest(Self.batch(sequence, [reading]), receivedAt: 1) == .stored(readings: 1)) }
    }

    @Test(arguments: StoreBackendKind.allCases) func dropsDuplicateBatchesByAgentAndSequence(backend: StoreBackendKind) throws {
        let store = try backend.store()
        let batch = Self.batch(1, [Reading(series: Self.temperature, timestamp: 1000, value: 20.5)])
        #expect(try store.ingest(batch, receivedAt: 1) == .stored(readings: 1))
        #expect(try store.ingest(batch, receivedAt: 2) == .duplicate)
        #expect(try store.ingest(Self.batch(1, batch.readings, agent: "tower-2"), receivedAt: 3) == .stored(readings: 1))
        #expect(try store.seriesCounts(agent: "tower-1") == ["weather/temperature": 1])
        let totals = try store.totals()
        #expect(totals.readings == 2 && totals.duplicates == 1 && totals.batches == 2)
    }

    @Test(arguments: StoreBackendKind.allCases) func survivesReopenAndStillDedupes(backend: StoreBackendKind) throws {
        let path = try backend.newLocation()
        let batch = Self.batch(4, [Reading(series: Self.pm25, timestamp: 1, value: 3)])
        do { #expect(try backend.open(path).ingest(batch, receivedAt: 1) == .stored(readings: 1)) }
        #expect(try backend.open(path).ingest(batch, receivedAt: 2) == .duplicate)
    }

    /// Group commit: batches stored in one transaction, in order (a repeat within the group is a
    /// duplicate); all or nothing, and a rolled-back group leaves no trace (its new series either).
    @Test(arguments: StoreBackendKind.allCases) func groupsCommitTogetherAllOrNothing(backend: StoreBackendKind) throws {
        let store = try backend.store()
        let one = Self.batch(1, [Reading(series: Self.temperature, timestamp: 1000, value: 20)])
        let two = Self.batch(2, [Reading(series: Self.pm25, timestamp: 1000, value: 12)])
        struct Refused: Error {}
        #expect(throws: AggregatorError.self) {
            try store.ingest([one, two], receivedAt: 1) { stored, _ in if stored == [0, 1] { throw Refused() } }
        }
        #expect(try store.totals().readings == 0 && store.history.footprint().points == 0)
        #expect(try store.ingest([one, two, one], receivedAt: 2) == [.stored(readings: 1), .stored(readings: 1), .duplicate])
        #expect(try store.history(agent: "tower-1", series: Self.pm25.name).map(\.value) == [12])  // its series row is real
        #expect(try store.seriesCounts(agent: "tower-1") == [Self.temperature.name: 1, Self.pm25.name: 1])
    }

    @Test(arguments: StoreBackendKind.allCases) func latestValueIsTheNewestObservationWhateverTheArrivalOrder(backend: StoreBackendKind) throws {
        let store = try backend.store()
        _ = try store.ingest(Self.batch(2, [Reading(series: Self.temperature, timestamp: 5000, value: 25)]), receivedAt: 1)
        _ = try store.ingest(Self.batch(1, [Reading(series: Self.temperature, timestamp: 1000, value: 10),
                                            Reading(series: Self.temperature, timestamp: 9000, value: 30),
                                            Reading(series: Self.temperature, timestamp: 9000, value: 31)]), receivedAt: 2)
        let entity = try #require(try store.entities().first)
        #expect(entity.attributes.first?.value == 31)  // same time: the later reading wins
        #expect(entity.attributes.first?.observedAt == 9000)
        #expect(entity.attributes.first?.count == 4)
        #expect(try store.history(agent: "tower-1", series: "weather/temperature").map(\.timestamp) == [1000, 5000, 9000, 9000])
    }

    @Test(arguments: StoreBackendKind.allCases) func entitiesCarryTypeAndLocationFromTheBirth(backend: StoreBackendKind) throws {
        let store = try backend.store()
        let birth = AgentBirth(agentID: "tower-1", bootEpoch: 1, version: "0.1.0",
                               site: Site(id: "duomo", kind: .fiveGTower, latitude: 45.46, longitude: 9.19),
                               sensors: [SensorInfo(id: "weather", entityType: "WeatherObserved", attributes: [.init(name: "temperature", unit: "CEL")])],
                               time: 10)
        try store.recordBirth(birth, now: 10)
        _ = try store.ingest(Self.batch(1, [Reading(series: Self.temperature, timestamp: 1000, value: 10),
                                            Reading(series: Self.pm25, timestamp: 1000, value: 12)]), receivedAt: 11)
        let entities = try store.entities()
        #expect(entities.map(\.id).sorted() == ["urn:ngsi-ld:DeviceMeasurement:tower-1:air", "urn:ngsi-ld:WeatherObserved:tower-1:weather"])
        #expect(try store.entities(type: "WeatherObserved").count == 1)
        let weather = try #require(try store.entity(id: "urn:ngsi-ld:WeatherObserved:tower-1:weather"))
        #expect(weather.latitude == 45.46 && weather.longitude == 9.19)
    }
}
