import GemelloCore
import GemelloRules
import GemelloStorage

/// Alerts and their outbox, in the twin store (both backends): one row per alert (an open one is
/// unique per rule and subject), the messages queued per sink (written in the transaction that
/// changes the alert), and each sink's delivered and dropped counts.
extension TwinStore {
    static let alertsSchema = """
        CREATE TABLE IF NOT EXISTS alerts (id TEXT PRIMARY KEY, rule TEXT NOT NULL, subject TEXT NOT NULL, entity_id TEXT NOT NULL,
            entity_type TEXT NOT NULL, agent_id TEXT, attribute TEXT, unit TEXT, status TEXT NOT NULL, severity TEXT NOT NULL,
            value REAL NOT NULL, count INTEGER NOT NULL, raised_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, cleared_at INTEGER,
            late INTEGER NOT NULL, acknowledged_at INTEGER, acknowledged_by TEXT, revision INTEGER NOT NULL, first_message TEXT,
            first_sent INTEGER, last_message TEXT, last_sent INTEGER, sent_value_at INTEGER NOT NULL, latitude REAL, longitude REAL,
            members TEXT NOT NULL, changed_at INTEGER NOT NULL, peak REAL NOT NULL, site TEXT, geocode TEXT, area_name TEXT) WITHOUT ROWID;
        CREATE UNIQUE INDEX IF NOT EXISTS alerts_open ON alerts (rule, subject) WHERE status = 'open';
        CREATE INDEX IF NOT EXISTS alerts_changed ON alerts (changed_at);
        CREATE TABLE IF NOT EXISTS alert_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, sink TEXT NOT NULL, message_id TEXT NOT NULL,
            alert_id TEXT NOT NULL, content_type TEXT NOT NULL, body TEXT NOT NULL, created INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS alert_outbox_sink ON alert_outbox (sink, seq);
        CREATE TABLE IF NOT EXISTS alert_sinks (name TEXT PRIMARY KEY, delivered INTEGER NOT NULL DEFAULT 0,
            dropped INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS alert_leases (subscription TEXT PRIMARY KEY, owner TEXT NOT NULL, until INTEGER NOT NULL) WITHOUT ROWID;
        """

    static let alertColumns = """
        id, rule, subject, entity_id, entity_type, agent_id, attribute, unit, status, severity, value, count, raised_at, updated_at,
        cleared_at, late, acknowledged_at, acknowledged_by, revision, first_message, first_sent, last_message, last_sent,
        sent_value_at, latitude, longitude, members, changed_at, peak, site, geocode, area_name
        """

    /// Writes alerts as they are now (`now`: wall time of the change, for "changed since" reads).
    /// Those no longer open go first: one pass may end a subject's episode and open its next one
    /// at an older observation time (a backlog starting earlier again), and the store holds one
    /// open alert per rule and subject at every statement, not only at the commit.
    static func write(_ alerts: [Alert], now: Int64, in db: any StoreConnection) throws {
        for a in alerts.filter({ $0.status != .open }) + alerts.filter({ $0.status == .open }) {
            let values: [StoreValue] = [
                .text(a.id), .text(a.rule), .text(a.subject), .text(a.entityID), .text(a.entityType), a.agent.map(StoreValue.text) ?? .null,
                a.attribute.map(StoreValue.text) ?? .null, a.unit.map(StoreValue.text) ?? .null, .text(a.status.rawValue),
                .text(a.severity.rawValue), .real(a.value.isFinite ? a.value : 0), .integer(Int64(a.count)), .integer(a.raisedAt),
                .integer(a.updatedAt), a.clearedAt.map(StoreValue.integer) ?? .null, .integer(a.late ? 1 : 0),
                a.acknowledgedAt.map(StoreValue.integer) ?? .null, a.acknowledgedBy.map(StoreValue.text) ?? .null,
                .integer(Int64(a.revision)), a.firstMessage.map { .text($0.id) } ?? .null, a.firstMessage.map { .integer($0.sent) } ?? .null,
                a.lastMessage.map { .text($0.id) } ?? .null, a.lastMessage.map { .integer($0.sent) } ?? .null, .integer(a.sentValueAt),
                a.location.map { .real($0.latitude) } ?? .null, a.location.map { .real($0.longitude) } ?? .null,
                .text(a.members.joined(separator: " ")), .integer(now), .real(a.peak.isFinite ? a.peak : 0),
                a.site.map(StoreValue.text) ?? .null, a.geocode.map(StoreValue.text) ?? .null, a.areaName.map(StoreValue.text) ?? .null,
            ]
            try db.send("""
                INSERT INTO alerts (\(alertColumns)) VALUES (\(Array(repeating: "?", count: values.count).joined(separator: ", ")))
                ON CONFLICT (id) DO UPDATE SET status = excluded.status, severity = excluded.severity, value = excluded.value,
                    count = excluded.count, updated_at = excluded.updated_at, cleared_at = excluded.cleared_at, late = excluded.late,
                    acknowledged_at = excluded.acknowledged_at, acknowledged_by = excluded.acknowledged_by, revision = excluded.revision,
                    first_message = excluded.first_message, first_sent = excluded.first_sent, last_message = excluded.last_message,
                    last_sent = excluded.last_sent, sent_value_at = excluded.sent_value_at, members = excluded.members,
                    changed_at = excluded.changed_at, peak = excluded.peak
                """, values)
        }
    }

