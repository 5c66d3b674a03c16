import GemelloCore
import Logging
import ServiceLifecycle
import Synchronization

/// Collects readings from all inputs and group-commits them to the buffer at least every
/// `flushInterval`, or at once when `flushReadings` are waiting (which also throttles an input
/// that produces faster than the disk takes).
///
/// **Back-pressure.** Readings of inputs that can wait (``Input/canWait``: a replay, a push
/// input, a polled device that keeps its state) are never dropped: when the buffer is at its quota
/// or the disk is full, their group is *held* (in memory, with their inputs' positions, which are
/// therefore not committed either) and retried every flush, the writer is *paused*, and those
/// inputs' next ``accept(_:checkpoint:canWait:)`` waits until a retry got through (the
/// publisher's acknowledged batches made room). Inputs that cannot wait go on, and their readings
/// meet the buffer's overflow policy, which spares the waiting inputs' readings (see
/// ``ReadingBuffer/protect(sensors:)``). Nothing held is lost by a crash: a replay resumes from
/// its last committed position, and a push input had not yet acknowledged its source.
public final class BufferWriter: Service {
    private let buffer: ReadingBuffer
    private let counters: AgentCounters
    private let flushInterval: Duration
    private let flushReadings: Int
    private let logger: Logger
    private let clock: any WallClock
    /// Drops not yet logged, and when the last warning went out (one warning a minute at most).
    private let dropReport = Mutex<(unreported: Int64, lastLog: Int64?)>((0, nil))

    /// Readings waiting for the next group commit.
    struct Group {
        /// From inputs that cannot wait: the overflow policy may drop them.
        var live: [Reading] = []
        /// From inputs that can wait, one chunk per hand-over: stored whole or held back, never
        /// dropped (but see ``BufferWriter/commit(_:held:)`` for a chunk larger than the quota).
        var chunks: [Chunk] = []
        private(set) var waitingCount = 0

        struct Chunk {
            var readings: [Reading]
            /// The input's position just after these readings, committed with them.
            var checkpoint: InputCheckpoint?
            /// A push input waiting for them to be committed (``BufferWriter/commit(_:)``).
            var notify: CheckedContinuation<Void, any Error>?
        }

        var count: Int { live.count + waitingCount }

        mutating func add(_ chunk: Chunk) {
            chunks.append(chunk)
            waitingCount += chunk.readings.count
        }

        mutating func take() -> Group {
            defer { self = Group() }
            return self
        }

        /// `later` after this group.
        mutating func append(_ later: Group) {
            live += later.live
            for chunk in later.chunks { add(chunk) }
        }

        /// Every waiting reading, and the last position of each input among them.
        var waiting: (readings: [Reading], checkpoints: [InputCheckpoint]) {
            var positions: [String: Int64] = [:]
            for chunk in chunks { if let c = chunk.checkpoint { positions[c.key] = c.position } }
            return (chunks.flatMap(\.readings), positions.map { InputCheckpoint(key: $0.key, position: $0.value) })
        }
    }

    private let pending = Mutex(Group())
    /// Serializes commits (a held group must be stored before anything its inputs sent after
    /// it) and keeps the held group between them.
    private let commitGate = Mutex(Group())
    private let paused = Atomic<Bool>(false)

    public init(buffer: ReadingBuffer, counters: AgentCounters, flushInterval: Duration, flushReadings: Int,
                clock: any WallClock = SystemWallClock(), logger: Logger) {
        self.clock = clock
        self.buffer = buffer
        self.counters = counters
        self.flushInterval = flushInterval
        self.flushReadings = flushReadings
        self.logger = logger
    }

    /// Whether readings of inputs that can wait are being held because the buffer is full.
    public var isPaused: Bool { paused.load(ordering: .relaxed) }

    /// Takes readings from an input. One that `canWait` is held here while the writer is paused.
    public func accept(_ readings: [Reading], checkpoint: InputCheckpoint?, canWait: Bool) async throws {
        if canWait {
            while paused.load(ordering: .relaxed) {
                try await Task.sleep(for: min(flushInterval, .milliseconds(100)))
            }
        }
        let full = pending.withLock { group -> Bool in
            if canWait {
                group.add(.init(readings: readings, checkpoint: checkpoint))
            } else {
                group.live.append(contentsOf: readings)
            }
            return group.count >= flushReadings
        }
        if full { try flush() }
    }

