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
    /// Messages made in this pass: what changed (the alert itself is read at the drain).
    private var pending: [Pending] = []
    /// Alerts changed in this pass: id → key of `open`; those cleared in it (no longer in `open`) by id.
    private var touched: [String: String] = [:]
    private var touchOrder: [String] = []
    private var closed: [String: Alert] = [:]

    public init(lateAfter: Int64 = 300_000) { self.lateAfter = lateAfter }

    /// Restores an alert that is open in the store.
    public mutating func restore(_ alert: Alert) { open[alert.subject + "|" + alert.rule] = alert }

    /// Drops the open alerts `which` selects (before reading them back from the store).
    public mutating func forget(where which: (Alert) -> Bool) {
        for (key, alert) in open where which(alert) { open[key] = nil }
    }

    public static func subject(_ s: RuleEvent.Subject, rule: AlertRule, backfill: Bool = false) -> String {
        switch s {
        case .series(let ref): (backfill ? "backfill:" : "series:") + ref.name
        case .agent(let agent): "agent:" + agent
        case .group: "group:" + rule.name
        }
    }

    /// What a message says that can change while an alert is open (the rest is read at the drain).
    struct Pending: Sendable {
        var kind: AlertMessage.Kind
        var id: String
        var sent: Int64
        var value: Double
        var peak: Double
        var severity: AlertRule.Severity
        var count: Int
        var updatedAt: Int64
        var members: [String]

        init(_ kind: AlertMessage.Kind, _ a: Alert, sent: Int64) {
            self.kind = kind
            id = a.id
            self.sent = sent
            (value, peak, severity, count, updatedAt, members) = (a.value, a.peak, a.severity, a.count, a.updatedAt, a.members)
        }

        func apply(to a: inout Alert) {
            (a.value, a.peak, a.severity, a.count, a.updatedAt, a.members) = (value, peak, severity, count, updatedAt, members)
        }
    }

    /// Applies one event of `rule` at wall time `now`.
    public mutating func apply(_ event: RuleEvent, rule: AlertRule, now: Int64, location: AlertRule.Point?, site: String? = nil,
                               area: AreaIndex.Area? = nil) {
        let subject = Self.subject(event.subject, rule: rule, backfill: event.backfill)
        let key = subject + "|" + rule.name
        switch event.edge {
        case .raise(let at, let value):
            if open[key] != nil {  // already open (restored): one alert per subject
                open[key]!.value = value
                open[key]!.updatedAt = at
                touch(open[key]!.id, key)
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
            (alert.geocode, alert.areaName) = (area?.code, area?.name)
            alert.late = event.backfill || now - at > lateAfter
            alert.sentValueAt = at
            pending.append(Pending(.alert, alert, sent: now))
            touch(alert.id, key)
            open[key] = alert
        case .hold(let at, let value, let reraised):
            guard open[key] != nil else { return }
            let severity = Self.severity(rule, value)
            let send = Self.hold(&open[key]!, at: at, value: value, reraised: reraised, severity: severity, peak: event.peak, rule: rule,
                                 members: { if case .group(let agents) = event.subject { agents } else { nil } }())
            if send {
                pending.append(Pending(.update, open[key]!, sent: now))
                touch(open[key]!.id, key)
            }
        case .clear(let at, let value):
            guard var alert = open.removeValue(forKey: key) else { return }
            alert.value = event.subject.isSeries ? value : alert.value
            if let peak = event.peak { alert.peak = peak }
            alert.status = .cleared
            alert.clearedAt = at
            alert.updatedAt = at
            pending.append(Pending(.cancel, alert, sent: now))
            touch(alert.id, key)
            closed[alert.id] = alert
        }
    }

    /// A raised alert's new figure, in place; whether it is worth a message.
    private static func hold(_ alert: inout Alert, at: Int64, value: Double, reraised: Bool, severity: AlertRule.Severity, peak: Double?,
                             rule: AlertRule, members: [String]?) -> Bool {
        alert.value = value
        alert.peak = peak ?? (risingIsWorse(rule) ? max(alert.peak, value) : min(alert.peak, value))
        alert.updatedAt = at
        if let members { alert.members = members }
        if reraised { alert.count += 1 }
        let due = at - alert.sentValueAt >= rule.updateEveryMilliseconds
        guard severity != alert.severity || reraised || due || members != nil else { return false }
        alert.severity = max(alert.severity, severity)
        alert.sentValueAt = at
        return true
    }

    private mutating func touch(_ id: String, _ key: String) {
        if touched.updateValue(key, forKey: id) == nil { touchOrder.append(id) }
    }

    /// An operator acknowledged an open alert; nil when no open alert has this id.
    public mutating func acknowledge(_ id: String, by who: String, now: Int64) -> Alert? {
        guard let key = open.first(where: { $0.value.id == id })?.key else { return nil }
        guard open[key]!.acknowledgedAt == nil else { return open[key] }
        open[key]!.acknowledgedAt = now
        open[key]!.acknowledgedBy = who
        pending.append(Pending(.update, open[key]!, sent: now))
        touch(id, key)
        return open[key]
    }

    /// The alerts changed and the messages to send since the last drain, folded (see above).
    public mutating func drain() -> (alerts: [Alert], messages: [AlertMessage]) {
        defer {
            pending.removeAll(keepingCapacity: true)
            touched.removeAll(keepingCapacity: true)
            touchOrder.removeAll(keepingCapacity: true)
            closed.removeAll(keepingCapacity: true)
        }
        var byAlert: [String: [Int]] = [:]
        for (i, p) in pending.enumerated() { byAlert[p.id, default: []].append(i) }
        var alerts: [Alert] = []
        var out: [AlertMessage] = []
        for id in touchOrder {
            guard let key = touched[id] else { continue }
            let inOpen = open[key]?.id == id
            guard var current = inOpen ? open[key] : closed[id] else { continue }
            let list = byAlert[id] ?? []
            var chosen: [(index: Int, final: Bool)] = []
            if let first = list.first, let last = list.last, pending[first].kind == .alert, pending[last].kind == .cancel, current.late {
                // One message: the episode as a whole (its peak, its times), already over.
                chosen = [(first, true)]
            } else {
                // Updates followed by more messages are superseded by them.
                for (n, i) in list.enumerated() where !(pending[i].kind == .update && n + 1 < list.count) { chosen.append((i, false)) }
            }
            // Ids are given to the messages actually sent: an alert's messages are <id>.0, .1, … without gaps.
            for (i, final) in chosen {
                let p = pending[i]
                let ref = Alert.MessageRef(id: "\(id).\(current.revision)", sent: p.sent)
                var references: [Alert.MessageRef] = []
                if let first = current.firstMessage { references.append(first) }
                if let last = current.lastMessage, last != current.firstMessage { references.append(last) }
                current.revision += 1
                if current.firstMessage == nil { current.firstMessage = ref }
                current.lastMessage = ref
                var snapshot = current
                if !final {
                    p.apply(to: &snapshot)
                    if p.kind != .cancel { (snapshot.status, snapshot.clearedAt) = (.open, nil) }
                }
                out.append(AlertMessage(kind: p.kind, alert: snapshot, id: ref.id, sent: p.sent, references: references))
            }
            if inOpen { (open[key]!.revision, open[key]!.firstMessage, open[key]!.lastMessage) = (current.revision, current.firstMessage, current.lastMessage) }
            alerts.append(current)
        }
        alerts.sort { $0.updatedAt < $1.updatedAt || ($0.updatedAt == $1.updatedAt && $0.id < $1.id) }
        return (alerts, out)
    }

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
