import GemelloCore
import GemelloSQLite

extension TwinStore {
    /// An agent announced itself: record where it is, what it measures, and its new session.
    public func recordBirth(_ birth: AgentBirth, now: Int64) throws(AggregatorError) {
        try write { db in
            try db.statement("INSERT OR IGNORE INTO agents (id) VALUES (?)").run([.text(birth.agentID)])
            // An older retained birth arriving late never rolls the session back.
            try db.statement("""
                UPDATE agents SET site_id = ?, site_kind = ?, latitude = ?, longitude = ?, version = ?,
                    boot_epoch = max(boot_epoch, ?), birth_time = ?, last_seen = max(coalesce(last_seen, 0), ?)
                WHERE id = ?
                """).run([.text(birth.site.id), .text(birth.site.kind.rawValue), .real(birth.site.latitude),
                          .real(birth.site.longitude), .text(birth.version), .integer(Int64(bitPattern: birth.bootEpoch)),
                          .integer(birth.time), .integer(min(birth.time, now)), .text(birth.agentID)])
            try db.statement("DELETE FROM sensors WHERE agent_id = ?").run([.text(birth.agentID)])
            for sensor in birth.sensors {
                try db.statement("INSERT INTO sensors VALUES (?, ?, ?)")
                    .run([.text(birth.agentID), .text(sensor.id), .text(sensor.entityType)])
            }
        }
    }

    /// The agent's Last Will (or its own goodbye): its session `bootEpoch` is over.
    public func recordDeath(_ death: AgentDeath) throws(AggregatorError) {
        try write { db in
            try db.statement("UPDATE agents SET death_epoch = max(death_epoch, ?) WHERE id = ?")
                .run([.integer(Int64(bitPattern: death.bootEpoch)), .text(death.agentID)])
        }
    }

    public func recordHealth(_ health: AgentHealth, now: Int64) throws(AggregatorError) {
        try write { db in
            try db.statement("INSERT OR IGNORE INTO agents (id) VALUES (?)").run([.text(health.agentID)])
            try db.statement("""
                UPDATE agents SET last_seen = ?, reported_accepted = ?, reported_buffered = ?,
                    boot_epoch = max(boot_epoch, ?) WHERE id = ?
                """).run([.integer(now), .integer(health.readingsAccepted), .integer(health.readingsBuffered),
                          .integer(Int64(bitPattern: health.bootEpoch)), .text(health.agentID)])
        }
    }

    /// A batch from `agent` could not be decoded: count it.
    public func recordRejected(agent: String, now: Int64) throws(AggregatorError) {
        try write { db in
            try db.statement("INSERT OR IGNORE INTO agents (id) VALUES (?)").run([.text(agent)])
            try db.statement("UPDATE agents SET rejected = rejected + 1, last_seen = ? WHERE id = ?").run([.integer(now), .text(agent)])
        }
    }

    /// Every known agent with its status under `policy`.
    public func fleet(now: Int64, policy: FleetStatusPolicy) throws(AggregatorError) -> [FleetAgentSummary] {
        try read { db in
            let rows = try db.statement("""
                SELECT id, site_id, site_kind, latitude, longitude, version, boot_epoch, death_epoch, last_seen,
                       batches, readings, duplicates, rejected, reported_accepted, reported_buffered
                FROM agents ORDER BY id
                """)
            var result: [FleetAgentSummary] = []
            while try rows.step() {
                let lastSeen: Int64? = rows.isNull(8) ? nil : rows.int64(8)
                let bootEpoch = UInt64(bitPattern: rows.int64(6))
                result.append(FleetAgentSummary(
                    id: rows.text(0),
                    status: policy.status(bootEpoch: bootEpoch, deathEpoch: UInt64(bitPattern: rows.int64(7)), lastSeen: lastSeen, now: now),
                    siteID: rows.isNull(1) ? nil : rows.text(1), siteKind: rows.isNull(2) ? nil : rows.text(2),
                    latitude: rows.isNull(3) ? nil : rows.double(3), longitude: rows.isNull(4) ? nil : rows.double(4),
                    version: rows.isNull(5) ? nil : rows.text(5), bootEpoch: bootEpoch,
                    lastSeen: lastSeen.map { Timestamp.iso8601(milliseconds: $0) },
                    secondsSinceLastSeen: lastSeen.map { Double(now - $0) / 1000 },
                    batchesReceived: rows.int64(9), readingsReceived: rows.int64(10),
                    duplicateBatches: rows.int64(11), rejectedBatches: rows.int64(12),
                    readingsAccepted: rows.isNull(13) ? nil : rows.int64(13),
                    readingsBuffered: rows.isNull(14) ? nil : rows.int64(14)))
            }
            return result
        }
    }

    /// Totals over all agents: batches, readings, duplicates, rejected.
    public func totals() throws(AggregatorError) -> (batches: Int64, readings: Int64, duplicates: Int64, rejected: Int64, agents: Int) {
        try read { db in
            let row = try db.statement("SELECT coalesce(sum(batches),0), coalesce(sum(readings),0), coalesce(sum(duplicates),0), coalesce(sum(rejected),0), count(*) FROM agents")
            guard try row.step() else { return (0, 0, 0, 0, 0) }
            return (row.int64(0), row.int64(1), row.int64(2), row.int64(3), row.int(4))
        }
    }
}
