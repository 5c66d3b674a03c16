import GemelloCore
import GemelloRules
import GemelloStorage
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// What the engine does besides judging ingest: fleet transitions, `silent` ticks, operators'
/// acknowledgements, SIGHUP reloads, and its service loop.
extension AlertEngine {
    // MARK: fleet, ticks, operators

    /// Fleet transitions (already committed by the fleet registry).
    public func fleetChanged(_ changes: [FleetTransition]) {
        let relevant = changes.filter { $0.to != .stale }
        guard !relevant.isEmpty, state.withLock({ $0.set.rules.contains { $0.condition.isFleet } }) else { return }
        let now = clock.nowMilliseconds()
        do {
            try ingesting { pass in
                try store.writing { db in
                    var events: [RuleEvent] = []
                    for change in relevant {
                        if change.to == .online { pass.state.sites[change.agentID] = nil }  // a birth may move the site
                        let location = try pass.site(change.agentID, db: db)?.location
                        pass.state.engine.agent(change.agentID, offline: change.to == .offline, planned: change.reason == "goodbye",
                                                at: now, location: location, into: &events)
                    }
                    try pass.apply(events, now: now, db: db)
                }
            }
        } catch {
            logger.error("cannot record fleet alerts", metadata: ["error": "\(error)"])
        }
    }

    /// A birth: the agent's sensors (entity types) or site may have changed.
    public func agentBorn(_ agent: String) {
        state.withLock { s in
            s.series[agent] = nil
            s.sites[agent] = nil
        }
    }

    /// `silent`, the fleet's grouping windows and backlog episodes gone quiet, at `now`.
    func tick(now: Int64) {
        let heardSince = max(startedAt, counters?.hearing(now: now).since ?? startedAt)
        let needed = state.withLock { s in
            s.set.rules.contains { if case .silent = $0.condition { true } else { $0.condition.isFleet } }
                || !s.engine.backfillsDue(now: now).isEmpty
        }
        guard needed else { return }
        do {
            try ingesting { pass in
                let due = pass.state.engine.backfillsDue(now: now).sorted()
                if shared && !due.isEmpty {
                    // Share group: another member may have judged these agents since this one did.
                    // Catch up from the store first (rows locked, state read back): what is due then
                    // is the group's backlog, not a stale copy of it. Only an agent whose episode this
                    // member then closes is marked as judged here (bumped): catching up alone leaves
                    // the member that judged the backlog current, so two members never take turns
                    // resetting each other's settle clock.
                    try store.writing { db in
                        try TwinStore.lockAgents(due, db)
                        for agent in due { try pass.catchUp(agent, excluding: [], now: now, db: db) }
                        var events: [RuleEvent] = []
                        pass.state.engine.tick(now: now, heardSince: heardSince, into: &events)
                        let closing = Set(events.compactMap { event -> String? in
                            if case .series(let ref) = event.subject { ref.agent } else { nil }
                        })
                        for agent in closing.sorted() { try pass.bump(agent, db: db) }
                        try pass.apply(events, now: now, db: db)
                    }
                    return
                }
                var events: [RuleEvent] = []
                pass.state.engine.tick(now: now, heardSince: heardSince, into: &events)
                guard !events.isEmpty else { return }
                try store.writing { db in try pass.apply(events, now: now, db: db) }
            }
        } catch {
            logger.error("cannot record alerts", metadata: ["error": "\(error)"])
        }
    }

    /// An operator acknowledged an alert; nil when there is no such alert. An acknowledged alert
    /// stays open until its condition clears.
    public func acknowledge(_ id: String, by who: String) throws(AggregatorError) -> Alert? {
        let now = clock.nowMilliseconds()
        var found: Alert?
        do {
            try ingesting { pass in
                try store.writing { db in
                    var owner: String?
                    if shared {
                        let found = try db.query("SELECT agent_id FROM alerts WHERE id = ? AND status = 'open'", [.text(id)])
                        if try found.step() { owner = found.optionalText(0) }
                    }
                    if let agent = owner {
                        // Another member may hold this agent's state: lock its row, read it back, bump its version.
                        try TwinStore.lockAgents([agent], db)
                        try pass.claim(agent, excluding: [], now: now, db: db)
                    }
                    guard let alert = pass.state.book.acknowledge(id, by: who, now: now) else { return }
                    found = alert
                    try pass.record(now: now, db: db)
                }
            }
        } catch {
            throw AggregatorError(.store, "cannot acknowledge alert \(id): \(error)")
        }
        if let found { return found }
        return try store.alert(id: id)
    }

