import GemelloCore
import GemelloRules
import GemelloStorage
import Logging

/// Share groups (docs/alerts.md, "Share groups"): a member takes an agent's rule state over
/// from the store when another member judged that agent last.
extension AlertEngine.Pass {
    /// Share group: the agent's rule state is this member's if its `alert_version` is the one
    /// this member left; otherwise it is read back from the store: its open alerts, and each
    /// series' windows from the history up to where it was judged (`series.alert_watermark`),
    /// leaving out the batches of this transaction (`excluding`, not judged yet). Then bumped.
    func claim(_ agent: String, excluding: Set<SeriesChunk.Source>, now: Int64, db: any StoreConnection) throws {
        try catchUp(agent, excluding: excluding, now: now, db: db)
        try bump(agent, db: db)
    }

    /// The first half of ``claim(_:excluding:now:db:)``: the agent's rule state read back from the
    /// store if another member judged it since this one did, without saying this member judged it
    /// (a tick that then finds nothing to do leaves the member that did judge it current).
    func catchUp(_ agent: String, excluding: Set<SeriesChunk.Source>, now: Int64, db: any StoreConnection) throws {
        let version = try db.scalarInt("SELECT alert_version FROM agents WHERE id = ?", [.text(agent)]) ?? 0
        if state.versions[agent] != version { try rebuild(agent, excluding: excluding, now: now, db: db) }
        state.versions[agent] = version
    }

    /// The second half: this member changed the agent's rule state (the agent's row is locked).
    func bump(_ agent: String, db: any StoreConnection) throws {
        let version = state.versions[agent] ?? 0
        try db.send("UPDATE agents SET alert_version = ? WHERE id = ?", [.integer(version + 1), .text(agent)])
        state.versions[agent] = version + 1
    }

    func rebuild(_ agent: String, excluding: Set<SeriesChunk.Source>, now: Int64, db: any StoreConnection) throws {
        state.book.forget { $0.agent == agent && !$0.subject.hasPrefix("agent:") && !$0.subject.hasPrefix("group:") }
        state.engine.forget(agent: agent)
        var types: [String: String] = [:]
        let sensors = try db.query("SELECT sensor_id, entity_type FROM sensors WHERE agent_id = ?", [.text(agent)])
        while try sensors.step() { types[sensors.text(0)] = sensors.text(1) }
        let rows = try db.query("SELECT id, name, unit, alert_watermark FROM series WHERE agent_id = ? AND alert_watermark IS NOT NULL",
                                [.text(agent)])
        var list: [(id: Int64, info: SeriesInfo, mark: Int64)] = []
        while try rows.step() { list.append((rows.int64(0), SeriesInfo(name: rows.text(1), unit: rows.text(2)), rows.int64(3))) }
        var discarded: [RuleEvent] = []
        for (id, info, mark) in list {
            let ref = SeriesRef(agent: agent, sensor: String(info.sensor), attribute: String(info.attribute),
                                entityType: types[String(info.sensor)] ?? "DeviceMeasurement", unit: info.unit)
            let slot = state.engine.slot(ref, now: now)
            guard state.engine.watches(slot) else { continue }
            let span = state.set.rules.filter {
                $0.condition.isSeries && $0.match.matches(agent: agent, sensor: info.sensor, attribute: info.attribute, entityType: ref.entityType)
            }.map { $0.condition.window + $0.forMilliseconds + $0.clearForMilliseconds }.max() ?? 0
            if span > 0, let points = try HistoryStore.points(series: id, in: (mark - span)...mark, db: db) {
                let judged = points.timestamps.indices.filter { i in
                    let s = points.sources[Int(points.sourceIndex[i])]
                    return !excluding.contains(SeriesChunk.Source(epoch: s.epoch, sequence: s.sequence, committedAt: 0))
                }
                state.engine.observe(slot, times: judged.map { points.timestamps[$0] }, values: judged.map { points.values[$0] },
                                     now: now, into: &discarded)
            }
            state.engine.advance(slot, to: mark)
        }
        state.engine.resetActive(agent: agent)
        let index = Dictionary(state.set.rules.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        let open = try db.query("SELECT \(TwinStore.alertColumns) FROM alerts WHERE status = 'open' AND agent_id = ?", [.text(agent)])
        while try open.step() {
            let alert = TwinStore.alert(open)
            guard let rule = index[alert.rule] else { continue }
            let backfill = alert.subject.hasPrefix("backfill:")
            guard backfill || alert.subject.hasPrefix("series:") else { continue }
            let parts = alert.subject.split(separator: ":", maxSplits: 1).last!.split(separator: "/", maxSplits: 2).map(String.init)
            guard parts.count == 3 else { continue }
            let ref = SeriesRef(agent: parts[0], sensor: parts[1], attribute: parts[2], entityType: alert.entityType, unit: alert.unit ?? "")
            state.book.restore(alert)
            if backfill {
                state.engine.restoreBackfill(rule: rule, series: ref, at: alert.updatedAt, now: now)
            } else {
                state.engine.restore(rule: rule, subject: .series(ref), active: true)
            }
        }
    }
}
