import Foundation
@testable import GemelloAggregator
import GemelloCore
import GemelloSQLite
import GemelloTesting
import Logging
import Testing

@Suite struct FleetStatusPolicyTests {
    let policy = FleetStatusPolicy(staleAfter: .seconds(30), offlineAfter: .seconds(120))

    @Test func onlineStaleOffline() {
        #expect(policy.status(bootEpoch: 3, deathEpoch: 2, lastSeen: 0, now: 30_000) == .online)
        #expect(policy.status(bootEpoch: 3, deathEpoch: 2, lastSeen: 0, now: 30_001) == .stale)
        #expect(policy.status(bootEpoch: 3, deathEpoch: 2, lastSeen: 0, now: 120_001) == .offline)
        #expect(policy.status(bootEpoch: 3, deathEpoch: 3, lastSeen: 0, now: 1) == .offline)
        #expect(policy.status(bootEpoch: 0, deathEpoch: 0, lastSeen: 0, now: 1) == .offline)
        #expect(policy.status(bootEpoch: 1, deathEpoch: 0, lastSeen: nil, now: 1) == .offline)
    }

    @Test func staleAfterMissedHealthIntervalsWhenTheAgentAnnouncedOne() {
        // 2 s heartbeats, 3 intervals: stale after 6 s instead of the 30 s fallback (never under 5 s).
        #expect(policy.status(bootEpoch: 2, deathEpoch: 0, lastSeen: 0, now: 5_000, healthInterval: .seconds(1)) == .online)
        #expect(policy.status(bootEpoch: 2, deathEpoch: 0, lastSeen: 0, now: 6_000, healthInterval: .seconds(2)) == .online)
        #expect(policy.status(bootEpoch: 2, deathEpoch: 0, lastSeen: 0, now: 6_001, healthInterval: .seconds(2)) == .stale)
        // A slow heartbeat (60 s): stale after 180 s, offline only after twice that, not at the 120 s fallback.
        #expect(policy.status(bootEpoch: 2, deathEpoch: 0, lastSeen: 0, now: 150_000, healthInterval: .seconds(60)) == .online)
        #expect(policy.status(bootEpoch: 2, deathEpoch: 0, lastSeen: 0, now: 180_001, healthInterval: .seconds(60)) == .stale)
        #expect(policy.status(bootEpoch: 2, deathEpoch: 0, lastSeen: 0, now: 360_001, healthInterval: .seconds(60)) == .offline)
    }

    @Test func offlineAfterOneAndAHalfKeepalivesWhenHealthComesAtLeastThatOften() {
        // 1 s heartbeats, 5 s keepalive: stale after 5 s (the floor), offline after 7.5 s (the spec's broker rule).
        let fast = { (now: Int64) in
            policy.status(bootEpoch: 2, deathEpoch: 0, lastSeen: 0, now: now, healthInterval: .seconds(1), keepAlive: .seconds(5))
        }
        #expect(fast(5_000) == .online && fast(5_001) == .stale && fast(7_500) == .stale && fast(7_501) == .offline)
        // Heartbeats rarer than the keepalive say nothing about the connection: the fallback applies.
        #expect(policy.status(bootEpoch: 2, deathEpoch: 0, lastSeen: 0, now: 100_000, healthInterval: .seconds(20),
                              keepAlive: .seconds(5)) == .stale)
    }

    @Test func ourOwnIngestLagIsNotTheAgentsSilence() {
        // Silent 8 s by our clock, but our ingest runs 3 s behind the broker: 5 s of it are the agent's.
        #expect(policy.status(bootEpoch: 2, deathEpoch: 0, lastSeen: 0, now: 8_000, healthInterval: .seconds(1),
                              keepAlive: .seconds(5), hearing: Hearing(since: 0, lag: 3_000)) == .online)
        #expect(policy.status(bootEpoch: 2, deathEpoch: 0, lastSeen: 0, now: 8_000, healthInterval: .seconds(1),
                              keepAlive: .seconds(5), hearing: Hearing(since: 0, lag: 0)) == .offline)
        // An outstanding probe counts as lag once it is overdue (probes go out every second).
        let counters = IngestCounters()
        counters.listeningSince.store(1, ordering: .relaxed)
        counters.probeSentAt.store(10_000, ordering: .relaxed)
        #expect(counters.hearing(now: 10_500).lag == 0)
        #expect(counters.hearing(now: 14_000).lag == 3_000)
        counters.probeSentAt.store(0, ordering: .relaxed)
        counters.ingestLag.store(120, ordering: .relaxed)
        #expect(counters.hearing(now: 14_000) == Hearing(since: 1, lag: 120))
    }

    @Test func silenceBeforeTheAggregatorListenedIsNotTheAgents() {
        // Last heard 10 min ago, but we only started listening 1 s ago: still online.
        #expect(policy.status(bootEpoch: 2, deathEpoch: 0, lastSeen: 0, now: 600_000, listeningSince: 599_000) == .online)
        #expect(policy.status(bootEpoch: 2, deathEpoch: 0, lastSeen: 0, now: 640_000, listeningSince: 599_000) == .stale)
    }
}

