import GemelloCore

/// What the agent says of its health, and when (docs/protocol.md, "Live rate"): a full report
/// at the start, after a reconnect and every `fullInterval`; to an aggregator that reads them,
/// deltas in between: only significant changes, nothing while batches show the agent alive, an
/// empty delta as heartbeat otherwise. Pure: fed the full report and the clock, no I/O.
struct HealthReporter {
    enum Report: Equatable {
        case full(AgentHealth)
        case delta(AgentHealthDelta)

        var json: String {
            switch self {
            case .full(let health): health.json()
            case .delta(let delta): delta.json()
            }
        }
    }

    let interval: Duration
    let fullInterval: Duration
    /// The view the aggregator holds: the last full report with the deltas sent since applied.
    private(set) var sent: AgentHealth?
    private var lastFull: ContinuousClock.Instant?
    /// Publish-to-ack latencies (ms) since the last full report, which carries their mean and max.
    private var ackLatencies: [Double] = []

    init(interval: Duration, fullInterval: Duration) {
        self.interval = interval
        self.fullInterval = fullInterval
    }

    /// Deltas sent on a lost connection may be lost with it: a full report next.
    mutating func connectionRestarted() { sent = nil }

    mutating func ackLatency(milliseconds: Double) { ackLatencies.append(milliseconds) }

    /// What to publish now for `health` (nil: nothing); `lastPublish` is when anything (a batch,
    /// a report) last went out. Call ``published(_:now:wallNow:)`` once it is published.
    func report(_ health: AgentHealth, now: ContinuousClock.Instant, deltas: Bool, lastPublish: ContinuousClock.Instant) -> Report? {
        if deltas, let sent, sent.bootEpoch == health.bootEpoch, let lastFull, now - lastFull < fullInterval {
            let delta = AgentHealthDelta.between(sent, health)
            // Nothing significant, and something went out within the interval: it shows we are alive.
            if delta.isEmpty && lastPublish > now - interval { return nil }
            return .delta(delta)
        }
        var full = health
        if !ackLatencies.isEmpty {
            full.ackLatencyMeanMilliseconds = (ackLatencies.reduce(0, +) / Double(ackLatencies.count)).rounded()
            full.ackLatencyMaxMilliseconds = ackLatencies.max()
        }
        return .full(full)
    }

    /// `report` was published at `now` (`wallNow` in Unix ms).
    mutating func published(_ report: Report, now: ContinuousClock.Instant, wallNow: Int64) {
        switch report {
        case .full(let health):
            sent = health
            lastFull = now
            ackLatencies.removeAll(keepingCapacity: true)
        case .delta(let delta):
            sent = sent.map { delta.applied(to: $0, now: wallNow) }
        }
    }
}
