import GemelloCore
import GemelloStorage

/// The fleet registry's writes: births, deaths, health, rejections, and status transitions.
/// Queries are in `TwinStore+FleetQueries.swift`.
///
/// Every status change is a row in `transitions` written in the same transaction as the event
/// that caused it (birth, death) or by ``refreshStatuses(now:policy:hearing:)`` for
/// silence. Health reports go to `health` (pruned by age) and the latest also to `agents`.
extension TwinStore {
    static let fleetSchema = """
        CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, epoch INTEGER NOT NULL,
            received INTEGER NOT NULL, json TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS health_by_agent ON health (agent_id, received);
        CREATE INDEX IF NOT EXISTS health_by_time ON health (received);
        CREATE TABLE IF NOT EXISTS transitions (id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, time INTEGER NOT NULL,
            from_status TEXT, to_status TEXT NOT NULL, epoch INTEGER NOT NULL, reason TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS transitions_by_agent ON transitions (agent_id, time);
        CREATE INDEX IF NOT EXISTS transitions_by_time ON transitions (time);
        """

    /// Columns the fleet view added to `agents`; stores created before it get them on open.
    static let fleetColumns: [(name: String, type: String)] = [
        ("status", "TEXT"), ("status_since", "INTEGER"), ("config_hash", "TEXT"), ("health_interval_ms", "INTEGER"),
        ("keepalive_s", "INTEGER"), ("reported_dropped", "INTEGER"), ("last_health", "TEXT"),
    ]

    static func addFleetColumns(_ db: any StoreConnection) throws { try addColumns(table: "agents", fleetColumns, db) }

    /// Adds the columns a table lacks (stores made by earlier releases).
    static func addColumns(table: String, _ columns: [(name: String, type: String)], _ db: any StoreConnection) throws {
        var existing: Set<String> = []
        if db.dialect == .sqlite {
            let rows = try db.query("PRAGMA table_info(\(table))")
            while try rows.step() { existing.insert(rows.text(1)) }
        }
        for column in columns where !existing.contains(column.name) {
            guard db.dialect == .sqlite else {
                try db.executeSchema("ALTER TABLE \(table) ADD COLUMN IF NOT EXISTS \(column.name) \(column.type)")
                continue
            }
            try db.executeSchema("ALTER TABLE \(table) ADD COLUMN \(column.name) \(column.type)")
        }
    }

    /// Locks the rows of `agents` (ids sorted) until the transaction ends, so that aggregators
    /// sharing the store (a share group) handle one agent one at a time. Nothing on SQLite.
    static func lockAgents(_ agents: [String], _ db: any StoreConnection) throws {
        guard db.dialect != .sqlite, !agents.isEmpty else { return }
        _ = try db.query("SELECT id FROM agents WHERE id IN (\(Array(repeating: "?", count: agents.count).joined(separator: ", "))) "
                         + "ORDER BY id\(db.dialect.forUpdate)", agents.map { .text($0) })
    }

    /// An agent announced itself: record where it is, what it measures, and its new session.
    @discardableResult
    public func recordBirth(_ birth: AgentBirth, now: Int64) throws(AggregatorError) -> FleetTransition? {
        var made: FleetTransition?
        try write { db in
            try db.run("INSERT INTO agents (id) VALUES (?) ON CONFLICT DO NOTHING", [.text(birth.agentID)])
            try Self.lockAgents([birth.agentID], db)
            let before = try Self.session(of: birth.agentID, db)
            // An older retained birth arriving late never rolls the session back.
            try db.run("""
                UPDATE agents SET site_id = ?, site_kind = ?, latitude = ?, longitude = ?, version = ?,
                    boot_epoch = \(db.dialect.greatest("boot_epoch", "?")), birth_time = ?, last_seen = \(db.dialect.greatest("coalesce(last_seen, 0)", "?")),
                    config_hash = ?, health_interval_ms = ?, keepalive_s = ?
                WHERE id = ?
                """, [.text(birth.site.id), .text(birth.site.kind.rawValue), .real(birth.site.latitude),
                          .real(birth.site.longitude), .text(birth.version), .integer(Int64(bitPattern: birth.bootEpoch)),
                          .integer(birth.time), .integer(min(birth.time, now)), birth.configHash.map { .text($0) } ?? .null,
                          birth.healthIntervalSeconds.map { .integer(Int64($0 * 1000)) } ?? .null,
                          birth.keepAliveSeconds.map { .integer(Int64($0)) } ?? .null, .text(birth.agentID)])
            try db.run("DELETE FROM sensors WHERE agent_id = ?", [.text(birth.agentID)])
            for sensor in birth.sensors {
                try db.run("INSERT INTO sensors VALUES (?, ?, ?)", [.text(birth.agentID), .text(sensor.id), .text(sensor.entityType)])
            }
            let session = try Self.session(of: birth.agentID, db)
            // A retained birth heard again (we reconnected) is no news; a new session always is.
            if session.boot == birth.bootEpoch && session.boot > session.death && (before.status != .online || before.boot < birth.bootEpoch) {
                made = try Self.transition(birth.agentID, from: before.status, to: .online, epoch: birth.bootEpoch, now: now, reason: "birth", db)
            }
        }
        return made
    }