@Suite struct FleetRegistryTests {
    static let site = Site(id: "duomo", kind: .fiveGTower, latitude: 45.46, longitude: 9.19)
    let policy = FleetStatusPolicy(staleAfter: .seconds(30), offlineAfter: .seconds(120))

    static func birth(_ agent: String = "a", epoch: UInt64, time: Int64, interval: Double? = 2) -> AgentBirth {
        AgentBirth(agentID: agent, bootEpoch: epoch, version: "v", site: site, sensors: [], time: time,
                   configHash: "0123456789abcdef", healthIntervalSeconds: interval, keepAliveSeconds: 10)
    }

    static func health(_ agent: String = "a", epoch: UInt64, time: Int64, buffered: Int64 = 0) -> AgentHealth {
        var health = AgentHealth(agentID: agent, bootEpoch: epoch, time: time, uptimeSeconds: 5, readingsAccepted: 10,
                                 readingsDelivered: 10 - buffered, readingsBuffered: buffered, readingsDropped: 3)
        health.rssBytes = 9_000_000
        health.oldestUnsentSeconds = 4.5
        health.ackLatencyMeanMilliseconds = 12
        return health
    }

    @Test(arguments: StoreBackendKind.allCases) func aStaleDeathNeverHidesANewerSession(backend: StoreBackendKind) throws {
        let store = try backend.store()
        try store.recordBirth(Self.birth(epoch: 2, time: 1000), now: 1000)
        #expect(try store.recordDeath(AgentDeath(agentID: "a", bootEpoch: 1), now: 1500) == nil)  // the last session's will, late
        #expect(try store.fleet(now: 2000, policy: policy).first?.status == .online)
        #expect(try store.recordDeath(AgentDeath(agentID: "a", bootEpoch: 2), now: 2000)?.reason == "last will")
        #expect(try store.fleet(now: 2000, policy: policy).first?.status == .offline)
        try store.recordBirth(Self.birth(epoch: 1, time: 900), now: 3000)
        #expect(try store.fleet(now: 3000, policy: policy).first?.status == .offline)  // an old retained birth changes nothing
        // A restart: a new epoch is online again, with the transition recorded.
        #expect(try store.recordBirth(Self.birth(epoch: 3, time: 4000), now: 4000)?.to == .online)
        let detail = try #require(try store.agentDetail(id: "a", now: 4000, policy: policy))
        #expect(detail.transitions.map(\.to) == [.online, .offline, .online])
        #expect(detail.transitions.map(\.bootEpoch) == [3, 2, 2])
        #expect(detail.transitions.map(\.reason) == ["birth", "last will", "birth"])
        #expect(detail.agent.bootEpoch == 3 && detail.agent.configHash == "0123456789abcdef" && detail.agent.keepAliveSeconds == 10)
    }

    @Test(arguments: StoreBackendKind.allCases) func aGoodbyeIsToldApartFromALastWill(backend: StoreBackendKind) throws {
        let store = try backend.store()
        try store.recordBirth(Self.birth(epoch: 5, time: 0), now: 0)
        #expect(try store.recordDeath(AgentDeath(agentID: "a", bootEpoch: 5, graceful: true), now: 10)?.reason == "goodbye")
    }

    @Test(arguments: StoreBackendKind.allCases) func silenceMakesStaleThenOfflineAndAMessageOnlineAgain(backend: StoreBackendKind) throws {
        let store = try backend.store()
        try store.recordBirth(Self.birth(epoch: 7, time: 0, interval: 2), now: 0)
        #expect(try store.refreshStatuses(now: 5_000, policy: policy).isEmpty)
        let stale = try store.refreshStatuses(now: 6_500, policy: policy)
        #expect(stale.map(\.to) == [.stale] && stale.first?.reason == "silent 7 s")
        #expect(try store.refreshStatuses(now: 7_000, policy: policy).isEmpty)  // recorded once, not every tick
        // 2 s heartbeats, 10 s keepalive (the birth's): offline once silent for 15 s.
        #expect(try store.refreshStatuses(now: 15_000, policy: policy).isEmpty)
        #expect(try store.refreshStatuses(now: 15_001, policy: policy).map(\.to) == [.offline])
        let json = Self.health(epoch: 7, time: 122_000, buffered: 4).json()
        #expect(try store.recordHealth(Self.health(epoch: 7, time: 122_000, buffered: 4), json: json, now: 122_000)?.to == .online)
        let agent = try #require(try store.fleet(now: 122_500, policy: policy).first)
        #expect(agent.status == .online)
        #expect(agent.readingsBuffered == Int64(4))
        #expect(agent.health?.rssBytes == Int64(9_000_000))
        #expect(agent.health?.readingsDropped == Int64(3))
        #expect(agent.statusSince == Timestamp.iso8601(milliseconds: 122_000))
    }