    static func alert(_ r: any StoreRows) -> Alert {
        var a = Alert(id: r.text(0), rule: r.text(1), subject: r.text(2), entityID: r.text(3), entityType: r.text(4),
                      severity: AlertRule.Severity(rawValue: r.text(9)) ?? .moderate, value: r.double(10), raisedAt: r.int64(12))
        a.agent = r.optionalText(5)
        a.attribute = r.optionalText(6)
        a.unit = r.optionalText(7)
        a.status = Alert.Status(rawValue: r.text(8)) ?? .open
        a.count = Int(r.int64(11))
        a.updatedAt = r.int64(13)
        a.clearedAt = r.optionalInt64(14)
        a.late = r.int64(15) != 0
        a.acknowledgedAt = r.optionalInt64(16)
        a.acknowledgedBy = r.optionalText(17)
        a.revision = Int(r.int64(18))
        if let id = r.optionalText(19), let sent = r.optionalInt64(20) { a.firstMessage = .init(id: id, sent: sent) }
        if let id = r.optionalText(21), let sent = r.optionalInt64(22) { a.lastMessage = .init(id: id, sent: sent) }
        a.sentValueAt = r.int64(23)
        if let lat = r.optionalDouble(24), let lon = r.optionalDouble(25) { a.location = .init(latitude: lat, longitude: lon) }
        a.members = r.text(26).split(separator: " ").map(String.init)
        a.peak = r.double(28)
        a.site = r.optionalText(29)
        a.geocode = r.optionalText(30)
        a.areaName = r.optionalText(31)
        return a
    }

    /// Open alerts (status `open`), newest first.
    public func openAlerts() throws(AggregatorError) -> [Alert] {
        try alerts(where: "status = 'open'", [], limit: 1_000_000)
    }

    /// Alerts newest first (by last change); `all` includes the cleared ones kept.
    public func alerts(includeCleared all: Bool, limit: Int) throws(AggregatorError) -> [Alert] {
        try alerts(where: all ? "1 = 1" : "status = 'open'", [], limit: limit)
    }

    public func alert(id: String) throws(AggregatorError) -> Alert? {
        try alerts(where: "id = ?", [.text(id)], limit: 1).first
    }

    /// Alerts changed at or after `since` (wall ms): what other members of a share group changed.
    public func alerts(changedSince since: Int64) throws(AggregatorError) -> [Alert] {
        try alerts(where: "changed_at >= ?", [.integer(since)], limit: 1_000_000)
    }

    private func alerts(where clause: String, _ values: [StoreValue], limit: Int) throws(AggregatorError) -> [Alert] {
        do {
            return try read { db -> [Alert] in
                let rows = try db.query("SELECT \(Self.alertColumns) FROM alerts WHERE \(clause) ORDER BY updated_at DESC, id LIMIT ?",
                                        values + [.integer(Int64(limit))])
                var out: [Alert] = []
                while try rows.step() { out.append(Self.alert(rows)) }
                return out
            }
        } catch {
            throw AggregatorError(.store, "cannot read alerts: \(error)")
        }
    }

    /// Deletes cleared alerts whose last change is older than `before` (observation or wall ms as recorded).
    public func pruneAlerts(clearedBefore before: Int64) throws(AggregatorError) -> Int {
        do {
            return try writing { db in
                try db.run("DELETE FROM alerts WHERE status = 'cleared' AND changed_at < ?", [.integer(before)])
            }
        } catch {
            throw AggregatorError(.store, "cannot prune cleared alerts: \(error)")
        }
    }
}
