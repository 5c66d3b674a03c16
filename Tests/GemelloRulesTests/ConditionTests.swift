import GemelloCore
import GemelloRules
import Testing

/// Rules as pure functions over observation streams: no I/O, times given.
struct ConditionTests {
    static let ref = SeriesRef(agent: "a1", sensor: "s1", attribute: "level", entityType: "WaterObserved", unit: "MTR")

    /// Runs `rule` over (seconds, value) readings of one series; returns the edges.
    func run(_ rule: AlertRule, _ readings: [(Int64, Double)]) -> [ConditionState.Edge] {
        var engine = RuleEngine(rules: [rule])
        let slot = engine.slot(Self.ref, now: 0)
        var events: [RuleEvent] = []
        engine.observe(slot, times: readings.map { $0.0 * 1000 }, values: readings.map(\.1), now: 0, into: &events)
        return events.map(\.edge)
    }

    func raises(_ edges: [ConditionState.Edge]) -> [Int64] {
        edges.compactMap { if case .raise(let at, _) = $0 { at / 1000 } else { nil } }
    }
    func clears(_ edges: [ConditionState.Edge]) -> [Int64] {
        edges.compactMap { if case .clear(let at, _) = $0 { at / 1000 } else { nil } }
    }

    @Test func thresholdWithHysteresisRaisesOnceAndClearsBelowTheClearValue() {
        let rule = AlertRule(name: "level", match: .init(attribute: Glob("level")), condition: .threshold(above: true, raise: 2.0, clear: 1.8))
        let edges = run(rule, [(0, 1.0), (1, 2.1), (2, 1.9), (3, 2.2), (4, 1.85), (5, 1.7), (6, 2.5)])
        #expect(raises(edges) == [1, 6])
        #expect(clears(edges) == [5])  // 1.9 and 1.85 are between the thresholds: still raised
    }

    @Test func forDurationNeedsTheConditionToHoldInObservationTime() {
        var rule = AlertRule(name: "low-battery", match: .init(attribute: Glob("level")), condition: .threshold(above: false, raise: 11.5, clear: 12))
        rule.forMilliseconds = 60_000
        // Dips of under a minute do not raise; the one that lasts does, at the reading that completes the minute.
        let edges = run(rule, [(0, 12.5), (10, 11.0), (40, 12.1), (100, 11.2), (130, 11.1), (160, 11.3), (170, 12.3)])
        #expect(raises(edges) == [160])
        #expect(clears(edges) == [170])
    }

    @Test func clearForDampsFlappingIntoOneAlertWithACount() {
        var rule = AlertRule(name: "level", match: .init(attribute: Glob("level")), condition: .threshold(above: true, raise: 2, clear: 2))
        rule.clearForMilliseconds = 30_000
        let edges = run(rule, [(0, 3), (10, 1), (20, 3), (30, 1), (40, 3), (50, 1), (90, 1)])
        #expect(raises(edges) == [0])
        #expect(clears(edges) == [90])
        let flaps = edges.filter { if case .hold(_, _, true) = $0 { true } else { false } }.count
        #expect(flaps == 2)
    }

    @Test func rollingMeanSpeaksOnlyOverMostOfAWindow() {
        let rule = AlertRule(name: "pm25", match: .init(attribute: Glob("level")),
                             condition: .mean(window: 24 * 3_600_000, above: true, raise: 25, clear: 20))
        // Hourly: 12 h at 40 (no verdict yet: half a window), then 30 until the mean passes 25.
        var readings: [(Int64, Double)] = (0..<12).map { (Int64($0) * 3600, 40) }
        readings += (12..<48).map { (Int64($0) * 3600, 10) }
        let edges = run(rule, readings)
        // At hour 18 the window holds 12 x 40 and 7 x 10 = mean 30.5 > 25: raised there, not before.
        #expect(raises(edges) == [18 * 3600])
        // Cleared when the mean falls under 20: 24 readings ending at hour h hold (35 - h) x 40 ... 
        let clear = clears(edges).first ?? -1
        #expect(clear > 18 * 3600 && clear <= 30 * 3600)
    }

