import GemelloCore
import GemelloRules
import GemelloStorage
import Logging
import ServiceLifecycle
import Synchronization

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
    let state: Mutex<State>

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
                let slots = try self.refs(batch, db: db).map { state.engine.slot($0, now: now) }
                let watched = slots.map { state.engine.watches($0) }
                guard watched.contains(true) else { continue }  // no rule on this batch's series: nothing to sort
                // The watched series' readings, each in observation order (a batch keeps them in arrival order).
                var order = (0..<batch.count).filter { watched[Int(batch.seriesIndex[$0])] }
                order.sort { (batch.seriesIndex[$0], batch.timestamps[$0], $0) < (batch.seriesIndex[$1], batch.timestamps[$1], $1) }
                var start = 0
                while start < order.count {
                    let s = Int(batch.seriesIndex[order[start]])
                    var end = start
                    while end < order.count && Int(batch.seriesIndex[order[end]]) == s { end += 1 }
                    if engine.shared { judged.append((batch.agentID, batch.series[s].name, slots[s])) }
                    let run = order[start..<end]
                    state.engine.observe(slots[s], times: run.lazy.map { batch.millisecondTimestamp($0) }, values: run.lazy.map { batch.values[$0] },
                                         now: now, into: &events)
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
}
