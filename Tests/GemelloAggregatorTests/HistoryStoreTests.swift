import Foundation
@testable import GemelloAggregator
import GemelloCore
import GemelloSQLite
import GemelloTesting
import Testing

/// The columnar history: fragments per batch, sealing, out-of-order backlogs, lastN and lineage.
@Suite struct HistoryStoreTests {
    static let temperature = TwinStoreTests.temperature
    static let pm25 = TwinStoreTests.pm25

    static func readings(_ series: SeriesInfo, _ times: some Sequence<Int64>) -> [Reading] {
        times.map { Reading(series: series, timestamp: $0, value: Double($0 / 1000 % 97) / 10) }
    }

    static func batch(_ sequence: UInt64, epoch: UInt64 = 1, _ readings: [Reading]) -> Batch {
        var batch = TwinStoreTests.batch(sequence, readings)
        batch.bootEpoch = epoch
        return batch
    }

    /// Live batches, then a backlog from before them (an agent back from an outage sends its
    /// newest readings first): sealed into chunks, read back whole and in observation order, with
    /// every point naming the batch that carried it.
    @Test(arguments: StoreBackendKind.allCases) func backlogAfterLiveDataReadsBackInObservationOrder(backend: StoreBackendKind) throws {
        let store = try backend.store()
        let policy = HistoryStore.Policy(chunkPoints: 100, sealAfter: .seconds(3600))
        for s in 0..<5 {  // live: t = 500 s ... 999 s
            let start = Int64(500 + s * 100) * 1000
            _ = try store.ingest(Self.batch(UInt64(10 + s), Self.readings(Self.temperature, stride(from: start, to: start + 100_000, by: 1000))), receivedAt: 1_000 + Int64(s))
        }
        #expect(try store.history.compact(now: 2_000, policy: policy).chunksWritten == 5)  // 500 points are due
        for s in 0..<5 {  // the backlog: t = 0 ... 499 s, sequences 1...5, arriving last
            let start = Int64(s * 100) * 1000
            _ = try store.ingest(Self.batch(UInt64(1 + s), Self.readings(Self.temperature, stride(from: start, to: start + 100_000, by: 1000))), receivedAt: 3_000 + Int64(s))
        }
        let before = try #require(try store.history.points(agent: "tower-1", series: Self.temperature.name))
        let report = try store.history.compact(now: 4_000, policy: policy)
        #expect(report.fragments == 5 && report.chunksRewritten == 0)  // full chunks are never rewritten
        let after = try #require(try store.history.points(agent: "tower-1", series: Self.temperature.name))
        #expect(after == before)
        #expect(after.timestamps == Array(stride(from: Int64(0), to: 1_000_000, by: 1000)))
        for i in [0, 250, 499, 500, 999] {
            let source = after.source(of: i)
            #expect(source.sequence == UInt64(i < 500 ? 1 + i / 100 : 10 + (i - 500) / 100))
            #expect(source.committedAt == (i < 500 ? 3_000 : 1_000) + Int64(i % 500 / 100))
        }
        let footprint = try store.history.footprint()
        #expect(footprint.fragments == 0 && footprint.points == 1000 && footprint.chunks == 10)
    }

    /// Late readings sealed one small chunk at a time are re-compressed into full chunks in the
    /// background, and only when that makes fewer chunks (no endless rewriting).
    @Test(arguments: StoreBackendKind.allCases) func smallLateChunksAreMergedIntoFullOnes(backend: StoreBackendKind) throws {
        let store = try backend.store()
        let policy = HistoryStore.Policy(chunkPoints: 100, sealAfter: .seconds(1))
        _ = try store.ingest(Self.batch(100, Self.readings(Self.temperature, stride(from: Int64(1_000_000), to: 1_100_000, by: 1000))), receivedAt: 0)
        try store.history.compact(now: 10_000, policy: policy)
        for s in 0..<10 {  // ten late batches of 30 readings, each sealed on its own
            let start = Int64(s) * 30_000
            _ = try store.ingest(Self.batch(UInt64(s + 1), Self.readings(Self.temperature, stride(from: start, to: start + 30_000, by: 1000))), receivedAt: 0)
            try store.history.compact(now: 100_000 + Int64(s) * 10_000, policy: policy)
        }
        let before = try #require(try store.history.points(agent: "tower-1", series: Self.temperature.name))
        #expect(try store.history.footprint().chunks == 11)
        let report = try store.history.mergeSmallChunks(policy: policy)
        #expect(report.chunksRewritten == 10 && report.chunksWritten == 3)
        #expect(try store.history.footprint().chunks == 4)
        #expect(try store.history.points(agent: "tower-1", series: Self.temperature.name) == before)
        #expect(try store.history.mergeSmallChunks(policy: policy).series == 0)  // 100 + 100 + 100 + 0: nothing left to gain
    }

    /// A partial last chunk is merged with the next fragments until it is full; readings of one
    /// instant keep their arrival order.
    @Test(arguments: StoreBackendKind.allCases) func sealingFillsThePartialLastChunk(backend: StoreBackendKind) throws {
        let store = try backend.store()
        let policy = HistoryStore.Policy(chunkPoints: 64, sealAfter: .seconds(1))
        var expected: [(Int64, Double)] = []
        for s in 1...20 {
            let t = Int64(s) * 10_000
            let batch = Self.batch(UInt64(s), [Reading(series: Self.temperature, timestamp: t, value: Double(s)),
                                              Reading(series: Self.temperature, timestamp: t, value: Double(s) + 0.5),
                                              Reading(series: Self.pm25, timestamp: t, value: 3)])
            expected += [(t, Double(s)), (t, Double(s) + 0.5)]
            _ = try store.ingest(batch, receivedAt: Int64(s) * 10_000)
            try store.history.compact(now: Int64(s) * 10_000 + 1_000, policy: policy)
        }
        let history = try store.history(agent: "tower-1", series: Self.temperature.name)
        #expect(history.map(\.timestamp) == expected.map(\.0) && history.map(\.value) == expected.map(\.1))
        let footprint = try store.history.footprint()
        #expect(footprint.chunks == 2 && footprint.fragments == 0)  // one chunk per series, refilled each pass
    }

