import GemelloCore
import Logging
import ServiceLifecycle

/// Keeps the fleet registry's statuses true while nothing is said: every `interval` it
/// re-evaluates silence (stale, offline without a will), records transitions, logs them, updates
/// the fleet metrics, and once a minute prunes the health and transition history.
public final class FleetMonitor: Service {
    private let store: TwinStore
    private let configuration: AggregatorConfiguration
    private let counters: IngestCounters
    private let metrics: AggregatorMetrics?
    private let clock: any WallClock
    private let logger: Logger
    private let interval: Duration
    /// Told of the status changes (fleet rules).
    private let alerts: AlertEngine?

    public init(store: TwinStore, configuration: AggregatorConfiguration, counters: IngestCounters,
                metrics: AggregatorMetrics?, alerts: AlertEngine? = nil, clock: any WallClock = SystemWallClock(),
                interval: Duration = .seconds(1), logger: Logger) {
        self.store = store
        self.alerts = alerts
        self.configuration = configuration
        self.counters = counters
        self.metrics = metrics
        self.clock = clock
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        var lastPrune: Int64 = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            tick(now: clock.nowMilliseconds(), lastPrune: &lastPrune)
            do { try await Task.sleep(for: interval) } catch { break }
        }
    }

    /// One pass; errors are logged (a store hiccup must not stop the monitor). A pass that comes
    /// much later than its interval means the aggregator itself did not run (frozen, suspended,
    /// starved): the agents' silence during that gap is ours, so hearing starts again now.
    func tick(now: Int64, lastPrune: inout Int64) {
        let previous = counters.aliveAt.exchange(now, ordering: .relaxed)
        if previous > 0 && now - previous > max(IngestCounters.gapThreshold, interval.wholeMilliseconds * 3) {
            counters.noteGap(upTo: now)
            logger.warning("the aggregator did not run for a while; agents' silence in that gap is not counted",
                           metadata: ["seconds": "\(Double(now - previous) / 1000)"])
        }
        let hearing = counters.hearing(now: now)
        do {
            let changes = try store.refreshStatuses(now: now, policy: configuration.fleet, hearing: hearing)
            alerts?.fleetChanged(changes)
            for change in changes {
                let level: Logger.Level = change.to == .online ? .info : .warning
                logger.log(level: level, "agent \(change.to.rawValue)", metadata: [
                    "agent": "\(change.agentID)", "from": "\(change.from?.rawValue ?? "-")", "epoch": "\(change.bootEpoch)",
                    "reason": "\(change.reason)"])
            }
            if let metrics { metrics.update(fleet: try store.fleet(now: now, policy: configuration.fleet, hearing: hearing)) }
            if now - lastPrune >= 60_000 {
                lastPrune = now
                try store.pruneFleetHistory(healthBefore: now - configuration.healthHistory.wholeMilliseconds,
                                            transitionsBefore: now - configuration.transitionHistory.wholeMilliseconds)
            }
        } catch {
            logger.error("fleet monitor could not update the registry", metadata: ["error": "\(error)"])
        }
    }
}
