/// The alert lifecycle (pure): turns rule events into alerts raised, updated and cleared, one
/// open alert per (rule, subject), and the messages the sinks get.
///
/// - A raise opens an alert (message `Alert`); the subject's open alert absorbs a raise
///   instead (no duplicate).
/// - While open, its value is sent as an `Update` at most every `update-every` of observation
///   time; a severity change (escalation) or a flap (count + 1) at once.
/// - A clear closes it (`Cancel`, referring to its earlier messages).
/// - An operator's acknowledgement is an `Update`; the alert stays open until its condition clears.
/// - A backlog's episodes (``RuleEvent/backfill``) are alerts of their own, keyed apart from the
///   live one (subject `backfill:…`), always late.
/// - Within one pass (the readings of one ingest), an alert's messages are folded: only its last
///   update is sent, and an alert raised and cleared in the same pass from a backlog (late) is
///   one `Alert` message saying both (urgency `Past`), never a stream of stale messages.
public struct AlertBook: Sendable {
    public private(set) var open: [String: Alert] = [:]
    /// Observations older than this when judged (wall time minus observation time) make late alerts.
    public var lateAfter: Int64
    private var pending: [Pending] = []
    /// Alerts changed in this pass (to be written), by id.
    private var changed: [String: Alert] = [:]

    public init(lateAfter: Int64 = 300_000) { self.lateAfter = lateAfter }

    /// Restores an alert that is open in the store.
    public mutating func restore(_ alert: Alert) { open[alert.subject + "|" + alert.rule] = alert }

    public static func subject(_ s: RuleEvent.Subject, rule: AlertRule, backfill: Bool = false) -> String {
        switch s {
        case .series(let ref): (backfill ? "backfill:" : "series:") + ref.name
        case .agent(let agent): "agent:" + agent
        case .group: "group:" + rule.name
        }
    }

    /// Applies one event of `rule` at wall time `now`.
    public mutating func apply(_ event: RuleEvent, rule: AlertRule, now: Int64, location: AlertRule.Point?, site: String? = nil) {
        let subject = Self.subject(event.subject, rule: rule, backfill: event.backfill)
        let key = subject + "|" + rule.name
        switch event.edge {
        case .raise(let at, let value):
            if var alert = open[key] {  // already open (restored): one alert per subject
                alert.value = value
                alert.updatedAt = at
                record(&alert, key: key)
                return
            }
            var alert = Alert(id: Alert.makeID(rule: rule.name, subject: subject, raisedAt: at), rule: rule.name, subject: subject,
                              entityID: "", entityType: "", severity: Self.severity(rule, value), value: value, raisedAt: at)
            switch event.subject {
            case .series(let ref):
                alert.entityID = ref.entityID
                alert.entityType = ref.entityType ?? "DeviceMeasurement"
                alert.agent = ref.agent
                alert.attribute = ref.attribute
                alert.unit = ref.unit
            case .agent(let agent):
                alert.entityID = "urn:ngsi-ld:Device:\(agent)"
                alert.entityType = "Device"
                alert.agent = agent
            case .group(let agents):
                alert.entityID = "urn:ngsi-ld:Device:" + (agents.first ?? "")
                alert.entityType = "Device"
                alert.members = agents
            }
            alert.location = location
            alert.site = site
            alert.late = event.backfill || now - at > lateAfter
            alert.sentValueAt = at
            send(.alert, &alert, now: now)
            open[key] = alert
            record(&alert, key: key)
        case .hold(let at, let value, let reraised):
            guard var alert = open[key] else { return }
            let severity = Self.severity(rule, value)
            alert.value = value
            alert.peak = Self.risingIsWorse(rule) ? max(alert.peak, value) : min(alert.peak, value)
            alert.updatedAt = at
            if case .group(let agents) = event.subject { alert.members = agents }
            if reraised { alert.count += 1 }
            let due = at - alert.sentValueAt >= rule.updateEveryMilliseconds
            if severity != alert.severity || reraised || due || event.subject.isGroup {
                alert.severity = max(alert.severity, severity)
                alert.sentValueAt = at
                send(.update, &alert, now: now)
                open[key] = alert
                record(&alert, key: key)
            } else {
                open[key] = alert
            }
        case .clear(let at, let value):
            guard var alert = open.removeValue(forKey: key) else { return }
            alert.value = event.subject.isSeries ? value : alert.value
            alert.status = .cleared
            alert.clearedAt = at
            alert.updatedAt = at
            send(.cancel, &alert, now: now)
            record(&alert, key: key)
        }
    }

