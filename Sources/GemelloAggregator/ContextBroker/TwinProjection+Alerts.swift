import GemelloCore
import GemelloNGSILD
import GemelloRules
import GemelloStorage

/// Alerts in the twin as Smart Data Models `Alert` entities (`urn:ngsi-ld:Alert:<alert id>`):
/// category and severity in SDM's terms, `dateIssued`/`validFrom` when raised, `validTo` when
/// cleared, `alertSource` the entity (or Device) concerned, `location`, and `data` with the
/// rule, status, value, count, lateness and acknowledgement. Their notifications commit with the
/// alert's change (``prepareAlerts(_:rules:sites:in:)``), the broker shows them after it (``commitAlerts(_:)``).
extension TwinProjection {
    public struct PreparedAlerts: Sendable {
        let entities: [Entity]
        let pending: [SubscriptionManager.Pending]
    }

    func prepareAlerts(_ alerts: [Alert], rules: [String: AlertRule], in db: any StoreConnection) throws -> PreparedAlerts {
        let entities = alerts.map { alertEntity($0, rule: rules[$0.rule]) }
        let pending = broker.telemetryNotifications(entities)
        try broker.subscriptions?.enqueue(pending, in: db)
        return PreparedAlerts(entities: entities, pending: pending)
    }

    func commitAlerts(_ prepared: PreparedAlerts) {
        broker.applyTelemetry(prepared.entities, notified: true)
        broker.subscriptions?.committed(prepared.pending)
    }

    /// Shows stored alerts (at start) without notifying anyone.
    func loadAlerts(_ alerts: [Alert], rules: [String: AlertRule]) {
        broker.applyTelemetry(alerts.map { alertEntity($0, rule: rules[$0.rule]) }, notified: true)
    }

    static func alertEntityID(_ id: String) -> String { "urn:ngsi-ld:Alert:\(id)" }

    func alertEntity(_ alert: Alert, rule: AlertRule?) -> Entity {
        let now = clock.nowMilliseconds()
        var entity = Entity(id: Self.alertEntityID(alert.id), types: [sdm.expand("Alert")], createdAt: now, modifiedAt: now)
        func set(_ name: String, _ value: JSON, _ kind: Attribute.Kind = .property) {
            entity.set(sdm.expand(name), Attribute(kind: kind, value: value, createdAt: now, modifiedAt: now, owner: "gemello-alerts"))
        }
        set("category", .string(Self.sdmCategory(rule?.category ?? .other)))
        set("severity", .string(Self.sdmSeverity(alert.severity)))
        set("dateIssued", .string(Timestamp.iso8601(milliseconds: alert.firstMessage?.sent ?? alert.raisedAt)))
        set("validFrom", .string(Timestamp.iso8601(milliseconds: alert.raisedAt)))
        if let cleared = alert.clearedAt { set("validTo", .string(Timestamp.iso8601(milliseconds: max(cleared, alert.raisedAt)))) }
        let text = rule?.texts.first.map { AlertText.render($0.headline, alert, language: $0.language) } ?? "\(alert.rule): \(alert.entityID)"
        set("description", .string(text))
        set("name", .string(alert.rule))
        set("alertSource", .string(alert.entityID), .relationship)
        if let p = alert.location { set("location", ["type": "Point", "coordinates": [.number(p.longitude), .number(p.latitude)]], .geoProperty) }
        var data: [String: JSON] = ["alertId": .string(alert.id), "rule": .string(alert.rule), "status": .string(alert.status.rawValue),
                                    "value": .number(alert.value.isFinite ? alert.value : 0), "peak": .number(alert.peak.isFinite ? alert.peak : 0), "count": .number(Double(alert.count)),
                                    "late": .bool(alert.late), "capSeverity": .string(alert.severity.cap)]
        if let a = alert.attribute { data["attribute"] = .string(a) }
        if let u = alert.unit { data["unitCode"] = .string(u) }
        if let at = alert.acknowledgedAt { data["acknowledgedAt"] = .string(Timestamp.iso8601(milliseconds: at)) }
        if let by = alert.acknowledgedBy { data["acknowledgedBy"] = .string(by) }
        if !alert.members.isEmpty { data["agents"] = .array(alert.members.map { .string($0) }) }
        set("data", .object(data))
        return entity
    }

    /// CAP category → SDM `Alert.category` (traffic, naturalDisaster, weather, environment, health, security, agriculture).
    static func sdmCategory(_ c: AlertRule.Category) -> String {
        switch c {
        case .health: "health"
        case .env: "environment"
        case .met: "weather"
        case .transport: "traffic"
        case .geo, .fire: "naturalDisaster"
        case .safety, .security, .rescue, .cbrne, .infra, .other: "security"
        }
    }

    /// CAP severity → SDM `Alert.severity` (informational, low, medium, high, critical).
    static func sdmSeverity(_ s: AlertRule.Severity) -> String {
        switch s {
        case .minor: "low"
        case .moderate: "medium"
        case .severe: "high"
        case .extreme: "critical"
        }
    }
}
