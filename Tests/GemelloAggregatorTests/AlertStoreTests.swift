import Foundation
@testable import GemelloAggregator
import GemelloCore
import GemelloRules
import GemelloStorage
import GemelloTesting
import Logging
import Testing

/// Alerts in the twin store, on both backends: raised inside the ingest transaction (nothing of a
/// failed one is kept, in the store or in the engine), restored after a restart without a second
/// raise, cleared with a Cancel that refers to its Alert; the outbox bounded per sink with drops
/// counted; one open alert per rule and subject enforced by the store itself.
@Suite struct AlertStoreTests {
    static let rules = """
        rules:
          - name: level-high
            match:
              attribute: level
            threshold:
              above: 2
              clear-below: 1.5
        """
    static let logger = Logger(label: "test")

    func configuration(maxQueued: Int = 1000) throws -> AlertsConfiguration {
        let file = try Repository.temporaryFolder("rules").appendingPathComponent("rules.yaml")
        try Self.rules.write(to: file, atomically: true, encoding: .utf8)
        var c = AlertsConfiguration()
        c.rulesPath = file.path
        var sink = AlertsConfiguration.Sink(name: "control-room", kind: .webhook)
        sink.url = "http://127.0.0.1:9/cap"
        sink.maxQueued = maxQueued
        c.sinks = [sink]
        return c
    }

    func born(_ store: TwinStore) throws {
        _ = try store.recordBirth(AgentBirth(agentID: "gauge-agent", bootEpoch: 1, version: "t", site: Site(id: "darsena", kind: .fiberNode, latitude: 45.45, longitude: 9.17),
                                             sensors: [SensorInfo(id: "gauge", entityType: "WaterObserved", attributes: [.init(name: "level", unit: "MTR")])],
                                             time: 0), now: 0)
    }

    static func batch(_ sequence: UInt64, _ readings: [(Int64, Double)]) -> Batch {
        var batch = Batch(agentID: "gauge-agent", bootEpoch: 1, sequence: sequence, createdAt: readings.last?.0 ?? 0)
        var lookup: [SeriesInfo: UInt32] = [:]
        for (ts, v) in readings { batch.append(Reading(series: SeriesInfo(name: "gauge/level", unit: "MTR"), timestamp: ts, value: v), lookup: &lookup) }
        return batch
    }

    struct Refused: Error {}

    /// Stores `batch` with the engine judging it in the same transaction; `fail` makes the transaction fail after.
    func ingest(_ batch: Batch, _ store: TwinStore, _ engine: AlertEngine, now: Int64 = 1_000_000, fail: Bool = false) throws {
        _ = try engine.ingesting { pass in
            try store.ingest([batch], receivedAt: now) { stored, db in
                try pass.evaluate(stored.map { _ in batch }, now: now, db: db)
                if fail { throw Refused() }
            }
        }
    }

    func outbox(_ store: TwinStore) throws -> [String] {
        try store.read { db -> [String] in
            let rows = try db.query("SELECT message_id FROM alert_outbox ORDER BY seq")
            var out: [String] = []
            while try rows.step() { out.append(rows.text(0)) }
            return out
        }
    }

