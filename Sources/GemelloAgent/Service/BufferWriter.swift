import GemelloCore
import Logging
import ServiceLifecycle
import Synchronization

/// Collects readings from all inputs and group-commits them to the buffer at least every
/// `flushInterval`, or at once when `flushReadings` are waiting (which also throttles an input
/// that produces faster than the disk takes).
public final class BufferWriter: ReadingSink, Service {
    private let buffer: ReadingBuffer
    private let counters: AgentCounters
    private let flushInterval: Duration
    private let flushReadings: Int
    private let logger: Logger
    private let clock: any WallClock
    /// Drops not yet logged, and when the last warning went out (one warning a minute at most).
    private let dropReport = Mutex<(unreported: Int64, lastLog: Int64?)>((0, nil))
    /// Readings waiting for the next group commit, and each resumable input's position after them.
    private let pending = Mutex<(readings: [Reading], checkpoints: [String: Int64])>(([], [:]))

    public init(buffer: ReadingBuffer, counters: AgentCounters, flushInterval: Duration, flushReadings: Int,
                clock: any WallClock = SystemWallClock(), logger: Logger) {
        self.clock = clock
        self.buffer = buffer
        self.counters = counters
        self.flushInterval = flushInterval
        self.flushReadings = flushReadings
        self.logger = logger
    }

    public func accept(_ readings: [Reading], checkpoint: InputCheckpoint?) async throws {
        let full: (readings: [Reading], checkpoints: [String: Int64])? = pending.withLock { waiting in
            waiting.readings.append(contentsOf: readings)
            if let checkpoint { waiting.checkpoints[checkpoint.key] = checkpoint.position }
            guard waiting.readings.count >= flushReadings else { return nil }
            defer { waiting = ([], [:]) }
            return waiting
        }
        if let full { try commit(full.readings, full.checkpoints) }
    }

    /// Commits whatever is waiting now.
    public func flush() throws {
        let waiting = pending.withLock { waiting in
            defer { waiting = ([], [:]) }
            return waiting
        }
        try commit(waiting.readings, waiting.checkpoints)
    }

    /// The last committed position of a resumable input (see ``Input/checkpointKey``).
    public func checkpoint(for key: String) throws -> Int64? { try buffer.checkpoint(for: key) }

    private func commit(_ readings: [Reading], _ checkpoints: [String: Int64]) throws {
        guard !readings.isEmpty || !checkpoints.isEmpty else { return }
        do {
            let now = clock.nowMilliseconds()
            let dropped = try buffer.append(readings, checkpoints: checkpoints.map { InputCheckpoint(key: $0.key, position: $0.value) }, now: now)
            counters.accepted.add(Int64(readings.count), ordering: .relaxed)
            if dropped > 0 { reportDrops(dropped, now: now) }
        } catch {
            logger.error("buffer write failed", metadata: ["readings": "\(readings.count)", "error": "\(error)"])
            throw error
        }
    }

    private func reportDrops(_ dropped: Int64, now: Int64) {
        counters.dropped.add(dropped, ordering: .relaxed)
        let toLog: Int64? = dropReport.withLock { report in
            report.unreported += dropped
            guard report.lastLog.map({ now - $0 >= 60_000 || now < $0 }) ?? true else { return nil }
            defer { report = (0, now) }
            return report.unreported
        }
        guard let toLog else { return }
        let l = buffer.limits
        logger.warning("buffer limits reached: readings dropped", metadata: [
            "dropped": "\(toLog)", "droppedTotal": "\(buffer.droppedReadings)", "policy": "\(l.whenFull.rawValue)",
            "maxBytes": "\(l.maxBytes.map(String.init) ?? "none")", "maxAge": "\(l.maxAge.map { "\($0)" } ?? "none")",
            "fix": "raise buffer.max-bytes or free disk space, or restore the link so the backlog drains"])
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.flushInterval) }
            try flush()
        }
        // Inputs stopped before us (services stop in reverse order): commit their last readings.
        try flush()
        logger.debug("buffer writer stopped")
    }
}
