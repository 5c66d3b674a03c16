import GemelloCore
import GemelloRules
import GemelloStorage
import Synchronization

/// The alert messages waiting for each sink, in the twin store's `alert_outbox`: written in the
/// transaction that changes the alert (``enqueue(_:in:)``), delivered oldest first per sink by
/// the ``SinkDispatcher``, deleted only once the sink took it. Bounded per sink (`max-queued`):
/// past it the oldest are dropped, counted in `alert_sinks.dropped` and on `/metrics`.
public final class AlertOutbox: Sendable {
    let sinks: [AlertsConfiguration.Sink]
    let cap: CAPWriter
    /// Messages queued per sink (kept in step with the table after each commit).
    private let queued = Mutex<[String: Int]>([:])
    /// One wake-up per sink (a ``WakeSignal`` has one waiter: each sink's worker waits on its own).
    let signals: [String: WakeSignal]
    let metrics: [String: SinkMetrics]

    init(sinks: [AlertsConfiguration.Sink], cap: CAPWriter, metrics: AggregatorMetrics?, store: TwinStore) throws(AggregatorError) {
        self.sinks = sinks.filter(\.takesAlerts)
        self.cap = cap
        var m: [String: SinkMetrics] = [:]
        if let metrics { for sink in self.sinks { m[sink.name] = metrics.sink(sink.name) } }
        self.metrics = m
        signals = Dictionary(self.sinks.map { ($0.name, WakeSignal()) }, uniquingKeysWith: { a, _ in a })
        let counts: [String: Int]
        do {
            counts = try store.read { db -> [String: Int] in
                let rows = try db.query("SELECT sink, CAST(COUNT(*) AS BIGINT) FROM alert_outbox GROUP BY sink")
                var out: [String: Int] = [:]
                while try rows.step() { out[rows.text(0)] = Int(rows.int64(1)) }
                return out
            }
        } catch {
            throw AggregatorError(.store, "cannot read the alert outbox: \(error)")
        }
        queued.withLock { $0 = counts }
        for (name, n) in counts { self.metrics[name]?.queued.record(n) }
    }

    /// Rows about to be added per sink by a transaction not yet committed.
    struct Added: Sendable {
        var counts: [String: Int] = [:]
        var dropped: [String: Int] = [:]
    }

    /// Writes each message for every sink its rule sends to (bodies rendered now: a resend is
    /// byte for byte the same message), dropping the oldest past a sink's bound.
    func enqueue(_ messages: [AlertMessage], rules: [String: AlertRule], now: Int64, in db: any StoreConnection) throws -> Added {
        var added = Added()
        guard !messages.isEmpty, !sinks.isEmpty else { return added }
        let current = queued.withLock { $0 }
        for sink in sinks {
            var rows: [StoreValue] = []
            var n = 0
            for message in messages {
                let rule = rules[message.alert.rule]
                if let only = rule?.sinks, !only.contains(sink.name) { continue }
                let (body, type) = sink.format == .cap
                    ? (cap.xml(message, rule: rule), "application/cap+xml")
                    : (message.json(rule: rule), "application/json")
                rows += [.text(sink.name), .text(message.id), .text(message.alert.id), .text(type), .text(body), .integer(now), .integer(now)]
                n += 1
            }
            guard n > 0 else { continue }
            for part in stride(from: 0, to: n, by: 100) {
                let count = min(100, n - part)
                try db.send("""
                    INSERT INTO alert_outbox (sink, message_id, alert_id, content_type, body, created, next_attempt) VALUES \
                    \(IngestWriter.tuples(7, count))
                    """, Array(rows[(part * 7)..<((part + count) * 7)]))
            }
            let total = (current[sink.name] ?? 0) + n
            if total > sink.maxQueued {
                let excess = total - sink.maxQueued
                try db.run("""
                    DELETE FROM alert_outbox WHERE seq IN (SELECT seq FROM alert_outbox WHERE sink = ? ORDER BY seq LIMIT ?)
                    """, [.text(sink.name), .integer(Int64(excess))])
                try db.run("""
                    INSERT INTO alert_sinks (name, dropped) VALUES (?, ?)
                    ON CONFLICT (name) DO UPDATE SET dropped = alert_sinks.dropped + excluded.dropped
                    """, [.text(sink.name), .integer(Int64(excess))])
                added.dropped[sink.name] = excess
                n -= excess
            }
            added.counts[sink.name] = n
        }
        return added
    }

    /// After the commit: counts and metrics follow, the dispatcher is woken.
    func committed(_ added: Added) {
        guard !added.counts.isEmpty || !added.dropped.isEmpty else { return }
        let now = queued.withLock { q -> [String: Int] in
            for (sink, n) in added.counts { q[sink, default: 0] += n }
            return q
        }
        for (sink, n) in added.counts { metrics[sink]?.queued.record(now[sink] ?? n) }
        for (sink, n) in added.dropped { metrics[sink]?.dropped.increment(by: n) }
        for sink in added.counts.keys { signals[sink]?.notify() }
    }

    func delivered(_ sink: String) {
        let left = queued.withLock { q -> Int in
            q[sink] = max(0, (q[sink] ?? 1) - 1)
            return q[sink]!
        }
        metrics[sink]?.queued.record(left)
    }

    public func count(_ sink: String) -> Int { queued.withLock { $0[sink] ?? 0 } }

    /// The sink's queue is empty in the store.
    func emptied(_ sink: String) {
        let was = queued.withLock { q -> Int in
            defer { q[sink] = 0 }
            return q[sink] ?? 0
        }
        if was != 0 { metrics[sink]?.queued.record(0) }
    }

    /// The oldest queued message of `sink`.
    struct Head: Sendable {
        var seq: Int64
        var messageID: String
        var contentType: String
        var body: String
        var created: Int64
        var attempts: Int64
        var nextAttempt: Int64
    }

    static func head(_ sink: String, in db: any StoreConnection) throws -> Head? {
        let rows = try db.query("""
            SELECT seq, message_id, content_type, body, created, attempts, next_attempt FROM alert_outbox WHERE sink = ? ORDER BY seq LIMIT 1
            """, [.text(sink)])
        guard try rows.step() else { return nil }
        return Head(seq: rows.int64(0), messageID: rows.text(1), contentType: rows.text(2), body: rows.text(3), created: rows.int64(4),
                    attempts: rows.int64(5), nextAttempt: rows.int64(6))
    }
}