    /// The agent's Last Will or its own goodbye: session `bootEpoch` is over. A death for an older
    /// session than the latest birth changes nothing.
    @discardableResult
    public func recordDeath(_ death: AgentDeath, now: Int64) throws(AggregatorError) -> FleetTransition? {
        var made: FleetTransition?
        try write { db in
            try db.run("INSERT INTO agents (id) VALUES (?) ON CONFLICT DO NOTHING", [.text(death.agentID)])
            try Self.lockAgents([death.agentID], db)
            try db.run("UPDATE agents SET death_epoch = \(db.dialect.greatest("death_epoch", "?")) WHERE id = ?", [.integer(Int64(bitPattern: death.bootEpoch)), .text(death.agentID)])
            let session = try Self.session(of: death.agentID, db)
            if death.bootEpoch >= session.boot && session.status != .offline {  // a will after our keepalive verdict adds nothing
                made = try Self.transition(death.agentID, from: session.status, to: .offline, epoch: death.bootEpoch, now: now,
                                           reason: death.graceful == true ? "goodbye" : "last will", db)
            }
        }
        return made
    }

    /// Stores a health report (`json` is the payload as received, already decoded as `health`).
    @discardableResult
    public func recordHealth(_ health: AgentHealth, json: String, now: Int64) throws(AggregatorError) -> FleetTransition? {
        var made: FleetTransition?
        try write { db in
            try db.run("INSERT INTO agents (id) VALUES (?) ON CONFLICT DO NOTHING", [.text(health.agentID)])
            try Self.lockAgents([health.agentID], db)
            try db.run("""
                UPDATE agents SET last_seen = ?, reported_accepted = ?, reported_buffered = ?, reported_dropped = ?,
                    last_health = ?, boot_epoch = \(db.dialect.greatest("boot_epoch", "?")) WHERE id = ?
                """, [.integer(now), .integer(health.readingsAccepted), .integer(health.readingsBuffered),
                          health.readingsDropped.map { .integer($0) } ?? .null, .text(json),
                          .integer(Int64(bitPattern: health.bootEpoch)), .text(health.agentID)])
            try db.run("INSERT INTO health (agent_id, epoch, received, json) VALUES (?, ?, ?, ?)", [.text(health.agentID), .integer(Int64(bitPattern: health.bootEpoch)), .integer(now), .text(json)])
            let session = try Self.session(of: health.agentID, db)
            if session.boot == health.bootEpoch && session.boot > session.death && session.status != .online {
                made = try Self.transition(health.agentID, from: session.status, to: .online, epoch: health.bootEpoch, now: now,
                                           reason: "heard again", db)
            }
        }
        return made
    }

    /// The JSON of `agent`'s latest health report (the base of its health deltas).
    public func lastHealthJSON(agent: String) throws(AggregatorError) -> String? {
        try read { db -> String? in
            let rows = try db.query("SELECT last_health FROM agents WHERE id = ?", [.text(agent)])
            guard try rows.step(), !rows.isNull(0) else { return nil }
            return rows.text(0)
        }
    }

    /// `agent` was heard from (a health heartbeat without a report to apply it to).
    public func recordSignOfLife(agent: String, now: Int64) throws(AggregatorError) {
        try write { db in
            try db.run("UPDATE agents SET last_seen = \(db.dialect.greatest("coalesce(last_seen, 0)", "?")) WHERE id = ?",
                       [.integer(now), .text(agent)])
        }
    }

