/// One series as rules see it: whose, which sensor and attribute, and the entity it feeds.
public struct SeriesRef: Sendable, Hashable {
    public var agent: String
    public var sensor: String
    public var attribute: String
    /// Smart Data Model type of the sensor's entity (nil when the agent did not announce it).
    public var entityType: String?
    /// UN/CEFACT unit code.
    public var unit: String

    public init(agent: String, sensor: String, attribute: String, entityType: String?, unit: String) {
        self.agent = agent
        self.sensor = sensor
        self.attribute = attribute
        self.entityType = entityType
        self.unit = unit
    }

    /// The twin entity the series belongs to (`urn:ngsi-ld:<type>:<agent>:<sensor>`).
    public var entityID: String { "urn:ngsi-ld:\(entityType ?? "DeviceMeasurement"):\(agent):\(sensor)" }
    public var name: String { "\(agent)/\(sensor)/\(attribute)" }
}

/// What a rule said about one subject (a series, an agent, or a group of agents).
public struct RuleEvent: Sendable, Equatable {
    public var rule: Int
    public var subject: Subject
    public var edge: ConditionState.Edge
    /// From a backlog judged behind the series' newest readings (a late episode of its own).
    public var backfill = false
    /// The most extreme figure since the raise (series conditions; nil: the edge's value).
    public var peak: Double?

    public enum Subject: Sendable, Hashable {
        case series(SeriesRef)
        case agent(String)
        /// The agents of a grouped fleet alert.
        case group([String])
    }

    public init(rule: Int, subject: Subject, edge: ConditionState.Edge, backfill: Bool = false) {
        self.rule = rule
        self.subject = subject
        self.edge = edge
        self.backfill = backfill
    }
}

/// Runs a rule set over observation streams (pure, no I/O, no clock of its own): the series
/// conditions per reading in observation order, `silent` and the fleet conditions on the times
/// it is given.
///
/// A series is matched against the rules once (its slot keeps the matching rules' states), so a
/// reading costs only the rules that watch its series.
///
/// Backlogs: an agent sends fresh readings first and its backlog after (oldest first), so a
/// series' backlog arrives behind readings already judged. Those older readings are judged by a
/// second state per rule and series, in their own observation order: its episodes are alerts of
/// their own (`backfill`, late, with their true times). One still open when its backlog stops
/// arriving for ``backfillSettle`` (wall time) is closed at its last backlog reading.
public struct RuleEngine: Sendable {
    public private(set) var rules: [AlertRule]
    private var slots: [SeriesRef: Int] = [:]
    private var series: [Slot] = []
    private var fleet: FleetRules

    struct Slot: Sendable {
        var ref: SeriesRef
        /// Series conditions matching it, with their states (live, and a backlog's).
        var conditions: [Condition]
        /// `silent` rules matching it: rule, raised.
        var silent: [(rule: Int, active: Bool)]
        /// Wall time of the last reading heard.
        var heardAt: Int64
    }

    struct Condition: Sendable {
        var rule: Int
        let spec: ConditionState.Spec
        var state = ConditionState()
        var backfill: ConditionState?
        /// Wall time the backlog state last judged a reading.
        var backfillHeardAt: Int64 = 0
    }

    /// How long (wall ms) a backlog may pause before its open episode is closed.
    public var backfillSettle: Int64 = 60_000

    public init(rules: [AlertRule]) {
        self.rules = rules
        fleet = FleetRules()
    }