    @Test(arguments: StoreBackendKind.allCases)
    func raisedInTheTransactionRestoredAfterARestartClearedOnce(kind: StoreBackendKind) throws {
        let location = try kind.newLocation("alerts")
        var store = try kind.open(location)
        try born(store)
        var engine = try AlertEngine(store: store, configuration: try configuration(), projection: nil, counters: nil, metrics: nil, logger: Self.logger)
        // A transaction that fails after judging keeps nothing: no alert, and the engine judges the resend afresh.
        #expect(throws: (any Error).self) { try ingest(Self.batch(1, [(0, 1), (60_000, 3)]), store, engine, fail: true) }
        #expect(try store.openAlerts().isEmpty)
        #expect(try outbox(store).isEmpty)
        try ingest(Self.batch(1, [(0, 1), (60_000, 3)]), store, engine)
        let open = try store.openAlerts()
        #expect(open.count == 1 && open.first?.raisedAt == 60_000 && open.first?.site == "darsena" && open.first?.entityType == "WaterObserved")
        let id = try #require(open.first?.id)
        #expect(try outbox(store) == ["\(id).0"])

        // A restart: the open alert is read back; still high is not a second raise; low clears it once.
        store.close()
        store = try kind.open(location)
        engine = try AlertEngine(store: store, configuration: try configuration(), projection: nil, counters: nil, metrics: nil, logger: Self.logger)
        try ingest(Self.batch(2, [(120_000, 3.5)]), store, engine)
        #expect(try store.openAlerts().map(\.id) == [id])
        try ingest(Self.batch(3, [(180_000, 1)]), store, engine)
        #expect(try store.openAlerts().isEmpty)
        let cleared = try #require(try store.alert(id: id))
        #expect(cleared.status == .cleared && cleared.clearedAt == 180_000 && cleared.peak == 3.5 && cleared.revision == 2)
        #expect(try outbox(store) == ["\(id).0", "\(id).1"])
        store.close()
    }

    /// A backlog that starts earlier again while its episode is open (an agent resending from an
    /// older point): the open episode ends at its newest reading and a new one opens at an older
    /// time, in one transaction. The store gets the end first (its one-open-alert-per-subject
    /// index would refuse the batch otherwise, at every resend: a batch stuck for ever).
    @Test(arguments: StoreBackendKind.allCases)
    func aBacklogStartingEarlierAgainEndsItsEpisodeBeforeOpeningTheNext(kind: StoreBackendKind) throws {
        let store = try kind.store("alert-rewind")
        defer { store.close() }
        try born(store)
        let engine = try AlertEngine(store: store, configuration: try configuration(), projection: nil, counters: nil, metrics: nil, logger: Self.logger)
        try ingest(Self.batch(1, [(600_000, 1)]), store, engine, now: 1_000_000)
        try ingest(Self.batch(2, [(60_000, 3), (120_000, 3.1)]), store, engine, now: 1_001_000)
        let first = try #require(try store.openAlerts().first)
        #expect(first.subject.hasPrefix("backfill:") && first.raisedAt == 60_000)
        try ingest(Self.batch(3, [(30_000, 3.3)]), store, engine, now: 1_002_000)
        let open = try store.openAlerts()
        #expect(open.count == 1 && open.first?.raisedAt == 30_000, "\(open)")
        let ended = try #require(try store.alert(id: first.id))
        #expect(ended.status == .cleared && ended.clearedAt == 120_000)
    }

    /// One aggregator judging live readings and backlogs that start earlier again at random,
    /// with ticks and restarts: every batch is stored at its first try, and the store holds at
    /// most one open alert per rule and subject.
    @Test(arguments: StoreBackendKind.allCases, [5] as [UInt64])
    func liveReadingsAndRewindingBacklogsAtRandomStoreEveryBatchAtOnce(kind: StoreBackendKind, seed: UInt64) async throws {
        // Seconds of blocking store work: on a thread of its own, not the cooperative pool (two
        // threads in CI, shared with the timing-sensitive integration tests).
        let (failures, unique) = try await offPool { try AlertStoreTests().rewindingBacklogs(kind: kind, seed: seed) }
        #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(3))")
        #expect(unique, "two open alerts for one rule and subject")
    }

    /// The run of the test above: the batches that failed, and whether the open alerts are unique.
    func rewindingBacklogs(kind: StoreBackendKind, seed: UInt64) throws -> ([String], Bool) {
        let location = try kind.newLocation("alert-random-\(seed)")
        var store = try kind.open(location)
        defer { store.close() }
        try born(store)
        var engine = try AlertEngine(store: store, configuration: try configuration(), projection: nil, counters: nil, metrics: nil, logger: Self.logger)
        var feed = RandomFeed(seed: seed, now: 20_000_000, rewindOneIn: 8)
        var failures: [String] = []
        for step in 0..<250 {
            switch feed.next() {
            case .restart:
                store.close()
                store = try kind.open(location)
                engine = try AlertEngine(store: store, configuration: try configuration(), projection: nil, counters: nil, metrics: nil,
                                         logger: Self.logger)
            case .tick:
                engine.tick(now: feed.now)
            case .batch(let batch):
                do { try ingest(batch, store, engine, now: feed.now) } catch { failures.append("step \(step), batch \(batch.sequence): \(error)") }
            }
        }
        return (failures, try RandomFeed.openAlertsAreUnique(store))
    }