    /// The commit notification: returns once `readings` are stored in the buffer, throws if they
    /// could not be. A commit is started at once (a pushing client waits for its answer: an HTTP
    /// write, an MQTT acknowledgement); writes arriving meanwhile join it, so concurrent clients
    /// still share transactions. They can wait: while the buffer is full they are held, and this
    /// returns once a retry stored them.
    public func commit(_ readings: [Reading]) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            pending.withLock { $0.add(.init(readings: readings, notify: continuation)) }
            Task { try? self.flushUnlessPaused() }
        }
    }

    /// A flush for a commit notification; while paused, held writes wait for the timed retries.
    private func flushUnlessPaused() throws {
        guard !paused.load(ordering: .relaxed) else { return }
        try flush()
    }

    /// Commits whatever is waiting now, and retries a held group.
    public func flush() throws {
        try commitGate.withLock { held in
            var group = held.take()
            group.append(pending.withLock { $0.take() })
            try commit(&group, held: &held)
        }
    }

    /// The last committed position of a resumable input (see ``Input/checkpointKey``).
    public func checkpoint(for key: String) throws -> Int64? { try buffer.checkpoint(for: key) }

    private func commit(_ group: inout Group, held: inout Group) throws {
        guard group.count > 0 || !group.chunks.isEmpty else { return }
        let now = clock.nowMilliseconds()
        do {
            if !group.chunks.isEmpty {
                // Usually everything fits: one transaction.
                let waiting = group.waiting
                if try buffer.appendIfRoom(group.live + waiting.readings, checkpoints: waiting.checkpoints, now: now) {
                    counters.accepted.add(Int64(group.count), ordering: .relaxed)
                    resumeAfterRoom(stored: group.waitingCount)
                    for chunk in group.chunks { chunk.notify?.resume() }
                    return
                }
                // Full: store the waiting chunks in order while they fit, each with its input's
                // position; hold the rest; give the live readings to the overflow policy.
                var remaining = group.chunks[...]
                while let chunk = remaining.first,
                      try buffer.appendIfRoom(chunk.readings, checkpoints: chunk.checkpoint.map { [$0] } ?? [], now: now) {
                    counters.accepted.add(Int64(chunk.readings.count), ordering: .relaxed)
                    chunk.notify?.resume()
                    remaining = remaining.dropFirst()
                }
                if let chunk = remaining.first, remaining.count == group.chunks.count, buffer.bufferedReadings == 0 {
                    // Not even the first chunk fits an empty buffer: no acknowledgement can make
                    // room for it. Waiting would stall the agent for good; the policy decides.
                    let dropped = try buffer.append(chunk.readings, checkpoints: chunk.checkpoint.map { [$0] } ?? [], now: now)
                    counters.accepted.add(Int64(chunk.readings.count), ordering: .relaxed)
                    if dropped > 0 { reportDrops(dropped, now: now) }
                    logger.error("buffer quota smaller than one hand-over of an input: its readings met the overflow policy", metadata: [
                        "readings": "\(chunk.readings.count)", "dropped": "\(dropped)", "maxBytes": "\(buffer.limits.maxBytes.map(String.init) ?? "none")",
                        "fix": "raise buffer.max-bytes (or lower buffer.flush-readings)"])
                    chunk.notify?.resume()
                    remaining = remaining.dropFirst()
                }
                held = Group()
                for chunk in remaining { held.add(chunk) }
                if held.chunks.isEmpty {
                    resumeAfterRoom(stored: group.waitingCount)
                } else if !paused.exchange(true, ordering: .relaxed) {
                    counters.bufferPaused.store(true, ordering: .relaxed)
                    counters.pauses.add(1, ordering: .relaxed)
                    logger.warning("buffer full: inputs that can wait are paused, nothing of theirs is dropped", metadata: [
                        "held": "\(held.waitingCount)", "buffered": "\(buffer.bufferedReadings)",
                        "fix": "raise buffer.max-bytes or free disk space, or restore the link so the backlog drains"])
                }
            }
            guard !group.live.isEmpty else { return }
            let dropped = try buffer.append(group.live, now: now)
            counters.accepted.add(Int64(group.live.count), ordering: .relaxed)
            if dropped > 0 { reportDrops(dropped, now: now) }
        } catch {
            logger.error("buffer write failed", metadata: ["readings": "\(group.count)", "error": "\(error)"])
            for chunk in group.chunks { chunk.notify?.resume(throwing: error) }
            held = Group()
            throw error
        }
    }

    private func resumeAfterRoom(stored: Int) {
        guard paused.exchange(false, ordering: .relaxed) else { return }
        counters.bufferPaused.store(false, ordering: .relaxed)
        logger.notice("buffer has room again: inputs that waited resume", metadata: ["stored": "\(stored)"])
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
        let unstored = commitGate.withLock { held -> Int in
            defer { held = Group() }
            for chunk in held.chunks {
                chunk.notify?.resume(throwing: AgentError(.buffer, "the agent stopped while the buffer was full"))
            }
            return held.waitingCount
        }
        if unstored > 0 {
            logger.warning("stopped with the buffer full: held readings not stored, not lost", metadata: [
                "held": "\(unstored)", "why": "replays resume from their last stored position; push sources were not acknowledged and resend"])
        }
        logger.debug("buffer writer stopped")
    }
}