    /// Ten batches of 1000 temperature readings a second apart (0 s … 9,999 s).
    static func ingestTenBatchesOfOneSecondReadings(_ store: TwinStore) throws {
        for s in 0..<10 {
            let start = Int64(s) * 1_000_000
            _ = try store.ingest(batch(UInt64(s + 1), readings(temperature, stride(from: start, to: start + 1_000_000, by: 1000))), receivedAt: 0)
        }
    }

    @Test(arguments: StoreBackendKind.allCases) func lastNAndRangesReadOnlyWhatTheyNeed(backend: StoreBackendKind) throws {
        let store = try backend.store()
        try Self.ingestTenBatchesOfOneSecondReadings(store)
        try store.history.compact(now: 0, policy: .init(chunkPoints: 1024), force: true)
        let last = try #require(try store.history.lastPoints(agent: "tower-1", series: Self.temperature.name, n: 100))
        #expect(last.timestamps == Array(stride(from: Int64(9_900_000), to: 10_000_000, by: 1000)))
        let before = try #require(try store.history.lastPoints(agent: "tower-1", series: Self.temperature.name, n: 3, before: 5_000_500))
        #expect(before.timestamps == [4_998_000, 4_999_000, 5_000_000])
        let range = try #require(try store.history.points(agent: "tower-1", series: Self.temperature.name, in: 2_500_000...2_502_000))
        #expect(range.timestamps == [2_500_000, 2_501_000, 2_502_000])
        #expect(try store.history.points(agent: "tower-1", series: Self.temperature.name, in: 20_000_000...30_000_000)?.count ?? 0 == 0)
        #expect(try store.history.lastPoints(agent: "tower-1", series: "nope/none", n: 5) == nil)
    }

    /// A bounded read returns the oldest points exactly and stops early: "everything" costs a page.
    @Test(arguments: StoreBackendKind.allCases) func boundedReadsStopAfterTheLimit(backend: StoreBackendKind) throws {
        let store = try backend.store()
        try Self.ingestTenBatchesOfOneSecondReadings(store)
        try store.history.compact(now: 0, policy: .init(chunkPoints: 1000), force: true)
        let all = try #require(try store.history.points(agent: "tower-1", series: Self.temperature.name))
        let page = try #require(try store.history.points(agent: "tower-1", series: Self.temperature.name, limit: 1500))
        #expect(page.count > 1500 && page.count <= 2000)
        #expect(Array(page.timestamps.prefix(1500)) == Array(all.timestamps.prefix(1500)))
        let late = try #require(try store.history.points(agent: "tower-1", series: Self.temperature.name, in: 7_500_000...Int64.max, limit: 10))
        #expect(late.timestamps.prefix(11) == all.timestamps.drop { $0 < 7_500_000 }.prefix(11))
    }

    /// Duplicates never reach the history: a resent batch adds no fragment.
    @Test(arguments: StoreBackendKind.allCases) func aDuplicateAddsNoPoints(backend: StoreBackendKind) throws {
        let store = try backend.store()
        let batch = Self.batch(1, Self.readings(Self.temperature, [1000, 2000]))
        #expect(try store.ingest(batch, receivedAt: 1) == .stored(readings: 2))
        #expect(try store.ingest(batch, receivedAt: 2) == .duplicate)
        #expect(try store.history.footprint().points == 2)
    }

    /// A store written by the previous release (one `history` row per reading, schema and rows as
    /// it wrote them: Tests/Fixtures/stores/row-history.sqlite, see its README) opens migrated:
    /// every reading kept in order, de-duplication records kept, new batches go on top.
    @Test func migratesARowHistoryStore() throws {
        let fixture = Repository.root.appendingPathComponent("Tests/Fixtures/stores/row-history.sqlite").path
        let path = try Repository.temporaryFolder("twin").appendingPathComponent("twin.sqlite").path
        try FileManager.default.copyItem(atPath: fixture, toPath: path)
        var old: [String: [(Int64, Double)]] = [:]
        var total = 0
        do {
            let db = try SQLiteConnection(path: path)
            let rows = try db.statement("SELECT s.agent_id || '|' || s.name, h.ts, h.value FROM history h JOIN series s ON s.id = h.series_id ORDER BY h.series_id, h.ts, h.rowid")
            while try rows.step() { old[rows.text(0), default: []].append((rows.int64(1), rows.double(2))); total += 1 }
        }
        #expect(total > 1000)
        let store = try TwinStore(path: path)
        #expect(store.migratedReadings == total)
        for (key, points) in old {
            let parts = key.split(separator: "|").map(String.init)
            let history = try store.history(agent: parts[0], series: parts[1])
            #expect(history.map(\.timestamp) == points.map(\.0), "\(key)")
            #expect(history.map(\.value) == points.map(\.1), "\(key)")
        }
        #expect(try store.totals().readings == Int64(total))
        #expect(try TwinStore(path: path).migratedReadings == 0)  // once
    }
}
