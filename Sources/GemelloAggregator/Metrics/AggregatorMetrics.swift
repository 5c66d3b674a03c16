import CoreMetrics
import GemelloCore
import Synchronization

/// The aggregator's metrics through swift-metrics: the library only sees `MetricsFactory`; the
/// executable hands in swift-prometheus's factory and serves its registry on `/metrics`.
///
/// Names (Prometheus conventions; counters get `_total`, durations are seconds):
/// - `gemello_ingest_batches_total`, `gemello_ingest_readings_total`,
///   `gemello_ingest_duplicate_batches_total`, `gemello_ingest_rejected_batches_total`
///   (of which `gemello_ingest_refused_batches_total`: not enrolled, revoked or badly signed),
///   `gemello_ingest_store_failures_total` (batches the store failed to take; resent by their agents)
/// - `gemello_ingest_store_seconds` (histogram: decode + store + ack of one batch)
/// - `gemello_batch_latency_seconds` (histogram: from the agent cutting a batch to its commit
///   here; grows with backlogs and outages)
/// - `gemello_reading_delay_seconds` (histogram: from a reading's own time to its commit here,
///   one observation per reading of batches whose readings are all under an hour old; replays of
///   history and long outages' backlogs stay out of it)
/// - `gemello_agents{status}`: agents per status
/// - `gemello_fleet_buffered_readings`, `gemello_fleet_dropped_readings`: sums over the fleet
/// - `gemello_agent_buffered_readings{agent}`, `gemello_agent_oldest_unsent_seconds{agent}`: only
///   for the `agentLabelLimit` agents with the largest backlogs, so a fleet of thousands does not
///   become thousands of series; `gemello_agent_series_omitted` says how many were left out.
public final class AggregatorMetrics: Sendable {
    let batches: Counter
    let readings: Counter
    let duplicates: Counter
    let rejected: Counter
    let refused: Counter
    let storeFailures: Counter
    let storeDuration: Timer
    let batchLatency: Timer
    let readingDelay: Timer
    /// NGSI-LD notifications: delivered, failed attempts, dropped past the outbox limit.
    let notificationsQueued: Counter
    let notificationsSent: Counter
    let notificationsFailed: Counter
    let notificationsDropped: Counter
    let outboxPending: Gauge
    private let agentsByStatus: [FleetAgentSummary.Status: Gauge]
    private let fleetBuffered: Gauge
    private let fleetDropped: Gauge
    private let omitted: Gauge
    private let historyReadings: Gauge
    private let historyUnsealed: Gauge
    private let historyChunks: Gauge
    private let historyBytes: Gauge
    let factory: any MetricsFactory
    public let agentLabelLimit: Int
    /// The labelled per-agent gauges now registered, by agent.
    private let perAgent = Mutex<[String: (buffered: Gauge, oldest: Gauge)]>([:])

    public static let storeDurationLabel = "gemello_ingest_store_seconds"
    public static let batchLatencyLabel = "gemello_batch_latency_seconds"
    public static let readingDelayLabel = "gemello_reading_delay_seconds"
    /// Its buckets (seconds): fine where a live site's delays are (a few seconds), to put a p99 on them.
    public static let readingDelayBuckets: [Double] = [0.25, 0.5, 1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 30, 60, 120, 300, 900, 3600]