    @Test(arguments: StoreBackendKind.allCases)
    func theOutboxIsBoundedPerSinkAndCountsWhatItDrops(kind: StoreBackendKind) throws {
        let store = try kind.store("alert-outbox")
        defer { store.close() }
        try born(store)
        let engine = try AlertEngine(store: store, configuration: try configuration(maxQueued: 10), projection: nil, counters: nil, metrics: nil,
                                     logger: Self.logger)
        // 8 episodes judged as they happen (not late): 16 messages (Alert and Cancel each) for a queue of 10.
        for i in 0..<8 {
            let t = Int64(i) * 120_000
            try ingest(Self.batch(UInt64(i + 1), [(t, 3), (t + 60_000, 1)]), store, engine, now: t + 61_000)
        }
        let queued = try outbox(store)
        #expect(queued.count == 10 && engine.outbox.count("control-room") == 10)
        let dropped = try store.read { db in try db.scalarInt("SELECT dropped FROM alert_sinks WHERE name = 'control-room'") }
        #expect(dropped == 6)
        // The newest are kept: the last alert's Cancel is the last row.
        let last = try #require(try store.alerts(includeCleared: true, limit: 1).first)
        #expect(queued.last == "\(last.id).1")
    }

    @Test(arguments: StoreBackendKind.allCases)
    func theStoreKeepsOneOpenAlertPerRuleAndSubject(kind: StoreBackendKind) throws {
        let store = try kind.store("alert-unique")
        defer { store.close() }
        var a = Alert(id: "a1", rule: "r", subject: "series:x/y/z", entityID: "urn:ngsi-ld:T:x:y", entityType: "T", severity: .minor, value: 1, raisedAt: 0)
        try store.writing { db in try TwinStore.write([a], now: 0, in: db) }
        a.id = "a2"
        #expect(throws: (any Error).self) { try store.writing { db in try TwinStore.write([a], now: 0, in: db) } }
        a.status = .cleared
        try store.writing { db in try TwinStore.write([a], now: 0, in: db) }  // a cleared one beside it is fine
        #expect(try store.alerts(includeCleared: true, limit: 10).count == 2)
    }
}

/// A share group judges series rules only: `silent` and fleet rules are refused with the reason.
@Suite struct SharedRulesTests {
    /// Two members' stores on one PostgreSQL database, the gauge agent born, `t0` the wall time now.
    struct SharedGroup {
        let test = AlertStoreTests()
        let storeA: TwinStore
        let storeB: TwinStore
        let configuration: AlertsConfiguration
        let t0 = Int64(Date().timeIntervalSince1970 * 1000)

        init(_ name: String) throws {
            let location = try StoreBackendKind.postgres.newLocation(name)
            storeA = try StoreBackendKind.postgres.open(location)
            storeB = try StoreBackendKind.postgres.open(location)
            try test.born(storeA)
            configuration = try test.configuration()
        }

        func member(_ store: TwinStore) throws -> AlertEngine {
            try AlertEngine(store: store, configuration: configuration, projection: nil, counters: nil, metrics: nil, shared: true,
                            logger: AlertStoreTests.logger)
        }

        /// `a` judges a live reading, then a backlog behind it: a late episode, open.
        func lateEpisode(by a: AlertEngine) throws {
            try test.ingest(AlertStoreTests.batch(1, [(600_000, 1)]), storeA, a, now: t0)
            try test.ingest(AlertStoreTests.batch(2, [(60_000, 3)]), storeA, a, now: t0 + 1000)
        }

        func close() {
            storeA.close()
            storeB.close()
        }
    }

