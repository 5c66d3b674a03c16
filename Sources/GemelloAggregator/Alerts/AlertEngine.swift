import GemelloCore
import GemelloRules
import GemelloStorage
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Rules over the twin's streams, alerts in the twin store, messages to the Control Room's sinks.
///
/// - Series conditions are judged inside each ingest transaction (``ingesting(_:)`` around the
///   store's ingest, ``Pass/evaluate(_:now:db:)`` in it), in observation order per series: the
///   alerts they raise, update or clear, the messages for every sink and the SDM `Alert` entities'
///   notifications commit with the batch or not at all (then the batch is resent and judged again).
/// - `silent` and the fleet conditions are judged every second (``run()``) and on fleet
///   transitions (``fleetChanged(_:)``), in transactions of their own.
/// - At start the open alerts are read back and the windows of the series conditions are
///   filled again from the history (their `window` + `for` + `clear-for` before each series'
///   newest reading), so a restart neither raises an open alert twice nor forgets a mean.
///
/// One lock orders all of it (taken before the store's, never inside it).
public final class AlertEngine: Service {
    let store: TwinStore
    let configuration: AlertsConfiguration
    public let outbox: AlertOutbox
    let projection: TwinProjection?
    let counters: IngestCounters?
    let metrics: AlertMetrics?
    let clock: any WallClock
    let logger: Logger
    let startedAt: Int64
    /// The comuni (alerts.geodata): areas by name, ISTAT geocodes.
    let areas: AreaIndex?
    /// One of a share group: other aggregators judge some of the same agents' readings.
    let shared: Bool
    private let state: Mutex<State>

    struct State: Sendable {
        var set: RuleSet
        var rules: [String: AlertRule]
        var engine: RuleEngine
        var book: AlertBook
        /// agent → series name → ref; agent → site.
        var series: [String: [String: SeriesRef]] = [:]
        var sites: [String: SiteInfo] = [:]
        /// Share group: each agent's `alert_version` as this aggregator last left it.
        var versions: [String: Int64] = [:]

        init(_ set: RuleSet) {
            self.set = set
            rules = Dictionary(set.rules.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            engine = RuleEngine(rules: set.rules)
            book = AlertBook(lateAfter: set.lateAfterMilliseconds)
        }
    }

    struct SiteInfo: Sendable {
        var name: String?
        var location: AlertRule.Point?
        /// The comune it lies in.
        var area: AreaIndex.Area?
    }

    public init(store: TwinStore, configuration: AlertsConfiguration, projection: TwinProjection?, counters: IngestCounters?,
                metrics: AggregatorMetrics?, shared: Bool = false, clock: any WallClock = SystemWallClock(),
                logger: Logger) throws(AggregatorError) {
        self.store = store
        self.shared = shared
        self.configuration = configuration
        self.projection = projection
        self.counters = counters
        self.metrics = metrics?.alerts()
        self.clock = clock
        self.logger = logger
        startedAt = clock.nowMilliseconds()
        if let path = configuration.geodata {
            do { areas = try AreaIndex.load(path: path) } catch {
                throw AggregatorError(.configuration, "alerts.geodata: \(error)")
            }
        } else {
            areas = nil
        }
        var set = RuleSet(rules: [])
        if let path = configuration.rulesPath {
            do { set = try RuleSet.load(path: path, areas: areas) } catch {
                throw AggregatorError(.configuration, "alerts.rules: \(error)")
            }
            if shared, let refused = Self.notShared(set) { throw AggregatorError(.configuration, "alerts.rules: \(refused)") }
        }
        outbox = try AlertOutbox(sinks: configuration.sinks, cap: configuration.cap, metrics: metrics, store: store)
        state = Mutex(State(set))
        try state.withLock { s throws(AggregatorError) in try self.restore(&s) }
        if let projection {
            let rules = state.withLock { $0.rules }
            projection.loadAlerts(try store.alerts(includeCleared: true, limit: 10_000), rules: rules)
        }
        self.metrics?.open.record(state.withLock { $0.book.open.count })
    }

    public var rules: [AlertRule] { state.withLock { $0.set.rules } }

    // MARK: ingest

    /// What one transaction changed, applied to the engine once it committed.
    final class Pass {
        var state: State
        let engine: AlertEngine
        var added = AlertOutbox.Added()
        var entities: [TwinProjection.PreparedAlerts] = []
        var raised = 0, cleared = 0

