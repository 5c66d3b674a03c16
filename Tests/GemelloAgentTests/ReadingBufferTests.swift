import Foundation
@testable import GemelloAgent
import GemelloCore
import GemelloTesting
import Testing

@Suite struct ReadingBufferTests {
    static let series = SeriesInfo(name: "s/temperature", unit: "CEL")
    static func readings(_ range: Range<Int>) -> [Reading] {
        range.map { Reading(series: series, timestamp: Int64($0) * 1000, value: Double($0) / 10) }
    }

    @Test func takesBatchesInOrderAndReleasesOnlyOnAck() throws {
        let folder = try Repository.temporaryFolder("buffer")
        let buffer = try ReadingBuffer(path: folder.appendingPathComponent("b.sqlite").path)
        try buffer.append(Self.readings(0..<2500))
        let first = try #require(try buffer.takeBatch(agentID: "a", maxReadings: 1000, now: 1))
        let second = try #require(try buffer.takeBatch(agentID: "a", maxReadings: 1000, now: 2))
        let third = try #require(try buffer.takeBatch(agentID: "a", maxReadings: 1000, now: 3))
        #expect(try buffer.takeBatch(agentID: "a", maxReadings: 1000, now: 4) == nil)
        #expect([first.count, second.count, third.count] as [Int] == [1000, 1000, 500])
        #expect([first.sequence, second.sequence, third.sequence] as [UInt64] == [1, 2, 3])
        #expect(first.readings == Self.readings(0..<1000))
        #expect(buffer.bufferedReadings == 2500)
        #expect(try buffer.acknowledge([2]) == 1000)
        #expect(try buffer.acknowledge([2, 99]) == 0)  // repeated and unknown acks are harmless
        #expect(buffer.bufferedReadings == 1500)
    }

    @Test func survivesReopenWithTheSameBatchIdentities() throws {
        let path = try Repository.temporaryFolder("buffer").appendingPathComponent("b.sqlite").path
        do {
            let buffer = try ReadingBuffer(path: path, epochSeed: 0)
            #expect(buffer.bootEpoch == 1)
            try buffer.append(Self.readings(0..<1500))
            _ = try buffer.takeBatch(agentID: "a", maxReadings: 1000, now: 1)
        }
        let reopened = try ReadingBuffer(path: path, epochSeed: 999)  // the seed only matters for a new buffer
        #expect(reopened.bootEpoch == 2)
        #expect(reopened.bufferedReadings == 1500)
        let pending = try reopened.unacknowledgedBatches(agentID: "a")
        #expect(pending.map(\.sequence) == [1])
        #expect(pending[0].bootEpoch == 1)  // identity of the original send
        #expect(pending[0].readings == Self.readings(0..<1000))
        let next = try #require(try reopened.takeBatch(agentID: "a", maxReadings: 1000, now: 2))
        #expect(next.sequence == 2)
        #expect(next.readings == Self.readings(1000..<1500))
    }

    @Test func keepsWorkingAfterTheBufferEmpties() throws {
        let buffer = try ReadingBuffer(path: try Repository.temporaryFolder("buffer").appendingPathComponent("b.sqlite").path)
        try buffer.append(Self.readings(0..<10))
        let batch = try #require(try buffer.takeBatch(agentID: "a", maxReadings: 100, now: 1))
        try buffer.acknowledge([batch.sequence])
        #expect(buffer.bufferedReadings == 0)
        try buffer.append(Self.readings(10..<20))  // ids must not restart below what was assigned
        let next = try #require(try buffer.takeBatch(agentID: "a", maxReadings: 100, now: 2))
        #expect(next.readings == Self.readings(10..<20))
    }

    @Test func unwritableFolderIsAClearError() {
        let error = #expect(throws: AgentError.self) { try ReadingBuffer(path: "/nonexistent-folder/b.sqlite") }
        #expect(error?.description.contains("buffer.path") == true)
    }

    @Test func inputPositionsCommitWithTheirReadings() throws {
        let folder = try Repository.temporaryFolder("positions")
        let path = folder.appendingPathComponent("buffer.sqlite").path
        do {
            let buffer = try ReadingBuffer(path: path)
            #expect(try buffer.checkpoint(for: "replay a") == nil)
            try buffer.append([Reading(series: SeriesInfo(name: "s/temperature", unit: "CEL"), timestamp: 1, value: 2)],
                              checkpoints: [InputCheckpoint(key: "replay a", position: 120)])
            try buffer.append([], checkpoints: [InputCheckpoint(key: "replay a", position: 180), InputCheckpoint(key: "replay b", position: 7)])
        }
        let reopened = try ReadingBuffer(path: path)
        #expect(try reopened.checkpoint(for: "replay a") == 180)
        #expect(try reopened.checkpoint(for: "replay b") == 7)
        #expect(reopened.bufferedReadings == 1)
    }

    /// A replaced buffer (deleted, reinstalled, moved aside) restarts sequences at 1; its epochs
    /// start from the clock, above the old buffer's, so (epoch, sequence) never repeats.
    @Test func aNewBufferStartsItsEpochsFromTheClock() throws {
        let path = try Repository.temporaryFolder("buffer").appendingPathComponent("b.sqlite").path
        let old: (UInt64, UInt64)
        do {
            let buffer = try ReadingBuffer(path: path, epochSeed: 1_700_000_000)
            try buffer.append(Self.readings(0..<10))
            let batch = try #require(try buffer.takeBatch(agentID: "a", maxReadings: 1000, now: 1))
            old = (batch.bootEpoch, batch.sequence)
        }
        #expect(old == (1_700_000_001, 1))
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        let replacement = try ReadingBuffer(path: path, epochSeed: 1_700_000_600)
        try replacement.append(Self.readings(0..<10))
        let batch = try #require(try replacement.takeBatch(agentID: "a", maxReadings: 1000, now: 2))
        #expect(batch.sequence == 1)
        #expect(batch.bootEpoch > old.0)
    }
}
