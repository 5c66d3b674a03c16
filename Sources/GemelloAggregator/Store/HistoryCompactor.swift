import GemelloCore
import Logging
import ServiceLifecycle

/// Seals the history in the background (`HistoryStore`): every `interval` it merges
/// the fragments that are due into compressed chunks and re-compresses small sealed chunks
/// (late readings) into full ones; once a minute it drops raw readings and
/// rollups past their retention. Fragments are durable from the moment their
/// batch commits, so stopping between passes loses nothing; the next start carries on.
public final class HistoryCompactor: Service {
    private let store: TwinStore
    private let policy: HistoryStore.Policy
    private let interval: Duration
    private let clock: any WallClock
    private let logger: Logger
    private let metrics: AggregatorMetrics?

    /// Between retention passes (which also refresh the history's size in `/metrics`).
    private let maintenanceInterval: Duration

    public init(store: TwinStore, policy: HistoryStore.Policy, interval: Duration = .seconds(5), metrics: AggregatorMetrics? = nil,
                maintenanceInterval: Duration = .seconds(60), clock: any WallClock = SystemWallClock(), logger: Logger) {
        self.metrics = metrics
        self.maintenanceInterval = maintenanceInterval
        self.store = store
        self.policy = policy
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        var lastRetention: Int64 = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            pass()
            let now = clock.nowMilliseconds()
            if now - lastRetention >= maintenanceInterval.wholeMilliseconds {
                lastRetention = now
                retain(now: now)
            }
            do { try await Task.sleep(for: interval) } catch { break }
        }
    }

    /// Drops what is past its retention, and refreshes the history's size in `/metrics` (once a minute).
    func retain(now: Int64) {
        do {
            defer { if let metrics, let footprint = try? store.history.footprint() { metrics.update(history: footprint) } }
            let report = try store.history.applyRetention(now: now, policy: policy)
            if report.chunks > 0 || report.rollups > 0 {
                logger.info("history past its retention dropped", metadata: [
                    "chunks": "\(report.chunks)", "readings": "\(report.points)", "rollups": "\(report.rollups)"])
            }
        } catch {
            logger.error("history retention failed; retrying in a minute", metadata: ["error": "\(error)"])
        }
    }

    /// One pass; errors are logged and retried next pass (a store hiccup must not stop sealing).
    @discardableResult
    func pass() -> HistoryStore.CompactionReport? {
        do {
            let report = try store.history.compact(now: clock.nowMilliseconds(), policy: policy)
            if report.series > 0 {
                logger.debug("history sealed", metadata: [
                    "series": "\(report.series)", "fragments": "\(report.fragments)", "points": "\(report.points)",
                    "chunks": "\(report.chunksWritten)"])
            }
            let merged = try store.history.mergeSmallChunks(policy: policy)
            if merged.series > 0 {
                logger.debug("small history chunks merged", metadata: [
                    "series": "\(merged.series)", "from": "\(merged.chunksRewritten)", "to": "\(merged.chunksWritten)"])
            }
            return report
        } catch {
            logger.error("history compaction failed; retrying next pass", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