        init(_ state: State, engine: AlertEngine) {
            self.state = state
            self.engine = engine
        }

        /// Judges the stored batches' readings (inside the ingest transaction).
        func evaluate(_ batches: [Batch], now: Int64, db: any StoreConnection) throws {
            guard !state.set.rules.isEmpty else { return }
            if engine.shared {
                // Each agent's row is locked (the ingest locked it): take over its rule state if
                // another member judged it since this one did.
                var current: [String: Set<SeriesChunk.Source>] = [:]
                for batch in batches {
                    current[batch.agentID, default: []].insert(SeriesChunk.Source(epoch: batch.bootEpoch, sequence: batch.sequence, committedAt: 0))
                }
                for agent in current.keys.sorted() { try claim(agent, excluding: current[agent]!, now: now, db: db) }
            }
            var events: [RuleEvent] = []
            var judged: [(agent: String, name: String, slot: Int)] = []
            for batch in batches {
                let refs = try self.refs(batch, db: db)
                // Each series' readings in observation order (a batch keeps them in arrival order).
                var order = Array(0..<batch.count)
                order.sort { (batch.seriesIndex[$0], batch.timestamps[$0], $0) < (batch.seriesIndex[$1], batch.timestamps[$1], $1) }
                var start = 0
                while start < order.count {
                    let s = batch.seriesIndex[order[start]]
                    var end = start
                    while end < order.count && batch.seriesIndex[order[end]] == s { end += 1 }
                    let slot = state.engine.slot(refs[Int(s)], now: now)
                    if state.engine.watches(slot) {
                        if engine.shared { judged.append((batch.agentID, batch.series[Int(s)].name, slot)) }
                        let run = order[start..<end]
                        state.engine.observe(slot, times: run.lazy.map { batch.millisecondTimestamp($0) }, values: run.lazy.map { batch.values[$0] },
                                             now: now, into: &events)
                    }
                    start = end
                }
            }
            // Share group: how far each series was judged, for a member that takes the agent over.
            for (agent, name, slot) in judged {
                guard let mark = state.engine.watermark(slot) else { continue }
                try db.send("UPDATE series SET alert_watermark = ? WHERE agent_id = ? AND name = ?", [.integer(mark), .text(agent), .text(name)])
            }
            try apply(events, now: now, db: db)
        }

