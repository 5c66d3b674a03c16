import GemelloCore
import Logging
import ServiceLifecycle
import Synchronization

/// One input's self-metrics, reported in every health message.
public final class InputStats: Sendable {
    public let type: String
    public let sensor: String
    /// Readings the input handed to the buffer writer.
    public let readings = Atomic<Int64>(0)
    /// Failed reads of the source (a poll, a connection), and the last failure's text.
    public let errors = Atomic<Int64>(0)
    /// Unix ms of the last successful read (0: none yet).
    public let lastSuccess = Atomic<Int64>(0)
    let lastError = Mutex<String?>(nil)

    public init(type: String, sensor: String) {
        self.type = type
        self.sensor = sensor
    }

    /// As sent in health (``GemelloCore/InputHealth``).
    public func health(paused: Bool, canWait: Bool) -> InputHealth {
        InputHealth(sensor: sensor, type: type, readings: readings.load(ordering: .relaxed), errors: errors.load(ordering: .relaxed),
                    lastSuccess: lastSuccess.load(ordering: .relaxed).nonZero, lastError: lastError.withLock { $0 },
                    paused: paused && canWait ? true : nil)
    }
}

extension Int64 {
    fileprivate var nonZero: Int64? { self == 0 ? nil : self }
}

/// What one input sees of the buffer writer: its readings counted, its poll outcomes recorded and
/// logged (a failure when it starts or changes, and the recovery), back-pressure by its kind.
struct InputSink: ReadingSink {
    let writer: BufferWriter
    let stats: InputStats
    let canWait: Bool
    let clock: any WallClock
    let logger: Logger

    func accept(_ readings: [Reading], checkpoint: InputCheckpoint?) async throws {
        try await writer.accept(readings, checkpoint: checkpoint, canWait: canWait)
        counted(readings.count)
    }

    func commit(_ readings: [Reading]) async throws {
        try await writer.commit(readings)
        counted(readings.count)
    }

    var isPaused: Bool { writer.isPaused }

    func report(error: (any Error)?) {
        guard let error else {
            stats.lastSuccess.store(clock.nowMilliseconds(), ordering: .relaxed)
            if let was = stats.lastError.withLock({ last in defer { last = nil }; return last }) {
                logger.notice("input recovered", metadata: ["after": "\(was)"])
            }
            return
        }
        stats.errors.add(1, ordering: .relaxed)
        let text = "\(error)"
        let changed = stats.lastError.withLock { last in defer { last = text }; return last != text }
        if changed { logger.warning("input read failed; retrying at the next interval", metadata: ["error": "\(text)"]) }
    }

    private func counted(_ count: Int) {
        stats.readings.add(Int64(count), ordering: .relaxed)
        stats.lastSuccess.store(clock.nowMilliseconds(), ordering: .relaxed)
    }
}

/// The shared wrapper every input runs in: logging, self-metrics, back-pressure, graceful stop,
/// and a summary when it ends. An input that ends (a replay reaching its last row) or fails does
/// not stop the agent.
public struct InputService: Service {
    let input: any Input
    let writer: BufferWriter
    let stats: InputStats
    let logger: Logger
    let clock: any WallClock

    public init(input: any Input, type: String, writer: BufferWriter, clock: any WallClock, logger: Logger) {
        self.input = input
        self.writer = writer
        self.clock = clock
        stats = InputStats(type: type, sensor: input.sensor.id)
        var logger = logger
        logger[metadataKey: "sensor"] = "\(input.sensor.id)"
        logger[metadataKey: "input"] = "\(type)"
        self.logger = logger
    }

    public func run() async {
        logger.info("input started", metadata: ["canWait": "\(input.canWait)"])
        let sink = InputSink(writer: writer, stats: stats, canWait: input.canWait, clock: clock, logger: logger)
        do {
            var resume: Int64?
            if let key = input.checkpointKey, let position = try writer.checkpoint(for: key) {
                resume = position
                logger.info("input resuming where the buffer ends", metadata: ["position": "\(position)"])
            }
            let start = resume
            let summary = try await cancelWhenGracefulShutdown { try await input.run(into: sink, resumingFrom: start) }
            var metadata: Logger.Metadata = [:]
            for (name, value) in summary.counters { metadata[name] = "\(value)" }
            logger.info("input finished", metadata: metadata)
        } catch {
            stats.errors.add(1, ordering: .relaxed)
            stats.lastError.withLock { $0 = "\(error)" }
            logger.error("input failed", metadata: ["error": "\(error)"])
        }
    }
}
