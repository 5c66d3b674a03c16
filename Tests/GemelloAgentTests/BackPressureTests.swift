import Foundation
@testable import GemelloAgent
import GemelloCore
import GemelloTesting
import Logging
import Synchronization
import Testing

/// A full buffer pauses the inputs that can wait (a replay, a push input) instead of dropping
/// their readings; inputs that cannot wait meet the overflow policy, which spares the waiting
/// inputs' readings; room made by acknowledged batches resumes them with nothing lost.
@Suite(.serialized) struct BackPressureTests {
    static let logger: Logger = { var l = Logger(label: "backpressure"); l.logLevel = .critical; return l }()

    static func writer(_ buffer: ReadingBuffer) -> BufferWriter {
        BufferWriter(buffer: buffer, counters: AgentCounters(), flushInterval: .milliseconds(20), flushReadings: 2_000, logger: logger)
    }

    /// Acknowledges every batch the buffer has, as the publisher would after the aggregator's acks.
    static func drain(_ buffer: ReadingBuffer) throws -> Int64 {
        var released: Int64 = 0
        while let batch = try buffer.takeBatch(agentID: "a", maxReadings: 5_000, now: 1) {
            released += try buffer.acknowledge([batch.sequence])
        }
        return released
    }

    @Test(.timeLimit(.minutes(1)))
    func aReplayWaitsForRoomAndLosesNothingWhileALiveInputDropsByPolicy() async throws {
        let folder = try Repository.temporaryFolder("backpressure")
        let buffer = try ReadingBuffer(path: folder.appendingPathComponent("buffer.sqlite").path,
                                       limits: .init(maxBytes: 256 << 10))
        let replayOptions = try #require(try ConfigSection.load(path: Repository.root.appendingPathComponent("agent-config/replay-solar-node.yaml").path)
            .sections("inputs").map { section throws(CoreError) in try InputRegistry.decode(section) }.first?.options as? CSVReplayInput.Configuration)
        var options = replayOptions
        options.speed = nil
        let replay = CSVReplayInput(configuration: options)
        let live = SimulatedInput(configuration: .init(sensorID: "live", profile: .power, interval: .milliseconds(5), seed: 1),
                                  clock: SystemWallClock())
        buffer.protect(sensors: [replay.sensor.id])
        let writer = Self.writer(buffer)
        let replayStats = InputStats(type: "csv-replay", sensor: replay.sensor.id)
        let liveStats = InputStats(type: "simulated", sensor: "live")
        let replaySink = InputSink(writer: writer, stats: replayStats, canWait: replay.canWait, clock: SystemWallClock(), logger: Self.logger)
        let liveSink = InputSink(writer: writer, stats: liveStats, canWait: live.canWait, clock: SystemWallClock(), logger: Self.logger)
        #expect(replay.canWait && !live.canWait)