    @Test func silentAndFleetRulesAreRefusedInAShareGroup() throws {
        let folder = try Repository.temporaryFolder("shared-rules")
        let store = try TwinStore(path: folder.appendingPathComponent("twin.sqlite").path)
        defer { store.close() }
        for (rules, refused) in [("rules:\n  - name: gone\n    agent-offline: true\n", true),
                                 ("rules:\n  - name: quiet\n    match:\n      attribute: level\n    silent: 5m\n", true),
                                 (AlertStoreTests.rules, false)] {
            let file = folder.appendingPathComponent("rules.yaml")
            try rules.write(to: file, atomically: true, encoding: .utf8)
            var c = AlertsConfiguration()
            c.rulesPath = file.path
            do {
                _ = try AlertEngine(store: store, configuration: c, projection: nil, counters: nil, metrics: nil, shared: true,
                                    logger: AlertStoreTests.logger)
                #expect(!refused, "accepted: \(rules)")
            } catch {
                #expect(refused && error.code == .configuration && "\(error)".contains("not judged in a share group"), "\(error)")
            }
        }
    }

    /// A member restarted while another judges an agent's backlog: its restore leaves that late
    /// episode alone (no Cancel behind the other's back, with a revision the store has passed);
    /// the episode is closed once, by the member holding the agent, after its backlog went quiet.
    @Test func aRestartedMemberLeavesAnotherMembersBacklogEpisodeAlone() throws {
        let group = try SharedGroup("shared-backfill")
        defer { group.close() }
        let (test, storeA, storeB, t0) = (group.test, group.storeA, group.storeB, group.t0)
        var a = try group.member(storeA)
        let b = try group.member(storeB)
        // A judges a live reading, then a backlog behind it: a late episode.
        try group.lateEpisode(by: a)
        let episode = try #require(try storeA.openAlerts().first { $0.subject.hasPrefix("backfill:") })
        // A restarts; B takes the agent (and its backlog) over; then A judges a live raise.
        a = try group.member(storeA)
        try test.ingest(AlertStoreTests.batch(3, [(120_000, 3.2)]), storeB, b, now: t0 + 2000)
        try test.ingest(AlertStoreTests.batch(4, [(700_000, 3)]), storeA, a, now: t0 + 3000)
        let open = try storeA.openAlerts()
        #expect(open.count == 2 && open.contains { $0.id == episode.id }, "\(open.map(\.subject))")
        let live = try #require(open.first { $0.subject.hasPrefix("series:") })
        // Quiet for the settle time: B takes the agent back (nothing due after that), then closes it once.
        b.tick(now: t0 + 62_000)
        #expect(try storeB.alert(id: episode.id)?.status == .open)
        b.tick(now: t0 + 123_000)
        let closed = try #require(try storeB.alert(id: episode.id))
        // (At the episode's last point in the store: what B had judged since went with the takeover.)
        #expect(closed.status == .cleared && closed.revision == 2 && closed.late && closed.clearedAt == 60_000, "\(closed)")
        // A's own copy of the episode is taken over from the store before anything is judged: nothing more.
        a.tick(now: t0 + 200_000)
        a.tick(now: t0 + 300_000)
        #expect(try storeA.alert(id: episode.id)?.revision == 2)
        #expect(try test.outbox(storeA) == ["\(episode.id).0", "\(live.id).0", "\(episode.id).1"])
    }

    /// Two members take turns at random on one agent's batches (live readings, and a backlog
    /// behind them that flips across the threshold: many late episodes), tick, and restart now
    /// and then. One at a time, so nothing races: every batch must be stored at its first try (a
    /// member judging from a stale copy would write a second open alert for a subject and fail
    /// at the store's unique index, again and again with every resend).
    @Test(arguments: [1, 2] as [UInt64])
    func membersTakingTurnsAtRandomStoreEveryBatchAtOnce(seed: UInt64) async throws {
        // Seconds of blocking store work: on a thread of its own, not the cooperative pool.
        let (failures, unique) = try await offPool { try Self.takingTurns(seed: seed) }
        #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(3))")
        #expect(unique, "two open alerts for one rule and subject")
    }