    /// The slot of `ref` (matching it against the rules the first time; `now` starts its silence clock).
    public mutating func slot(_ ref: SeriesRef, now: Int64) -> Int {
        if let slot = slots[ref] { return slot }
        var conditions: [Condition] = []
        var silent: [(rule: Int, active: Bool)] = []
        for (i, rule) in rules.enumerated()
        where rule.match.matches(agent: ref.agent, sensor: Substring(ref.sensor), attribute: Substring(ref.attribute), entityType: ref.entityType) {
            if rule.condition.isSeries { conditions.append(Condition(rule: i, spec: ConditionState.Spec(rule))) }
            if case .silent = rule.condition { silent.append((i, false)) }
        }
        for j in conditions.indices where restored[RestoreKey(rule: conditions[j].rule, series: ref)] != nil {
            conditions[j].state.active = restored[RestoreKey(rule: conditions[j].rule, series: ref)]!
        }
        for j in silent.indices where restored[RestoreKey(rule: silent[j].rule, series: ref)] != nil {
            silent[j].active = restored[RestoreKey(rule: silent[j].rule, series: ref)]!
        }
        series.append(Slot(ref: ref, conditions: conditions, silent: silent, heardAt: now))
        slots[ref] = series.count - 1
        return series.count - 1
    }

    /// Alerts open in the store before the series was first seen (applied when its slot is made).
    private var restored: [RestoreKey: Bool] = [:]
    struct RestoreKey: Hashable {
        var rule: Int
        var series: SeriesRef
    }

    /// Whether any rule watches the series of `slot` (its readings need not be given otherwise).
    public func watches(_ slot: Int) -> Bool { !series[slot].conditions.isEmpty || !series[slot].silent.isEmpty }

    /// Readings of one series, in observation order, that arrived at `now` (wall time).
    public mutating func observe(_ slot: Int, times: some Sequence<Int64>, values: some Sequence<Double>, now: Int64,
                                 into events: inout [RuleEvent]) {
        series[slot].heardAt = max(series[slot].heardAt, now)
        for j in series[slot].silent.indices where series[slot].silent[j].active {
            series[slot].silent[j].active = false
            events.append(RuleEvent(rule: series[slot].silent[j].rule, subject: .series(series[slot].ref), edge: .clear(at: now, value: 0)))
        }
        guard !series[slot].conditions.isEmpty else { return }
        for (ts, value) in zip(times, values) {
            for j in series[slot].conditions.indices {
                let rule = series[slot].conditions[j].rule
                if ts >= series[slot].conditions[j].state.watermark {
                    if let edge = series[slot].conditions[j].state.observe(ts, value, series[slot].conditions[j].spec) {
                        var event = RuleEvent(rule: rule, subject: .series(series[slot].ref), edge: edge)
                        event.peak = series[slot].conditions[j].state.peak
                        events.append(event)
                    }
                    continue
                }
                // Behind what was judged: a backlog, judged in its own order.
                var backlog = series[slot].conditions[j].backfill ?? ConditionState()
                if ts < backlog.watermark {  // a run that starts earlier again: the previous one is over
                    if let edge = backlog.close() { events.append(RuleEvent(rule: rule, subject: .series(series[slot].ref), edge: edge, backfill: true)) }
                    backlog = ConditionState()
                }
                if let edge = backlog.observe(ts, value, series[slot].conditions[j].spec) {
                    var event = RuleEvent(rule: rule, subject: .series(series[slot].ref), edge: edge, backfill: true)
                    event.peak = backlog.peak
                    events.append(event)
                }
                series[slot].conditions[j].backfill = backlog
                series[slot].conditions[j].backfillHeardAt = now
            }
        }
    }

    /// Checks the `silent` rules at wall time `now`; silence before `heardSince` (when this
    /// aggregator last started hearing: its start, or the end of its own outage) is not counted.
    public mutating func tick(now: Int64, heardSince: Int64, into events: inout [RuleEvent]) {
        for i in series.indices {
            for j in series[i].silent.indices where !series[i].silent[j].active {
                guard case .silent(let limit) = rules[series[i].silent[j].rule].condition else { continue }
                let silence = now - max(series[i].heardAt, heardSince)
                if silence >= limit {
                    series[i].silent[j].active = true
                    events.append(RuleEvent(rule: series[i].silent[j].rule, subject: .series(series[i].ref),
                                            edge: .raise(at: now, value: Double(silence) / 1000)))
                }
            }
        }
        for i in series.indices {
            for j in series[i].conditions.indices where series[i].conditions[j].backfill != nil {
                guard now - series[i].conditions[j].backfillHeardAt >= backfillSettle else { continue }
                if let edge = series[i].conditions[j].backfill?.close() {
                    events.append(RuleEvent(rule: series[i].conditions[j].rule, subject: .series(series[i].ref), edge: edge, backfill: true))
                }
                series[i].conditions[j].backfill = nil
            }
        }
        fleet.tick(now: now, rules: rules, into: &events)
    }