        /// Share group: the agent's rule state is this member's if its `alert_version` is the one
        /// this member left; otherwise it is read back from the store: its open alerts, and each
        /// series' windows from the history up to where it was judged (`series.alert_watermark`),
        /// leaving out the batches of this transaction (`excluding`, not judged yet). Then bumped.
        func claim(_ agent: String, excluding: Set<SeriesChunk.Source>, now: Int64, db: any StoreConnection) throws {
            let version = try db.scalarInt("SELECT alert_version FROM agents WHERE id = ?", [.text(agent)]) ?? 0
            if state.versions[agent] != version { try rebuild(agent, excluding: excluding, now: now, db: db) }
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

        func refs(_ batch: Batch, db: any StoreConnection) throws -> [SeriesRef] {
            var known = state.series[batch.agentID] ?? [:]
            if batch.series.contains(where: { known[$0.name] == nil }) {
                var types: [String: String] = [:]
                let rows = try db.query("SELECT sensor_id, entity_type FROM sensors WHERE agent_id = ?", [.text(batch.agentID)])
                while try rows.step() { types[rows.text(0)] = rows.text(1) }
                for info in batch.series where known[info.name] == nil {
                    known[info.name] = SeriesRef(agent: batch.agentID, sensor: String(info.sensor), attribute: String(info.attribute),
                                                 entityType: types[String(info.sensor)] ?? "DeviceMeasurement", unit: info.unit)
                }
                state.series[batch.agentID] = known
            }
            return batch.series.map { known[$0.name]! }
        }

        func site(_ agent: String?, db: any StoreConnection) throws -> SiteInfo? {
            guard let agent else { return nil }
            if let site = state.sites[agent] { return site }
            let rows = try db.query("SELECT site_id, latitude, longitude FROM agents WHERE id = ?", [.text(agent)])
            var site = SiteInfo()
            if try rows.step() {
                site.name = rows.optionalText(0)
                if let lat = rows.optionalDouble(1), let lon = rows.optionalDouble(2) { site.location = .init(latitude: lat, longitude: lon) }
            }
            site.area = site.location.flatMap { engine.areas?.containing($0) }
            state.sites[agent] = site
            return site
        }

        /// Events into alerts and messages, written through `db`.
        func apply(_ events: [RuleEvent], now: Int64, db: any StoreConnection) throws {
            guard !events.isEmpty else { return }
            for event in events {
                let agent: String?
                switch event.subject {
                case .series(let ref): agent = ref.agent
                case .agent(let id): agent = id
                case .group(let ids): agent = ids.first
                }
                let site = try site(agent, db: db)
                state.book.apply(event, rule: state.engine.rules[event.rule], now: now, location: site?.location, site: site?.name,
                                 area: site?.area)
            }
            try record(now: now, db: db)
        }

        /// Writes what the lifecycle changed: the alerts, their messages for every sink, the twin's entities.
        func record(now: Int64, db: any StoreConnection) throws {
            let (alerts, messages) = state.book.drain()
            guard !alerts.isEmpty || !messages.isEmpty else { return }
            try TwinStore.write(alerts, now: now, in: db)
            let added = try engine.outbox.enqueue(messages, rules: state.rules, now: now, in: db)
            for (sink, n) in added.counts { self.added.counts[sink, default: 0] += n }
            for (sink, n) in added.dropped { self.added.dropped[sink, default: 0] += n }
            if let projection = engine.projection {
                entities.append(try projection.prepareAlerts(alerts, rules: state.rules, in: db))
            }
            raised += messages.filter { $0.kind == .alert }.count
            cleared += alerts.filter { $0.status == .cleared }.count
            for m in messages {
                let level: Logger.Level = m.kind == .cancel ? .info : .notice
                engine.logger.log(level: level, "alert \(m.kind == .alert ? "raised" : m.kind == .cancel ? "cleared" : "updated")", metadata: [
                    "alert": "\(m.alert.id)", "rule": "\(m.alert.rule)", "subject": "\(m.alert.subject)",
                    "value": "\(AlertText.number(m.alert.value))", "severity": "\(m.alert.severity.rawValue)", "late": "\(m.alert.late)"])
            }
        }
    }

    /// Runs `body` (a transaction that may call ``Pass/evaluate(_:now:db:)``) holding the engine;
    /// what the pass changed is kept only when `body` returns (its transaction committed).
    ///
    /// The pass owns the state while it runs (the lock's copy is let go, so a window of a day of
    /// readings is appended to in place, not copied per transaction); when `body` fails the state is
    /// rebuilt from the store (its open alerts, the windows from the history), as at a start.
    func ingesting<T: Sendable>(_ body: (Pass) throws -> T) throws -> T {
        let (result, done) = try state.withLock { s throws -> (T, Committed) in
            let pass = Pass(s, engine: self)
            s = State(s.set)
            do {
                let result = try body(pass)
                s = pass.state
                return (result, Committed(added: pass.added, entities: pass.entities, raised: pass.raised, cleared: pass.cleared,
                                          open: s.book.open.count))
            } catch {
                s = State(pass.state.set)
                do { try restore(&s) } catch let failure {
                    logger.error("cannot restore the alert rules' state after a failed transaction", metadata: ["error": "\(failure)"])
                }
                throw error
            }
        }
        committed(done)
        return result
    }

    /// What a pass left to do once its transaction committed.
    struct Committed: Sendable {
        var added: AlertOutbox.Added
        var entities: [TwinProjection.PreparedAlerts]
        var raised: Int
        var cleared: Int
        var open: Int
    }

    /// After a commit: outbox counts, the twin's Alert entities, metrics.
    private func committed(_ done: Committed) {
        outbox.committed(done.added)
        for prepared in done.entities { projection?.commitAlerts(prepared) }
        metrics?.raised.increment(by: done.raised)
        metrics?.cleared.increment(by: done.cleared)
        if done.raised > 0 || done.cleared > 0 { metrics?.open.record(done.open) }
    }

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

    /// `silent` and the fleet's grouping windows, at `now`.
    func tick(now: Int64) {
        let heardSince = max(startedAt, counters?.hearing(now: now).since ?? startedAt)
        let needed = state.withLock { s in s.set.rules.contains { if case .silent = $0.condition { true } else { $0.condition.isFleet } } }
        guard needed else { return }
        do {
            try ingesting { pass in
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