    public init(factory: any MetricsFactory, agentLabelLimit: Int = 50) {
        self.factory = factory
        self.agentLabelLimit = agentLabelLimit
        batches = Counter(label: "gemello_ingest_batches_total", factory: factory)
        readings = Counter(label: "gemello_ingest_readings_total", factory: factory)
        duplicates = Counter(label: "gemello_ingest_duplicate_batches_total", factory: factory)
        rejected = Counter(label: "gemello_ingest_rejected_batches_total", factory: factory)
        refused = Counter(label: "gemello_ingest_refused_batches_total", factory: factory)
        storeFailures = Counter(label: "gemello_ingest_store_failures_total", factory: factory)
        storeDuration = Timer(label: Self.storeDurationLabel, factory: factory)
        batchLatency = Timer(label: Self.batchLatencyLabel, factory: factory)
        readingDelay = Timer(label: Self.readingDelayLabel, factory: factory)
        notificationsQueued = Counter(label: "gemello_notifications_queued_total", factory: factory)
        notificationsSent = Counter(label: "gemello_notifications_sent_total", factory: factory)
        notificationsFailed = Counter(label: "gemello_notifications_failed_total", factory: factory)
        notificationsDropped = Counter(label: "gemello_notifications_dropped_total", factory: factory)
        outboxPending = Gauge(label: "gemello_notifications_pending", factory: factory)
        var byStatus: [FleetAgentSummary.Status: Gauge] = [:]
        for status in FleetAgentSummary.Status.allCases {
            byStatus[status] = Gauge(label: "gemello_agents", dimensions: [("status", status.rawValue)], factory: factory)
        }
        agentsByStatus = byStatus
        fleetBuffered = Gauge(label: "gemello_fleet_buffered_readings", factory: factory)
        fleetDropped = Gauge(label: "gemello_fleet_dropped_readings", factory: factory)
        omitted = Gauge(label: "gemello_agent_series_omitted", factory: factory)
        historyReadings = Gauge(label: "gemello_history_readings", factory: factory)
        historyUnsealed = Gauge(label: "gemello_history_unsealed_fragments", factory: factory)
        historyChunks = Gauge(label: "gemello_history_chunks", factory: factory)
        historyBytes = Gauge(label: "gemello_history_bytes", factory: factory)
    }

    /// Updates the fleet gauges from a fresh fleet listing (the monitor calls this every tick).
    /// The history's size (``HistoryStore/footprint()``), refreshed once a minute by the compactor.
    public func update(history: (chunks: Int64, fragments: Int64, points: Int64, bytes: Int64)) {
        historyReadings.record(history.points)
        historyUnsealed.record(history.fragments)
        historyChunks.record(history.chunks - history.fragments)
        historyBytes.record(history.bytes)
    }

    public func update(fleet: [FleetAgentSummary]) {
        for status in FleetAgentSummary.Status.allCases {
            agentsByStatus[status]?.record(fleet.count(where: { $0.status == status }))
        }
        fleetBuffered.record(fleet.reduce(0) { $0 + ($1.readingsBuffered ?? 0) })
        fleetDropped.record(fleet.reduce(0) { $0 + ($1.health?.readingsDropped ?? 0) })
        let chosen = Self.labelledAgents(fleet, limit: agentLabelLimit)
        omitted.record(fleet.count - chosen.count)
        perAgent.withLock { gauges in
            for (agent, pair) in gauges where !chosen.contains(where: { $0.id == agent }) {
                pair.buffered.destroy()
                pair.oldest.destroy()
                gauges[agent] = nil
            }
            for agent in chosen {
                let pair = gauges[agent.id] ?? (
                    Gauge(label: "gemello_agent_buffered_readings", dimensions: [("agent", agent.id)], factory: factory),
                    Gauge(label: "gemello_agent_oldest_unsent_seconds", dimensions: [("agent", agent.id)], factory: factory))
                gauges[agent.id] = pair
                pair.buffered.record(agent.readingsBuffered ?? 0)
                pair.oldest.record(agent.health?.oldestUnsentSeconds ?? 0)
            }
        }
    }

    /// The agents that get their own series: the largest backlogs first (ties by id), at most `limit`.
    static func labelledAgents(_ fleet: [FleetAgentSummary], limit: Int) -> [FleetAgentSummary] {
        Array(fleet.sorted { ($0.readingsBuffered ?? 0, $1.id) > ($1.readingsBuffered ?? 0, $0.id) }.prefix(max(0, limit)))
    }
}

extension AggregatorMetrics {
    /// One observation per reading of a live batch (every reading under an hour old).
    func recordReadingDelays(_ batch: Batch, now: Int64) {
        guard batch.count > 0 else { return }
        var oldest = Int64.max
        for i in 0..<batch.count { oldest = Swift.min(oldest, batch.millisecondTimestamp(i)) }
        guard now - oldest <= 3_600_000 else { return }
        for i in 0..<batch.count { readingDelay.recordMilliseconds(Swift.max(0, now - batch.millisecondTimestamp(i))) }
    }
}