    /// The agents with a backlog episode that ``tick(now:heardSince:into:)`` would close now (its
    /// backlog quiet for ``backfillSettle``).
    public func backfillsDue(now: Int64) -> Set<String> {
        var agents: Set<String> = []
        for slot in series where slot.conditions.contains(where: { $0.backfill != nil && now - $0.backfillHeardAt >= backfillSettle }) {
            agents.insert(slot.ref.agent)
        }
        return agents
    }

    /// An agent's status changed at `now` (wall time): offline (`planned` for its own goodbye) or back.
    public mutating func agent(_ agent: String, offline: Bool, planned: Bool = false, at now: Int64,
                               location: AlertRule.Point?, into events: inout [RuleEvent]) {
        fleet.agent(agent, offline: offline, planned: planned, at: now, location: location, rules: rules, into: &events)
    }

    /// Forgets which alerts the series conditions think are raised (before ``restore(rule:subject:active:)``
    /// marks the ones open in the store): a warm-up from the history judged them already.
    public mutating func resetActive() {
        for i in series.indices {
            for j in series[i].conditions.indices { series[i].conditions[j].state.active = false }
            for j in series[i].silent.indices { series[i].silent[j].active = false }
        }
    }

    /// Forgets what the conditions of `agent`'s series remember (windows, raised, backlogs), so they
    /// can be filled again from the store: another aggregator of a share group judged that agent's
    /// readings since.
    public mutating func forget(agent: String) {
        for i in series.indices where series[i].ref.agent == agent {
            for j in series[i].conditions.indices {
                series[i].conditions[j].state = ConditionState()
                series[i].conditions[j].backfill = nil
            }
        }
    }

    /// The newest observation time judged live on the series of `slot` (nil: none yet).
    public func watermark(_ slot: Int) -> Int64? {
        series[slot].conditions.map(\.state.watermark).max().flatMap { $0 == .min ? nil : $0 }
    }

    /// Readings of `slot` up to `ts` were judged elsewhere: older ones are a backlog from now on.
    public mutating func advance(_ slot: Int, to ts: Int64) {
        for j in series[slot].conditions.indices { series[slot].conditions[j].state.advance(to: ts) }
    }

    /// ``resetActive()`` for one agent's series.
    public mutating func resetActive(agent: String) {
        for i in series.indices where series[i].ref.agent == agent {
            for j in series[i].conditions.indices { series[i].conditions[j].state.active = false }
        }
    }

    /// An open backlog episode read back from the store: judged again from `at` when more of its backlog comes.
    public mutating func restoreBackfill(rule: Int, series ref: SeriesRef, at: Int64, now: Int64) {
        let slot = slot(ref, now: now)
        for j in series[slot].conditions.indices where series[slot].conditions[j].rule == rule {
            series[slot].conditions[j].backfill = ConditionState(raisedAt: at)
            series[slot].conditions[j].backfillHeardAt = now
        }
    }

    /// Marks the alerts already open (from the store, at start) so a condition still holding does
    /// not raise them again, and one that no longer holds clears them.
    public mutating func restore(rule: Int, subject: RuleEvent.Subject, active: Bool) {
        switch subject {
        case .series(let ref):
            guard let slot = slots[ref] else {
                restored[RestoreKey(rule: rule, series: ref)] = active
                return
            }
            for j in series[slot].conditions.indices where series[slot].conditions[j].rule == rule {
                series[slot].conditions[j].state.active = active
            }
            for j in series[slot].silent.indices where series[slot].silent[j].rule == rule { series[slot].silent[j].active = active }
        case .agent(let agent): fleet.restore(rule: rule, agent: agent, active: active)
        case .group(let agents): fleet.restore(rule: rule, group: agents, active: active)
        }
    }
}