        let delivered = Mutex<Int64>(0)
        let sawPause = Atomic<Bool>(false)
        let replayFinished = Flag()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await writer.run() }
            let liveRun = Task { try await live.run(into: liveSink) }
            let replayed = Task {
                defer { replayFinished.value.store(true, ordering: .relaxed) }
                return try await replay.run(into: replaySink)
            }
            // The "publisher": lets the buffer fill until the writer pauses, then makes room.
            while !replayFinished.value.load(ordering: .relaxed) {
                if writer.isPaused {
                    sawPause.store(true, ordering: .relaxed)
                    try await Task.sleep(for: .milliseconds(100))  // paused for a while: still nothing of the replay dropped
                    let released = try Self.drain(buffer)
                    delivered.withLock { $0 += released }
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            let summary = try await replayed.value
            #expect(summary["readings"] == 34_872)
            liveRun.cancel()
            _ = try await liveRun.value
            // The replay's last readings may still be held: keep making room until all is stored.
            while writer.isPaused || buffer.bufferedReadings > 0 {
                let released = try Self.drain(buffer)
                delivered.withLock { $0 += released }
                try await Task.sleep(for: .milliseconds(30))
            }
            group.cancelAll()
        }
        try writer.flush()
        delivered.withLock { $0 += (try? Self.drain(buffer)) ?? 0 }
        let paused = sawPause.load(ordering: .relaxed)
        #expect(paused, "the 256 KiB quota must have filled")
        #expect(replayStats.readings.load(ordering: .relaxed) == 34_872)
        // Everything produced is accounted for, and only the live input's readings were dropped:
        // what was delivered holds every replay reading.
        let liveProduced = liveStats.readings.load(ordering: .relaxed)
        let total = delivered.withLock { $0 }
        #expect(total + buffer.droppedReadings + buffer.bufferedReadings == 34_872 + liveProduced)
        #expect(total - (liveProduced - buffer.droppedReadings) == 34_872, "every replay reading was stored and acknowledged")
    }

    /// The commit notification: a push input's readings are on disk when `commit` returns; while
    /// the buffer is full `commit` waits (the source is not acknowledged) and `isPaused` says so.
    @Test(.timeLimit(.minutes(1)))
    func commitReturnsOnlyOnceStoredAndWaitsWhileFull() async throws {
        let folder = try Repository.temporaryFolder("commit-notify")
        let path = folder.appendingPathComponent("buffer.sqlite").path
        let buffer = try ReadingBuffer(path: path, limits: .init(maxBytes: 128 << 10))
        buffer.protect(sensors: ["push"])
        let writer = Self.writer(buffer)
        let series = SeriesInfo(name: "push/value", unit: "C62")
        func readings(_ range: Range<Int>) -> [Reading] { range.map { Reading(series: series, timestamp: Int64($0), value: Double($0)) } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await writer.run() }
            try await writer.commit(readings(0..<100))
            #expect(buffer.bufferedReadings == 100, "stored when commit returned")
            // Twenty thousand readings into a quota that holds a few thousand: each commit returns
            // only once its readings are stored, so what returned is always in the buffer or was
            // acknowledged; while the buffer is full a commit does not return at all.
            let committed = Counter()
            let filling = Task {
                for k in 0..<10 {
                    try await writer.commit(readings(100 + k * 2_000..<100 + (k + 1) * 2_000))
                    committed.value.store(100 + (k + 1) * 2_000, ordering: .relaxed)
                }
            }
            var drained: Int64 = 0, pauses = 0
            while committed.value.load(ordering: .relaxed) < 20_100 {
                let returned = committed.value.load(ordering: .relaxed)
                #expect(buffer.bufferedReadings + drained >= Int64(returned), "a commit returned before its readings were stored")
                if writer.isPaused {
                    pauses += 1
                    let whenPaused = committed.value.load(ordering: .relaxed)
                    try await Task.sleep(for: .milliseconds(100))
                    #expect(committed.value.load(ordering: .relaxed) == whenPaused, "no commit returns while the buffer is full")
                    drained += try Self.drain(buffer)
                    // The next flush stores what was held, and the held commit returns.
                    try await waitUntilAsync(.seconds(10)) { committed.value.load(ordering: .relaxed) > whenPaused }
                }
                try await Task.sleep(for: .milliseconds(5))
            }
            try await filling.value
            drained += try Self.drain(buffer)
            #expect(pauses > 0, "the 128 KiB quota must have filled")
            #expect(drained == 20_100)
            group.cancelAll()
        }
        #expect(buffer.droppedReadings == 0)
    }

    /// A hand-over larger than the whole quota could never be stored by waiting (no
    /// acknowledgement makes room in an empty buffer): the writer does not stall, the policy
    /// decides, and the drops are counted.
    @Test(.timeLimit(.minutes(1)))
    func aChunkLargerThanTheQuotaDoesNotStallTheAgent() async throws {
        let folder = try Repository.temporaryFolder("huge-chunk")
        let buffer = try ReadingBuffer(path: folder.appendingPathComponent("buffer.sqlite").path, limits: .init(maxBytes: 64 << 10))
        buffer.protect(sensors: ["replay"])
        let writer = Self.writer(buffer)
        let series = SeriesInfo(name: "replay/value", unit: "C62")
        let readings = (0..<20_000).map { Reading(series: series, timestamp: Int64($0), value: Double($0)) }
        try await writer.accept(readings, checkpoint: InputCheckpoint(key: "replay", position: 20_000), canWait: true)
        try writer.flush()
        #expect(!writer.isPaused)
        #expect(buffer.droppedReadings > 0 && buffer.bufferedReadings + buffer.droppedReadings == 20_000)
        #expect(try buffer.checkpoint(for: "replay") == 20_000)
    }
}

private func waitUntilAsync(_ timeout: Duration, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else { Issue.record("condition not met within \(timeout)"); return }
        try await Task.sleep(for: .milliseconds(20))
    }
}

private final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}

private final class Counter: Sendable {
    let value = Atomic<Int>(100)
}
