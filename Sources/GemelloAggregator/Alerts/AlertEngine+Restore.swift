import GemelloCore
import GemelloRules
import GemelloStorage

extension AlertEngine {
    /// At start (and after a reload): the open alerts back into the lifecycle, the series
    /// conditions' windows filled from the history, the fleet's offline agents.
    func restore(_ s: inout State) throws(AggregatorError) {
        do {
            try store.writing { db in try restore(&s, db: db) }
        } catch {
            throw AggregatorError(.store, "cannot restore the alerts: \(error)")
        }
    }

    func restore(_ s: inout State, db: any StoreConnection) throws {
        let now = clock.nowMilliseconds()
        let rows = try db.query("SELECT \(TwinStore.alertColumns) FROM alerts WHERE status = 'open'")
        var open: [Alert] = []
        while try rows.step() { open.append(TwinStore.alert(rows)) }
        guard !s.set.rules.isEmpty else { return }
        let index = Dictionary(s.set.rules.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        // Every series with a rule on it: its windows from the history (events discarded: they were judged before).
        let windowed = s.set.rules.filter(\.condition.isSeries)
        var types: [String: String] = [:]
        let sensors = try db.query("SELECT agent_id, sensor_id, entity_type FROM sensors")
        while try sensors.step() { types[sensors.text(0) + "/" + sensors.text(1)] = sensors.text(2) }
        let series = try db.query("SELECT id, agent_id, name, unit, latest_ts FROM series WHERE latest_ts IS NOT NULL")
        var all: [(id: Int64, ref: SeriesRef, latest: Int64)] = []
        while try series.step() {
            let info = SeriesInfo(name: series.text(2), unit: series.text(3))
            let agent = series.text(1)
            let ref = SeriesRef(agent: agent, sensor: String(info.sensor), attribute: String(info.attribute),
                                entityType: types[agent + "/" + info.sensor] ?? "DeviceMeasurement", unit: info.unit)
            all.append((series.int64(0), ref, series.int64(4)))
        }
        var discarded: [RuleEvent] = []
        for (id, ref, latest) in all {
            let slot = s.engine.slot(ref, now: now)
            let span = windowed.filter { $0.match.matches(agent: ref.agent, sensor: Substring(ref.sensor), attribute: Substring(ref.attribute),
                                                          entityType: ref.entityType) }
                .map { $0.condition.window + $0.forMilliseconds + $0.clearForMilliseconds }.max()
            guard let span, span > 0, s.engine.watches(slot) else { continue }
            guard let points = try HistoryStore.points(series: id, in: (latest - span)...latest, db: db) else { continue }
            s.engine.observe(slot, times: points.timestamps, values: points.values, now: now, into: &discarded)
        }
        // What is open stays open (and is not raised again); what is not, is not.
        s.engine.resetActive()
        for alert in open {
            guard let rule = index[alert.rule] else { continue }  // a rule that is gone: cleared by reload()
            s.book.restore(alert)
            if alert.subject.hasPrefix("backfill:") {
                let parts = alert.subject.dropFirst("backfill:".count).split(separator: "/", maxSplits: 2).map(String.init)
                guard parts.count == 3 else { continue }
                let ref = SeriesRef(agent: parts[0], sensor: parts[1], attribute: parts[2], entityType: alert.entityType, unit: alert.unit ?? "")
                if shared {
                    // Share group: another member may still be judging that backlog; the episode
                    // goes on, closed by whoever holds the agent once it is quiet (tick(now:)).
                    s.engine.restoreBackfill(rule: rule, series: ref, at: alert.updatedAt, now: now)
                    continue
                }
                // A backlog's episode: what judged it is gone with the process, so it ends where it was
                // last seen (its Cancel goes out with the first pass after the start).
                s.book.apply(RuleEvent(rule: rule, subject: .series(ref), edge: .clear(at: alert.updatedAt, value: alert.value), backfill: true),
                             rule: s.set.rules[rule], now: now, location: alert.location, site: alert.site)
            } else if alert.subject.hasPrefix("series:") {
                let parts = alert.subject.dropFirst("series:".count).split(separator: "/", maxSplits: 2).map(String.init)
                guard parts.count == 3 else { continue }
                let ref = SeriesRef(agent: parts[0], sensor: parts[1], attribute: parts[2], entityType: alert.entityType, unit: alert.unit ?? "")
                s.engine.restore(rule: rule, subject: .series(ref), active: true)
            } else if alert.subject.hasPrefix("agent:") {
                s.engine.restore(rule: rule, subject: .agent(String(alert.subject.dropFirst("agent:".count))), active: true)
            } else {
                s.engine.restore(rule: rule, subject: .group(alert.members), active: true)
            }
        }
        // Agents offline now (a fleet rule's alert for them is either restored above or raised after its `for`).
        if s.set.rules.contains(where: \.condition.isFleet) {
            let agents = try db.query("SELECT id, latitude, longitude FROM agents WHERE status = 'offline'")
            var offline: [(String, AlertRule.Point?)] = []
            while try agents.step() {
                let location = agents.optionalDouble(1).flatMap { lat in agents.optionalDouble(2).map { AlertRule.Point(latitude: lat, longitude: $0) } }
                offline.append((agents.text(0), location))
            }
            for (id, location) in offline {
                let last = try db.query("SELECT reason FROM transitions WHERE agent_id = ? ORDER BY time DESC, id DESC LIMIT 1", [.text(id)])
                let planned = try last.step() && last.text(0) == "goodbye"
                s.engine.agent(id, offline: true, planned: planned, at: now, location: location, into: &discarded)
            }
        }
    }
}
