import Foundation
@testable import GemelloAgent
import GemelloCore
import GemelloTesting
import Testing

/// After an outage fresh readings go out first and the backlog follows within a rate budget;
/// every reading is still taken exactly once, across reopens and overflow drops.
@Suite struct LiveFirstTests {
    static let series = SeriesInfo(name: "s/temperature", unit: "CEL")
    static let window = Duration.seconds(30)

    static func readings(_ range: Range<Int>) -> [Reading] {
        range.map { Reading(series: series, timestamp: Int64($0) * 1000, value: Double($0) / 10) }
    }

    static func path() throws -> String {
        try Repository.temporaryFolder("live-first").appendingPathComponent("b.sqlite").path
    }

    static func take(_ buffer: ReadingBuffer, now: Int64, backlog: Bool, max: Int = 1000) throws -> (batch: Batch, source: ReadingBuffer.BatchSource)? {
        try buffer.takeBatch(agentID: "a", maxReadings: max, now: now, liveWindow: window, backlogAllowed: backlog)
    }

    @Test func freshReadingsGoFirstAndTheBacklogFollows() throws {
        let buffer = try ReadingBuffer(path: try Self.path())
        try buffer.append(Self.readings(0..<5000), now: 1_000)        // accepted during an outage
        try buffer.append(Self.readings(5000..<5500), now: 100_000)   // accepted just now
        var taken: [Reading] = []

        let live = try #require(try Self.take(buffer, now: 110_000, backlog: false))
        #expect(live.source == .live && live.batch.readings == Self.readings(5000..<5500))
        #expect(buffer.hasBacklog && buffer.backlogReadings == 5000)
        #expect(try Self.take(buffer, now: 110_000, backlog: false) == nil)  // budget empty: the backlog waits
        taken += live.batch.readings

        let oldest = try #require(try Self.take(buffer, now: 110_000, backlog: true))
        #expect(oldest.source == .backlog && oldest.batch.readings == Self.readings(0..<1000))
        taken += oldest.batch.readings

        try buffer.append(Self.readings(5500..<5600), now: 111_000)   // fresh again: overtakes the backlog
        let next = try #require(try Self.take(buffer, now: 112_000, backlog: true))
        #expect(next.source == .live && next.batch.readings == Self.readings(5500..<5600))
        taken += next.batch.readings

        var sequences = [live.batch.sequence, oldest.batch.sequence, next.batch.sequence]
        while let more = try Self.take(buffer, now: 113_000, backlog: true) {
            #expect(more.source == .backlog)
            taken += more.batch.readings
            sequences.append(more.batch.sequence)
        }
        #expect(!buffer.hasBacklog)
        #expect(taken.sorted { $0.timestamp < $1.timestamp } == Self.readings(0..<5600))
        #expect(sequences == Array(1...UInt64(sequences.count)))  // numbered in the order taken

        try buffer.append(Self.readings(5600..<5700), now: 114_000)   // back to acceptance order
        let after = try #require(try Self.take(buffer, now: 115_000, backlog: false))
        #expect(after.source == .live && after.batch.readings == Self.readings(5600..<5700))
    }

    @Test func withoutALiveWindowBatchesFollowAcceptanceOrder() throws {
        let buffer = try ReadingBuffer(path: try Self.path())
        try buffer.append(Self.readings(0..<1500), now: 1_000)
        try buffer.append(Self.readings(1500..<2000), now: 100_000)
        let first = try #require(try buffer.takeBatch(agentID: "a", maxReadings: 1000, now: 110_000))
        #expect(first.readings == Self.readings(0..<1000) && !buffer.hasBacklog)
    }

    /// A reopen in the middle of a drain continues it: nothing taken twice, nothing skipped.
    @Test func cursorsSurviveAReopen() throws {
        let path = try Self.path()
        var taken: [Reading] = []
        do {
            let buffer = try ReadingBuffer(path: path)
            try buffer.append(Self.readings(0..<3000), now: 1_000)
            try buffer.append(Self.readings(3000..<3200), now: 100_000)
            taken += try #require(try Self.take(buffer, now: 110_000, backlog: false)).batch.readings
            taken += try #require(try Self.take(buffer, now: 110_000, backlog: true)).batch.readings
        }
        let reopened = try ReadingBuffer(path: path)
        #expect(reopened.hasBacklog && reopened.backlogReadings == 2000)
        #expect(try reopened.unacknowledgedBatches(agentID: "a").flatMap(\.readings) == taken)
        try reopened.append(Self.readings(3200..<3300), now: 120_000)
        while let more = try Self.take(reopened, now: 121_000, backlog: true) { taken += more.batch.readings }
        #expect(taken.sorted { $0.timestamp < $1.timestamp } == Self.readings(0..<3300))
    }

    /// The age limit drops the backlog it must, never the live batch in flight above it.
    @Test func overflowDropsSpareLiveBatchesInFlight() throws {
        let buffer = try ReadingBuffer(path: try Self.path(), limits: .init(maxAge: .seconds(150)))
        try buffer.append(Self.readings(0..<2000), now: 1_000)
        try buffer.append(Self.readings(2000..<2100), now: 100_000)
        let live = try #require(try Self.take(buffer, now: 110_000, backlog: false))
        #expect(buffer.hasBacklog && buffer.droppedReadings == 0)
        try buffer.append(Self.readings(2100..<2200), now: 100_500)   // live, not yet taken
        try buffer.append(Self.readings(2200..<2300), now: 260_000)   // enforces the age limit: cutoff 110 s
        #expect(buffer.droppedReadings == 2100)                        // the backlog and the untaken 100, not the batch in flight
        #expect(buffer.bufferedReadings == 200)
        #expect(try buffer.unacknowledgedBatches(agentID: "a").first?.readings == live.batch.readings)
        let rest = try #require(try Self.take(buffer, now: 260_001, backlog: false))
        #expect(rest.batch.readings == Self.readings(2200..<2300))
        #expect(try buffer.acknowledge([live.batch.sequence, rest.batch.sequence]) == 200)
    }
}

@Suite struct SendBudgetTests {
    /// 10 kB/s with 1 kB batches offered every 10 ms for 10 s: ~100 go, plus the 1 s bucket.
    @Test func capsTheBacklogRate() {
        let start = ContinuousClock.now
        var budget = SendBudget(bytesPerSecond: 10_000, now: start)
        var sent = 0
        for tick in 0..<1000 {
            let now = start + .milliseconds(10 * tick)
            budget.refill(now: now)
            if budget.allowsBacklog {
                budget.spend(1000, now: now)
                sent += 1
            }
        }
        #expect((108...112).contains(sent))
    }

    /// Live bytes are spent too: while live traffic uses the whole rate, no backlog goes.
    @Test func liveTrafficUsesTheSameBudget() {
        let start = ContinuousClock.now
        var budget = SendBudget(bytesPerSecond: 10_000, now: start)
        budget.spend(10_000, now: start)
        for tick in 1...100 {
            let now = start + .milliseconds(10 * tick)
            budget.spend(100, now: now)  // 10 kB/s of live batches
            #expect(!budget.allowsBacklog)
        }
    }

    @Test func noCapAlwaysAllows() {
        var budget = SendBudget(bytesPerSecond: nil, now: .now)
        budget.spend(1 << 30, now: .now)
        #expect(budget.allowsBacklog)
    }
}