    /// An operator acknowledged an open alert; nil when no open alert has this id.
    public mutating func acknowledge(_ id: String, by who: String, now: Int64) -> Alert? {
        guard let key = open.first(where: { $0.value.id == id })?.key, var alert = open[key] else { return nil }
        guard alert.acknowledgedAt == nil else { return alert }
        alert.acknowledgedAt = now
        alert.acknowledgedBy = who
        send(.update, &alert, now: now)
        open[key] = alert
        record(&alert, key: key)
        return alert
    }

    /// The alerts changed and the messages to send since the last drain, folded (see above).
    public mutating func drain() -> (alerts: [Alert], messages: [AlertMessage]) {
        defer {
            pending.removeAll(keepingCapacity: true)
            changed.removeAll(keepingCapacity: true)
        }
        var byAlert: [String: [Pending]] = [:]
        var order: [String] = []
        for p in pending {
            if byAlert[p.alert.id] == nil { order.append(p.alert.id) }
            byAlert[p.alert.id, default: []].append(p)
        }
        var out: [AlertMessage] = []
        for id in order {
            let list = byAlert[id]!
            var chosen: [Pending] = []
            if list.first?.kind == .alert, list.last?.kind == .cancel, list.last!.alert.late {
                // One message: the episode as a whole (its peak, its times), already over.
                var only = list[0]
                only.alert = list.last!.alert
                chosen = [only]
            } else {
                // Updates followed by more messages are superseded by them.
                for (i, p) in list.enumerated() where !(p.kind == .update && i + 1 < list.count) { chosen.append(p) }
            }
            // Ids are given to the messages actually sent: an alert's messages are <id>.0, .1, … without gaps.
            guard var current = changed[id] else { continue }
            for p in chosen {
                let ref = Alert.MessageRef(id: "\(id).\(current.revision)", sent: p.sent)
                var references: [Alert.MessageRef] = []
                if let first = current.firstMessage { references.append(first) }
                if let last = current.lastMessage, last != current.firstMessage { references.append(last) }
                current.revision += 1
                if current.firstMessage == nil { current.firstMessage = ref }
                current.lastMessage = ref
                var snapshot = p.alert
                (snapshot.revision, snapshot.firstMessage, snapshot.lastMessage) = (current.revision, current.firstMessage, current.lastMessage)
                out.append(AlertMessage(kind: p.kind, alert: snapshot, id: ref.id, sent: p.sent, references: references))
            }
            changed[id] = current
            let key = current.subject + "|" + current.rule
            if open[key]?.id == id {
                (open[key]!.revision, open[key]!.firstMessage, open[key]!.lastMessage) = (current.revision, current.firstMessage, current.lastMessage)
            }
        }
        return (changed.values.sorted { $0.updatedAt < $1.updatedAt || ($0.updatedAt == $1.updatedAt && $0.id < $1.id) }, out)
    }

    struct Pending: Sendable {
        var kind: AlertMessage.Kind
        var alert: Alert
        var sent: Int64
    }

    private mutating func send(_ kind: AlertMessage.Kind, _ alert: inout Alert, now: Int64) {
        pending.append(Pending(kind: kind, alert: alert, sent: now))
    }

    private mutating func record(_ alert: inout Alert, key: String) { changed[alert.id] = alert }

    /// Whether a higher figure is a worse one for this rule.
    static func risingIsWorse(_ rule: AlertRule) -> Bool {
        switch rule.condition {
        case .threshold(let above, _, _), .mean(_, let above, _, _): above
        case .rate(_, let raise, _): raise >= 0
        default: true
        }
    }

    static func severity(_ rule: AlertRule, _ value: Double) -> AlertRule.Severity {
        guard let e = rule.escalation else { return rule.severity }
        let past: Bool
        switch rule.condition {
        case .threshold(let above, _, _), .mean(_, let above, _, _): past = above ? value >= e.value : value <= e.value
        case .rate(_, let raise, _): past = raise >= 0 ? value >= e.value : value <= e.value
        default: past = value >= e.value
        }
        return past ? max(rule.severity, e.severity) : rule.severity
    }
}

extension RuleEvent.Subject {
    var isGroup: Bool { if case .group = self { true } else { false } }
    var isSeries: Bool { if case .series = self { true } else { false } }
}
