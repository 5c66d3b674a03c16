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
    private let pending = Mutex<[Reading]>([])

    public init(buffer: ReadingBuffer, counters: AgentCounters, flushInterval: Duration, flushReadings: Int, logger: Logger) {
        self.buffer = buffer
        self.counters = counters
        self.flushInterval = flushInterval
        self.flushReadings = flushReadings
        self.logger = logger
    }

    public func accept(_ readings: [Reading]) async throws {
        let full: [Reading]? = pending.withLock { waiting in
            waiting.append(contentsOf: readings)
            guard waiting.count >= flushReadings else { return nil }
            defer { waiting.removeAll(keepingCapacity: true) }
            return waiting
        }
        if let full { try commit(full) }
    }

    /// Commits whatever is waiting now.
    public func flush() throws {
        let waiting = pending.withLock { waiting in
            defer { waiting.removeAll(keepingCapacity: true) }
            return waiting
        }
        try commit(waiting)
    }

    private func commit(_ readings: [Reading]) throws {
        guard !readings.isEmpty else { return }
        do {
            try buffer.append(readings)
            counters.accepted.add(Int64(readings.count), ordering: .relaxed)
        } catch {
            logger.error("buffer write failed", metadata: ["readings": "\(readings.count)", "error": "\(error)"])
            throw error
        }
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
