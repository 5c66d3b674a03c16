import Foundation
@testable import GemelloAgent
import GemelloCore
import GemelloSQLite
import GemelloTesting
import Testing

/// The buffer's bounds: a size quota that behaves like a full disk (SQLITE_FULL), an age limit,
/// and the policy past them. Every reading is either kept or counted as dropped.
@Suite struct BufferLimitsTests {
    static let pm25 = SeriesInfo(name: "air/pm25", unit: "GQ")

    static func readings(_ range: Range<Int>, series: SeriesInfo = pm25) -> [Reading] {
        range.map { Reading(series: series, timestamp: Int64($0) * 1000, value: Double($0 % 997) / 10) }
    }

    static func path() throws -> String {
        try Repository.temporaryFolder("limits").appendingPathComponent("buffer.sqlite").path
    }

    static func fileBytes(_ path: String) throws -> Int64 {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
    }

    @Test func dropOldestKeepsTheFileWithinItsQuotaAndCountsEveryDrop() throws {
        let path = try Self.path()
        let buffer = try ReadingBuffer(path: path, limits: .init(maxBytes: 1 << 20))
        var dropped: Int64 = 0
        for start in stride(from: 0, to: 200_000, by: 5_000) {
            dropped += try buffer.append(Self.readings(start..<start + 5_000), now: 1)
        }
        #expect(dropped > 0)
        #expect(buffer.bufferedReadings + dropped == 200_000)
        #expect(buffer.droppedReadings == dropped)
        #expect(try Self.fileBytes(path) <= 1 << 20)
        // The newest readings are the ones kept, in order, up to the last one accepted.
        let batch = try #require(try buffer.takeBatch(agentID: "a", maxReadings: 1_000_000, now: 2))
        #expect(batch.count == Int(buffer.bufferedReadings))
        #expect(batch.timestamps.last == Int64(199_999_000))
        #expect(batch.timestamps == batch.timestamps.sorted())
        #expect(batch.timestamps.first == Int64(200_000 - batch.count) * 1000)
    }

    /// One commit bigger than the whole quota: drop-oldest keeps its newest readings that fit.
    @Test func aCommitLargerThanTheQuotaKeepsItsNewestPart() throws {
        let buffer = try ReadingBuffer(path: try Self.path(), limits: .init(maxBytes: 64 << 10))
        let dropped = try buffer.append(Self.readings(0..<20_000), now: 1)
        #expect(dropped > 0 && buffer.bufferedReadings > 0 && buffer.bufferedReadings + dropped == 20_000)
        #expect(buffer.droppedReadings == dropped)
        let batch = try #require(try buffer.takeBatch(agentID: "a", maxReadings: 1_000_000, now: 2))
        #expect(batch.timestamps.last == Int64(19_999_000))
        #expect(batch.timestamps.first == Int64(20_000 - batch.count) * 1000)
    }

    @Test func dropNewestRefusesIncomingReadingsAndKeepsTheOldest() throws {
        let buffer = try ReadingBuffer(path: try Self.path(), limits: .init(maxBytes: 1 << 20, whenFull: .dropNewest))
        var dropped: Int64 = 0
        for start in stride(from: 0, to: 100_000, by: 5_000) {
            dropped += try buffer.append(Self.readings(start..<start + 5_000), now: 1)
        }
        #expect(dropped > 0 && buffer.bufferedReadings + dropped == 100_000)
        let batch = try #require(try buffer.takeBatch(agentID: "a", maxReadings: 1_000_000, now: 2))
        #expect(batch.timestamps.first == 0)
    }