    @Test(arguments: StoreBackendKind.allCases) func healthHistoryIsKeptInOrderAndPrunedByAge(backend: StoreBackendKind) throws {
        let store = try backend.store()
        try store.recordBirth(Self.birth(epoch: 1, time: 0), now: 0)
        for second in 1...10 {
            let health = Self.health(epoch: 1, time: Int64(second) * 1000, buffered: Int64(second))
            try store.recordHealth(health, json: health.json(), now: Int64(second) * 1000)
        }
        var detail = try #require(try store.agentDetail(id: "a", now: 10_000, policy: policy, healthLimit: 4))
        #expect(detail.healthHistory.map(\.readingsBuffered) == [7, 8, 9, 10])
        try store.pruneFleetHistory(healthBefore: 8_000, transitionsBefore: 0)
        detail = try #require(try store.agentDetail(id: "a", now: 10_000, policy: policy))
        #expect(detail.healthHistory.map(\.readingsBuffered) == [8, 9, 10])
        #expect(detail.agent.health?.readingsBuffered == Int64(10))  // the latest stays on the agent
        #expect(try store.agentDetail(id: "nobody", now: 0, policy: policy) == nil)
    }

    @Test func aStoreFromBeforeTheFleetViewGetsItsColumns() throws {
        let path = try Repository.temporaryFolder("fleet").appendingPathComponent("twin.sqlite").path
        do {
            let db = try SQLiteConnection(path: path)
            try db.execute("""
                CREATE TABLE agents (id TEXT PRIMARY KEY, site_id TEXT, site_kind TEXT, latitude REAL, longitude REAL,
                    version TEXT, boot_epoch INTEGER NOT NULL DEFAULT 0, death_epoch INTEGER NOT NULL DEFAULT 0,
                    birth_time INTEGER, last_seen INTEGER, batches INTEGER NOT NULL DEFAULT 0, readings INTEGER NOT NULL DEFAULT 0,
                    duplicates INTEGER NOT NULL DEFAULT 0, rejected INTEGER NOT NULL DEFAULT 0,
                    reported_accepted INTEGER, reported_buffered INTEGER);
                INSERT INTO agents (id, boot_epoch, last_seen, batches) VALUES ('old', 4, 1000, 12);
                """)
        }
        let store = try TwinStore(path: path)
        let agent = try #require(try store.fleet(now: 2000, policy: policy).first)
        #expect(agent.id == "old" && agent.batchesReceived == 12 && agent.status == .online && agent.health == nil)
        #expect(try store.refreshStatuses(now: 2000, policy: policy).map(\.reason) == ["registered"])
    }
}

/// The aggregator's own gap (its process frozen with SIGSTOP, suspended, or starved of CPU) is
/// never taken for the agents' silence: no agent goes stale or offline because we did not run.
@Suite struct AggregatorGapTests {
    final class Clock: WallClock, @unchecked Sendable {
        var now: Int64 = 0
        func nowMilliseconds() -> Int64 { now }
    }

    @Test func aFrozenAggregatorMarksNoAgentOffline() throws {
        let store = try StoreBackendKind.sqlite.store()
        let counters = IngestCounters()
        let policy = FleetStatusPolicy(staleAfter: .seconds(30), offlineAfter: .seconds(120))
        var configuration = AggregatorConfiguration()
        configuration.fleet = policy
        let monitor = FleetMonitor(store: store, configuration: configuration, counters: counters, metrics: nil,
                                   logger: Logger(label: "test"))
        counters.listeningSince.store(1_000, ordering: .relaxed)
        for agent in ["a", "b", "c"] { try store.recordBirth(FleetRegistryTests.birth(agent, epoch: 1, time: 1_000), now: 1_000) }
        var prune: Int64 = .max
        for t in stride(from: Int64(2_000), through: 5_000, by: 1_000) { monitor.tick(now: t, lastPrune: &prune) }
        #expect(try store.fleet(now: 5_000, policy: policy, hearing: counters.hearing(now: 5_000)).allSatisfy { $0.status == .online })

        // Frozen from 5 s to 40 s: past every agent's stale (6 s) and offline (15 s) thresholds.
        #expect(counters.hearing(now: 40_000).since == 40_000)  // a read before the monitor's next pass
        monitor.tick(now: 40_000, lastPrune: &prune)
        let detail = try #require(try store.agentDetail(id: "a", now: 40_000, policy: policy))
        #expect(detail.transitions.map(\.reason) == ["birth"])
        #expect(try store.fleet(now: 40_000, policy: policy, hearing: counters.hearing(now: 40_000)).allSatisfy { $0.status == .online })

        // Silence after the gap still counts: 2 s heartbeats, stale after 3 missed ones.
        for t in stride(from: Int64(41_000), through: 47_000, by: 1_000) { monitor.tick(now: t, lastPrune: &prune) }
        #expect(try store.fleet(now: 47_000, policy: policy, hearing: counters.hearing(now: 47_000)).allSatisfy { $0.status == .stale })
    }
}