    @Test func rateOfChangeOverAWindow() {
        let rule = AlertRule(name: "rising", match: .init(attribute: Glob("level")), condition: .rate(window: 600_000, raise: 0.5, clear: 0.1))
        // Rises 0.1 per minute from minute 5: a change of 0.5 within 10 minutes at minute 10.
        func level(_ m: Int) -> Double { m < 5 ? 1.0 : m <= 15 ? 1.0 + Double(m - 5) * 0.1 : 2.0 }
        let readings: [(Int64, Double)] = (0...30).map { m in (Int64(m) * 60, level(m)) }
        let edges = run(rule, readings)
        #expect(raises(edges) == [600])
        #expect(clears(edges) == [24 * 60])  // flat from 15: the window (14 min, 24 min] holds no change left
    }

    @Test func aReadingBehindTheWatermarkIsJudgedApartAsABacklog() {
        let rule = AlertRule(name: "level", match: .init(attribute: Glob("level")), condition: .threshold(above: true, raise: 2, clear: 1))
        var engine = RuleEngine(rules: [rule])
        let slot = engine.slot(Self.ref, now: 0)
        var events: [RuleEvent] = []
        engine.observe(slot, times: [10_000, 5_000, 11_000], values: [3, 3, 3], now: 0, into: &events)
        let raised = events.filter { if case .raise = $0.edge { true } else { false } }
        #expect(raised.map(\.backfill) == [false, true])
        #expect(raised.map(\.edge) == [.raise(at: 10_000, value: 3), .raise(at: 5_000, value: 3)])
    }

    @Test func silentRaisesAfterTheDurationAndClearsWhenHeard() {
        var engine = RuleEngine(rules: [AlertRule(name: "quiet", match: .init(attribute: Glob("level")), condition: .silent(60_000))])
        let slot = engine.slot(Self.ref, now: 0)
        var events: [RuleEvent] = []
        engine.observe(slot, times: [0], values: [1], now: 1_000, into: &events)
        engine.tick(now: 50_000, heardSince: 0, into: &events)
        #expect(events.isEmpty)
        // The aggregator itself was not running until 55 s: silence before it does not count.
        engine.tick(now: 62_000, heardSince: 55_000, into: &events)
        #expect(events.isEmpty)
        engine.tick(now: 62_000, heardSince: 0, into: &events)
        #expect(events.count == 1)
        engine.observe(slot, times: [70_000], values: [1], now: 70_000, into: &events)
        #expect(events.map(\.edge) == [.raise(at: 62_000, value: 61), .clear(at: 70_000, value: 0)])
    }

    @Test func manyAgentsOfOneAreaOfflineAreOneGroupedAlertThatHoldsBackTheSingleOnes() {
        var single = AlertRule(name: "agent-offline", condition: .agentOffline)
        single.forMilliseconds = 30_000
        var group = AlertRule(name: "backhaul-cut", condition: .agentsOffline(count: 3, within: 60_000))
        group.area = .circle(name: "Milano", center: .init(latitude: 45.46, longitude: 9.19), radiusKm: 20)
        var engine = RuleEngine(rules: [single, group])
        var events: [RuleEvent] = []
        let milano = AlertRule.Point(latitude: 45.47, longitude: 9.2), bergamo = AlertRule.Point(latitude: 45.69, longitude: 9.67)
        engine.agent("far", offline: true, at: 0, location: bergamo, into: &events)
        for (i, agent) in ["t1", "t2", "t3", "t4"].enumerated() {
            engine.agent(agent, offline: true, at: Int64(i) * 5_000, location: milano, into: &events)
        }
        engine.agent("planned", offline: true, planned: true, at: 1_000, location: milano, into: &events)
        engine.tick(now: 40_000, heardSince: 0, into: &events)
        let grouped = events.filter { $0.rule == 1 }
        #expect(grouped.count == 2)  // raised with three, then one more joined
        #expect(grouped.last?.subject == .group(["t1", "t2", "t3", "t4"]))
        // Only the agent outside the area gets a single alert.
        #expect(events.filter { $0.rule == 0 }.map(\.subject) == [.agent("far")])
        engine.agent("t1", offline: false, at: 50_000, location: milano, into: &events)
        engine.agent("t2", offline: false, at: 51_000, location: milano, into: &events)
        #expect(events.contains(RuleEvent(rule: 1, subject: .group(["t3", "t4"]), edge: .clear(at: 51_000, value: 2))))
        // Two left offline are no longer a group: each is an alert of its own now.
        #expect(events.filter { $0.rule == 0 }.map(\.subject) == [.agent("far"), .agent("t3"), .agent("t4")])
    }
}