    @Test func readingsInFlightAreNeverDropped() throws {
        let buffer = try ReadingBuffer(path: try Self.path(), limits: .init(maxBytes: 1 << 20))
        try buffer.append(Self.readings(0..<5_000), now: 1)
        let inFlight = try #require(try buffer.takeBatch(agentID: "a", maxReadings: 5_000, now: 1))
        for start in stride(from: 5_000, to: 150_000, by: 5_000) { try buffer.append(Self.readings(start..<start + 5_000), now: 1) }
        #expect(buffer.droppedReadings > 0)
        #expect(try buffer.unacknowledgedBatches(agentID: "a").first?.readings == inFlight.readings)
        #expect(try buffer.acknowledge([inFlight.sequence]) == 5_000)
    }

    /// A series first seen in a commit that hit the quota is inserted again after the drop: its
    /// dictionary entry must not outlive the rolled-back transaction (its readings would be lost).
    @Test func aNewSeriesInAFullBufferSurvivesTheRetryAndAReopen() throws {
        let path = try Self.path()
        let temperature = SeriesInfo(name: "weather/temperature", unit: "CEL")
        do {
            let buffer = try ReadingBuffer(path: path, limits: .init(maxBytes: 1 << 20))
            for start in stride(from: 0, to: 60_000, by: 5_000) { try buffer.append(Self.readings(start..<start + 5_000), now: 1) }
            try buffer.append(Self.readings(0..<5_000, series: temperature), now: 1)
        }
        let reopened = try ReadingBuffer(path: path, limits: .init(maxBytes: 1 << 20))
        let batch = try #require(try reopened.takeBatch(agentID: "a", maxReadings: 1_000_000, now: 2))
        #expect(batch.count == Int(reopened.bufferedReadings))
        #expect(batch.readings.filter { $0.series == temperature }.count == 5_000)
    }

    @Test func readingsOlderThanMaxAgeAreDroppedAndTheCountSurvivesARestart() throws {
        let path = try Self.path()
        let day: Int64 = 86_400_000
        do {
            let buffer = try ReadingBuffer(path: path, limits: .init(maxAge: .seconds(86_400)))
            try buffer.append(Self.readings(0..<100), now: 0)
            try buffer.append(Self.readings(100..<200), now: day / 2)
            #expect(try buffer.append(Self.readings(200..<300), now: day + 1000) == 100)  // the first commit aged out
            #expect(buffer.bufferedReadings == 200)
        }
        let reopened = try ReadingBuffer(path: path, limits: .init(maxAge: .seconds(86_400)))
        #expect(reopened.droppedReadings == 100)
        let batch = try #require(try reopened.takeBatch(agentID: "a", maxReadings: 1000, now: 2 * day))
        #expect(batch.timestamps.first == Int64(100_000))
    }

    @Test func aFileThatIsNotADatabaseIsMovedAsideNotDeleted() throws {
        let path = try Self.path()
        let garbage = Data("this is not an SQLite database, but someone's data".utf8)
        try garbage.write(to: URL(fileURLWithPath: path))
        let buffer = try ReadingBuffer(path: path)
        let aside = try #require(buffer.movedAside)
        #expect(try Data(contentsOf: URL(fileURLWithPath: aside)) == garbage)
        try buffer.append(Self.readings(0..<10))
        #expect(buffer.bufferedReadings == 10)
    }

    @Test func aDamagedDatabaseIsMovedAsideAndAFreshOneTakesOver() throws {
        let path = try Self.path()
        do {
            let buffer = try ReadingBuffer(path: path, epochSeed: 100)
            try buffer.append(Self.readings(0..<50_000))
        }
        // Checkpoint the WAL into the file, then scribble over pages in its middle.
        do {
            let db = try SQLiteConnection(path: path)
            try db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: 40_960)
        handle.write(Data(repeating: 0xA5, count: 16_384))
        try handle.close()
        let buffer = try ReadingBuffer(path: path, epochSeed: 200)
        #expect(buffer.movedAside != nil)
        #expect(buffer.bufferedReadings == 0)
        #expect(buffer.bootEpoch == 201)  // a fresh buffer: epochs from the clock, above the old one's
        #expect(FileManager.default.fileExists(atPath: buffer.movedAside!))
    }
}