    /// The run of the test above: the batches that failed, and whether the open alerts are unique.
    static func takingTurns(seed: UInt64) throws -> ([String], Bool) {
        let group = try SharedGroup("shared-turns-\(seed)")
        defer { group.close() }
        var members = [try group.member(group.storeA), try group.member(group.storeB)]
        let stores = [group.storeA, group.storeB]
        var feed = RandomFeed(seed: seed, now: group.t0, rewindOneIn: 15)
        var failures: [String] = []
        for step in 0..<300 {
            let m = feed.member()
            switch feed.next() {
            case .restart:
                members[m] = try group.member(stores[m])
            case .tick:
                members[m].tick(now: feed.now)
            case .batch(let batch):
                do { try group.test.ingest(batch, stores[m], members[m], now: feed.now) } catch {
                    failures.append("step \(step), batch \(batch.sequence) at member \(m): \(error)")
                }
            }
        }
        return (failures, try RandomFeed.openAlertsAreUnique(group.storeA))
    }

    /// Both members tick every second; one judged the backlog, the other only holds a copy of the
    /// episode (read back at its start). The copy never resets the judge's settle clock: the
    /// episode is closed once, a minute after its backlog went quiet.
    @Test func aQuietBacklogIsClosedOnceWhileBothMembersTick() throws {
        let group = try SharedGroup("shared-settle")
        defer { group.close() }
        let (test, storeA, t0) = (group.test, group.storeA, group.t0)
        let a = try group.member(storeA)
        try group.lateEpisode(by: a)
        let episode = try #require(try storeA.openAlerts().first { $0.subject.hasPrefix("backfill:") })
        let b = try group.member(group.storeB)  // starts now: the episode read back
        var closedAt: Int64?
        for second in stride(from: Int64(2), through: 200, by: 1) {
            b.tick(now: t0 + second * 1000)
            a.tick(now: t0 + second * 1000)
            if closedAt == nil, try storeA.alert(id: episode.id)?.status == .cleared { closedAt = second }
        }
        #expect(closedAt == 61, "closed after \(closedAt.map { "\($0) s" } ?? "never")")
        #expect(try storeA.alert(id: episode.id)?.revision == 2)
        #expect(try test.outbox(storeA) == ["\(episode.id).0", "\(episode.id).1"])
    }
}

/// A seeded stream of what happens to an agent's judge (the random alert tests): mostly batches
/// (live readings, or a backlog behind them that flips across the threshold and now and then
/// starts earlier again), sometimes a tick after a pause, now and then a restart.
struct RandomFeed {
    enum Step { case restart, tick, batch(Batch) }
    private var random: SeededGenerator
    private let rewindOneIn: Int
    private var live: Int64 = 10_000_000, backlog: Int64 = 0, sequence: UInt64 = 0
    /// Wall time (ms), moved on by every step.
    private(set) var now: Int64

    init(seed: UInt64, now: Int64, rewindOneIn: Int) {
        random = SeededGenerator(seed: seed)
        self.now = now
        self.rewindOneIn = rewindOneIn
    }

    /// At most one open alert per rule and subject in `store`.
    static func openAlertsAreUnique(_ store: TwinStore) throws -> Bool {
        let open = try store.openAlerts()
        return Set(open.map { $0.subject + "|" + $0.rule }).count == open.count
    }

    /// Which of two members takes the next step.
    mutating func member() -> Int { Int.random(in: 0...1, using: &random) }

    mutating func next() -> Step {
        now += Int64.random(in: 200...4000, using: &random)
        switch Int.random(in: 0..<20, using: &random) {
        case 0: return .restart
        case 1...3:
            now += Int64.random(in: 0...70_000, using: &random)
            return .tick
        default:
            var readings: [(Int64, Double)] = []
            let isLive = Int.random(in: 0..<3, using: &random) == 0
            if !isLive && Int.random(in: 0..<rewindOneIn, using: &random) == 0 { backlog = Int64.random(in: 0...backlog, using: &random) }
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                if isLive { live += 60_000 } else { backlog += 60_000 }
                readings.append((isLive ? live : backlog, Double.random(in: 0.5...3.5, using: &random)))
            }
            sequence += 1
            return .batch(AlertStoreTests.batch(sequence, readings))
        }
    }
}