/// A backlog arriving behind fresh readings (the agent sends live first) is judged in its own
/// observation order, as episodes of their own.
struct BackfillTests {
    @Test func aBacklogBehindLiveReadingsYieldsItsOwnLateEpisodes() {
        let rule = AlertRule(name: "level", match: .init(attribute: Glob("level")), condition: .threshold(above: true, raise: 2, clear: 1))
        var engine = RuleEngine(rules: [rule])
        let slot = engine.slot(ConditionTests.ref, now: 0)
        var events: [RuleEvent] = []
        // Live: the outage ended at 1000 s, fresh readings are low.
        engine.observe(slot, times: [1_000_000, 1_001_000], values: [0.5, 0.5], now: 1_001_000, into: &events)
        #expect(events.isEmpty)
        // The backlog (100 s .. 199 s), in two batches: an episode from 120 s to 150 s, one from 190 s still open.
        engine.observe(slot, times: (100..<160).map { Int64($0) * 1000 }, values: (100..<160).map { $0 >= 120 && $0 < 150 ? 3.0 : 0.5 },
                       now: 1_002_000, into: &events)
        engine.observe(slot, times: (160..<200).map { Int64($0) * 1000 }, values: (160..<200).map { $0 >= 190 ? 3.0 : 0.5 },
                       now: 1_003_000, into: &events)
        #expect(events.allSatisfy { $0.backfill })
        func changes() -> [RuleEvent] { events.filter { if case .hold = $0.edge { false } else { true } } }
        #expect(changes().map(\.edge) == [.raise(at: 120_000, value: 3), .clear(at: 150_000, value: 0.5), .raise(at: 190_000, value: 3)])
        // Live readings go on being judged live, apart from the backlog.
        engine.observe(slot, times: [1_002_000], values: [2.5], now: 1_004_000, into: &events)
        #expect(events.last?.edge == .raise(at: 1_002_000, value: 2.5) && events.last?.backfill == false)
        // The backlog stops arriving: its open episode ends at its last reading after a minute.
        engine.tick(now: 1_030_000, heardSince: 0, into: &events)
        #expect(changes().count == 4)
        engine.tick(now: 1_064_000, heardSince: 0, into: &events)
        #expect(events.last?.edge == .clear(at: 199_000, value: 3) && events.last?.backfill == true)
    }

    @Test func backlogEpisodesAreAlertsApartFromTheLiveOne() {
        var book = AlertBook(lateAfter: 300_000)
        let rule = AlertRule(name: "level", match: .init(attribute: Glob("level")), condition: .threshold(above: true, raise: 2, clear: 1))
        let ref = ConditionTests.ref
        book.apply(RuleEvent(rule: 0, subject: .series(ref), edge: .raise(at: 1_002_000, value: 2.5)), rule: rule, now: 1_002_000, location: nil)
        book.apply(RuleEvent(rule: 0, subject: .series(ref), edge: .raise(at: 120_000, value: 3), backfill: true), rule: rule, now: 1_003_000, location: nil)
        let (alerts, messages) = book.drain()
        #expect(alerts.count == 2 && messages.count == 2 && book.open.count == 2)
        #expect(Set(alerts.map(\.subject)) == ["series:a1/s1/level", "backfill:a1/s1/level"])
        #expect(alerts.first { $0.subject.hasPrefix("backfill:") }?.late == true)
        #expect(alerts.first { $0.subject.hasPrefix("series:") }?.late == false)
    }
}
