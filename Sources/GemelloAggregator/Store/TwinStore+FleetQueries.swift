import Foundation
import GemelloCore
import GemelloStorage

/// The fleet registry's reads (on the reader connection): the fleet, one agent in detail, totals.
extension TwinStore {
    /// Every known agent with its status under `policy` at `now` (computed on read, so it is exact
    /// even between two of the monitor's refreshes) and its latest health.
    public func fleet(now: Int64, policy: FleetStatusPolicy, hearing: Hearing = .perfect) throws(AggregatorError) -> [FleetAgentSummary] {
        try read { db in try Self.summaries(where: nil, now: now, policy: policy, hearing: hearing, db) }
    }

    /// One agent with its transitions (newest first, at most `transitionLimit`) and health
    /// history (oldest first, the newest `healthLimit`); `nil` for an unknown agent.
    public func agentDetail(id: String, now: Int64, policy: FleetStatusPolicy, hearing: Hearing = .perfect,
                            transitionLimit: Int = 100, healthLimit: Int = 360) throws(AggregatorError) -> FleetAgentDetail? {
        try read { db -> FleetAgentDetail? in
            guard let agent = try Self.summaries(where: id, now: now, policy: policy, hearing: hearing, db).first else {
                return nil
            }
            var transitions: [FleetTransition] = []
            let rows = try db.query("""
                SELECT time, from_status, to_status, epoch, reason FROM transitions WHERE agent_id = ?
                ORDER BY time DESC, id DESC LIMIT ?
                """, [.text(id), .integer(Int64(transitionLimit))])
            while try rows.step() {
                transitions.append(FleetTransition(
                    agentID: id, time: Timestamp.iso8601(milliseconds: rows.int64(0)),
                    from: rows.isNull(1) ? nil : FleetAgentSummary.Status(rawValue: rows.text(1)),
                    to: FleetAgentSummary.Status(rawValue: rows.text(2)) ?? .offline,
                    bootEpoch: UInt64(bitPattern: rows.int64(3)), reason: rows.text(4)))
            }
            var history: [AgentHealth] = []
            let health = try db.query("""
                SELECT json FROM (SELECT id, json FROM health WHERE agent_id = ? ORDER BY received DESC, id DESC LIMIT ?) AS newest
                ORDER BY id
                """, [.text(id), .integer(Int64(healthLimit))])
            let decoder = JSONDecoder()
            while try health.step() {
                if let report = try? decoder.decode(AgentHealth.self, from: Data(health.text(0).utf8)) { history.append(report) }
            }
            return FleetAgentDetail(agent: agent, transitions: transitions, healthHistory: history)
        }
    }

    private static func summaries(where agent: String?, now: Int64, policy: FleetStatusPolicy, hearing: Hearing,
                                  _ db: any StoreConnection) throws -> [FleetAgentSummary] {
        let rows = try db.query("""
            SELECT id, site_id, site_kind, latitude, longitude, version, boot_epoch, death_epoch, last_seen,
                   batches, readings, duplicates, rejected, reported_accepted, reported_buffered,
                   status_since, config_hash, health_interval_ms, keepalive_s, last_health
            FROM agents WHERE CAST(?1 AS TEXT) IS NULL OR id = ?1 ORDER BY id
            """, [agent.map { .text($0) } ?? .null])
        let decoder = JSONDecoder()
        var result: [FleetAgentSummary] = []
        while try rows.step() {
            let lastSeen: Int64? = rows.isNull(8) ? nil : rows.int64(8)
            let bootEpoch = UInt64(bitPattern: rows.int64(6))
            let healthInterval: Duration? = rows.isNull(17) ? nil : .milliseconds(rows.int64(17))
            var summary = FleetAgentSummary(
                id: rows.text(0),
                status: policy.status(bootEpoch: bootEpoch, deathEpoch: UInt64(bitPattern: rows.int64(7)), lastSeen: lastSeen,
                                      now: now, healthInterval: healthInterval,
                                      keepAlive: rows.isNull(18) ? nil : .seconds(rows.int64(18)), hearing: hearing),
                siteID: rows.isNull(1) ? nil : rows.text(1), siteKind: rows.isNull(2) ? nil : rows.text(2),
                latitude: rows.isNull(3) ? nil : rows.double(3), longitude: rows.isNull(4) ? nil : rows.double(4),
                version: rows.isNull(5) ? nil : rows.text(5), bootEpoch: bootEpoch,
                lastSeen: lastSeen.map { Timestamp.iso8601(milliseconds: $0) },
                secondsSinceLastSeen: lastSeen.map { Double(now - $0) / 1000 },
                batchesReceived: rows.int64(9), readingsReceived: rows.int64(10),
                duplicateBatches: rows.int64(11), rejectedBatches: rows.int64(12),
                readingsAccepted: rows.isNull(13) ? nil : rows.int64(13),
                readingsBuffered: rows.isNull(14) ? nil : rows.int64(14))
            summary.statusSince = rows.isNull(15) ? nil : Timestamp.iso8601(milliseconds: rows.int64(15))
            summary.configHash = rows.isNull(16) ? nil : rows.text(16)
            summary.healthIntervalSeconds = healthInterval.map(\.seconds)
            summary.keepAliveSeconds = rows.isNull(18) ? nil : rows.int(18)
            summary.health = rows.isNull(19) ? nil : try? decoder.decode(AgentHealth.self, from: Data(rows.text(19).utf8))
            result.append(summary)
        }
        return result
    }

    /// The agents heard (a batch, a birth, a health report) at or after `since` (ms), by any
    /// aggregator writing this store.
    public func agentsSeen(since: Int64) throws(AggregatorError) -> [String] {
        try read { db in
            let rows = try db.query("SELECT id FROM agents WHERE last_seen >= ? ORDER BY id", [.integer(since)])
            var out: [String] = []
            while try rows.step() { out.append(rows.text(0)) }
            return out
        }
    }

    /// Totals over all agents: batches, readings, duplicates, rejected.
    public func totals() throws(AggregatorError) -> (batches: Int64, readings: Int64, duplicates: Int64, rejected: Int64, agents: Int) {
        try read { db in
            let row = try db.query("""
                SELECT CAST(coalesce(sum(batches), 0) AS BIGINT), CAST(coalesce(sum(readings), 0) AS BIGINT),
                       CAST(coalesce(sum(duplicates), 0) AS BIGINT), CAST(coalesce(sum(rejected), 0) AS BIGINT), count(*) FROM agents
                """)
            guard try row.step() else { return (0, 0, 0, 0, 0) }
            return (row.int64(0), row.int64(1), row.int64(2), row.int64(3), row.int(4))
        }
    }
}