    /// A batch from `agent` could not be decoded: count it.
    public func recordRejected(agent: String, now: Int64) throws(AggregatorError) {
        try write { db in
            try db.run("INSERT INTO agents (id) VALUES (?) ON CONFLICT DO NOTHING", [.text(agent)])
            try Self.lockAgents([agent], db)
            try db.run("UPDATE agents SET rejected = rejected + 1, last_seen = ? WHERE id = ?", [.integer(now), .text(agent)])
        }
    }

    /// Re-evaluates every agent under `policy` (silence makes agents stale, then offline; a
    /// message makes them online again) and records the changes. Returns the transitions made.
    @discardableResult
    public func refreshStatuses(now: Int64, policy: FleetStatusPolicy, hearing: Hearing = .perfect) throws(AggregatorError) -> [FleetTransition] {
        var made: [FleetTransition] = []
        try write { db in
            let rows = try db.query("SELECT id, boot_epoch, death_epoch, last_seen, health_interval_ms, status, keepalive_s FROM agents ORDER BY id\(db.dialect.forUpdate)")
            var changes: [(id: String, epoch: UInt64, from: FleetAgentSummary.Status?, to: FleetAgentSummary.Status, reason: String)] = []
            while try rows.step() {
                let lastSeen: Int64? = rows.isNull(3) ? nil : rows.int64(3)
                let boot = UInt64(bitPattern: rows.int64(1))
                let status = policy.status(bootEpoch: boot, deathEpoch: UInt64(bitPattern: rows.int64(2)), lastSeen: lastSeen,
                                           now: now, healthInterval: rows.isNull(4) ? nil : .milliseconds(rows.int64(4)),
                                           keepAlive: rows.isNull(6) ? nil : .seconds(rows.int64(6)), hearing: hearing)
                let stored = rows.isNull(5) ? nil : FleetAgentSummary.Status(rawValue: rows.text(5))
                guard status != stored else { continue }
                let silence = lastSeen.map { "silent \(Int((Double(hearing.silence(since: $0, now: now)) / 1000).rounded())) s" } ?? "never heard"
                let reason = stored == nil ? "registered" : status == .online ? "heard again" : silence
                changes.append((rows.text(0), boot, stored, status, reason))
            }
            for change in changes {
                made.append(try Self.transition(change.id, from: change.from, to: change.to, epoch: change.epoch, now: now,
                                                reason: change.reason, db))
            }
        }
        return made
    }

    /// Drops health reports received before `healthBefore` and transitions before
    /// `transitionsBefore` (each agent's latest health stays in `agents`).
    public func pruneFleetHistory(healthBefore: Int64, transitionsBefore: Int64) throws(AggregatorError) {
        try write { db in
            try db.run("DELETE FROM health WHERE received < ?", [.integer(healthBefore)])
            try db.run("DELETE FROM transitions WHERE time < ?", [.integer(transitionsBefore)])
        }
    }

    private static func session(of agent: String, _ db: any StoreConnection) throws
        -> (boot: UInt64, death: UInt64, status: FleetAgentSummary.Status?) {
        let row = try db.query("SELECT boot_epoch, death_epoch, status FROM agents WHERE id = ?", [.text(agent)])
        guard try row.step() else { return (0, 0, nil) }
        return (UInt64(bitPattern: row.int64(0)), UInt64(bitPattern: row.int64(1)),
                row.isNull(2) ? nil : FleetAgentSummary.Status(rawValue: row.text(2)))
    }

    /// Sets the agent's status and records the transition (also when only the epoch changed:
    /// a restart seen as birth after birth is still a new session).
    @discardableResult
    private static func transition(_ agent: String, from previous: FleetAgentSummary.Status?, to status: FleetAgentSummary.Status,
                                   epoch: UInt64, now: Int64, reason: String, _ db: any StoreConnection) throws -> FleetTransition {
        try db.run("UPDATE agents SET status = ?, status_since = ? WHERE id = ?", [.text(status.rawValue), .integer(now), .text(agent)])
        try db.run("INSERT INTO transitions (agent_id, time, from_status, to_status, epoch, reason) VALUES (?, ?, ?, ?, ?, ?)", [.text(agent), .integer(now), previous.map { .text($0.rawValue) } ?? .null, .text(status.rawValue),
                  .integer(Int64(bitPattern: epoch)), .text(reason)])
        return FleetTransition(agentID: agent, time: Timestamp.iso8601(milliseconds: now), from: previous, to: status,
                               bootEpoch: epoch, reason: reason)
    }
}
