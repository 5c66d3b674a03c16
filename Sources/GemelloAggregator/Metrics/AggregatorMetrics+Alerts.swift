import CoreMetrics

/// Alert metrics (docs/alerts.md):
/// - `gemello_alerts_raised_total`, `gemello_alerts_cleared_total`, `gemello_alerts_open`
/// - per sink (`sink` label): `gemello_alert_sink_queued` (messages waiting),
///   `gemello_alert_sink_oldest_seconds` (age of the oldest), `gemello_alert_sink_delivered_total`,
///   `gemello_alert_sink_failures_total` (failed attempts), `gemello_alert_sink_retries_total`
///   (deliveries of a message that had failed before), `gemello_alert_sink_dropped_total` (past `max-queued`)
public struct SinkMetrics: Sendable {
    let queued: Gauge
    let oldest: Gauge
    let delivered: Counter
    let failures: Counter
    let retries: Counter
    let dropped: Counter
}

public struct AlertMetrics: Sendable {
    let raised: Counter
    let cleared: Counter
    let open: Gauge
}

extension AggregatorMetrics {
    func sink(_ name: String) -> SinkMetrics {
        let d = [("sink", name)]
        return SinkMetrics(queued: Gauge(label: "gemello_alert_sink_queued", dimensions: d, factory: factory),
                           oldest: Gauge(label: "gemello_alert_sink_oldest_seconds", dimensions: d, factory: factory),
                           delivered: Counter(label: "gemello_alert_sink_delivered_total", dimensions: d, factory: factory),
                           failures: Counter(label: "gemello_alert_sink_failures_total", dimensions: d, factory: factory),
                           retries: Counter(label: "gemello_alert_sink_retries_total", dimensions: d, factory: factory),
                           dropped: Counter(label: "gemello_alert_sink_dropped_total", dimensions: d, factory: factory))
    }

    func alerts() -> AlertMetrics {
        AlertMetrics(raised: Counter(label: "gemello_alerts_raised_total", factory: factory),
                     cleared: Counter(label: "gemello_alerts_cleared_total", factory: factory),
                     open: Gauge(label: "gemello_alerts_open", factory: factory))
    }
}