    /// Reads the rules file again (SIGHUP). An invalid file keeps the rules running and says why.
    /// Open alerts of a rule that is gone are cleared.
    @discardableResult
    public func reload() -> Bool {
        guard let path = configuration.rulesPath else { return false }
        let set: RuleSet
        do { set = try RuleSet.load(path: path, areas: areas) } catch {
            logger.error("rules not reloaded: the file is invalid; the previous rules keep running",
                         metadata: ["file": "\(path)", "error": "\(error)"])
            return false
        }
        if shared, let refused = Self.notShared(set) {
            logger.error("rules not reloaded; the previous rules keep running", metadata: ["file": "\(path)", "error": "\(refused)"])
            return false
        }
        let now = clock.nowMilliseconds()
        do {
            try ingesting { pass in
                var gone: [Alert] = []
                try store.writing { db in
                    let names = Set(set.rules.map(\.name))
                    gone = pass.state.book.open.values.filter { !names.contains($0.rule) }
                    let previous = pass.state.rules  // the gone rules' texts, for their last messages
                    var fresh = State(set)
                    fresh.sites = pass.state.sites
                    pass.state = fresh
                    try restore(&pass.state, db: db)
                    // A rule that is gone clears its alerts: they will never be judged again.
                    var messages: [AlertMessage] = []
                    var alerts: [Alert] = []
                    for var alert in gone {
                        alert.status = .cleared
                        alert.clearedAt = now
                        alert.updatedAt = now
                        let ref = Alert.MessageRef(id: "\(alert.id).\(alert.revision)", sent: now)
                        var references = alert.firstMessage.map { [$0] } ?? []
                        if let last = alert.lastMessage, last != alert.firstMessage { references.append(last) }
                        alert.revision += 1
                        if alert.firstMessage == nil { alert.firstMessage = ref }
                        alert.lastMessage = ref
                        messages.append(AlertMessage(kind: .cancel, alert: alert, id: ref.id, sent: now, references: references))
                        alerts.append(alert)
                    }
                    try TwinStore.write(alerts, now: now, in: db)
                    pass.added = try outbox.enqueue(messages, rules: previous, now: now, in: db)
                    if let projection, !alerts.isEmpty { pass.entities.append(try projection.prepareAlerts(alerts, rules: previous, in: db)) }
                }
                logger.notice("rules reloaded", metadata: ["file": "\(path)", "rules": "\(set.rules.count)", "cleared": "\(gone.count)"])
            }
            return true
        } catch {
            logger.error("rules not reloaded", metadata: ["file": "\(path)", "error": "\(error)"])
            return false
        }
    }

    /// Share groups judge series rules only: `silent` and the fleet conditions need every member's
    /// view of every agent (not built); the first such rule, as an error, or nil.
    static func notShared(_ set: RuleSet) -> String? {
        guard let rule = set.rules.first(where: { if case .silent = $0.condition { true } else { $0.condition.isFleet } }) else { return nil }
        return "rule '\(rule.name)': silent and fleet rules are not judged in a share group yet (ingest.share-group). "
            + "Fix: keep them out of the members' rules (docs/alerts.md, 'Not built')"
    }

    public func run() async throws {
        var lastPrune: Int64 = 0
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [weak self] in
                for await _ in await UnixSignalsSequence(trapping: .sighup) { self?.reload() }
            }
            var lastShared = clock.nowMilliseconds()
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let now = clock.nowMilliseconds()
                tick(now: now)
                if shared, let projection {
                    // What the other members changed shows in this member's twin too (5 s overlap:
                    // their transactions may commit after the time they wrote).
                    if let changed = try? store.alerts(changedSince: lastShared - 5000), !changed.isEmpty {
                        projection.loadAlerts(changed, rules: state.withLock { $0.rules })
                    }
                    lastShared = now
                }
                if now - lastPrune > 3_600_000 {
                    lastPrune = now
                    do {
                        let n = try store.pruneAlerts(clearedBefore: now - configuration.keepCleared.wholeMilliseconds)
                        if n > 0 { logger.info("cleared alerts pruned", metadata: ["alerts": "\(n)"]) }
                    } catch {
                        logger.warning("cannot prune cleared alerts", metadata: ["error": "\(error)"])
                    }
                }
                do { try await Task.sleep(for: .seconds(1)) } catch { break }
            }
            group.cancelAll()
        }
    }
}
