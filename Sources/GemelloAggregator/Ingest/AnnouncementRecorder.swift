import Foundation
import GemelloCore
import Logging
import Synchronization

/// Births, deaths and health reports into the fleet registry, with the status changes they cause
/// logged. One that names another agent than its topic is refused: otherwise any client could
/// mark any agent offline.
final class AnnouncementRecorder: Sendable {
    private let store: TwinStore
    /// Told after a birth: the agent's sensors, version or site may have changed.
    private let projection: TwinProjection?
    /// Told of status changes (fleet rules) and births.
    private let alerts: AlertEngine?
    private let clock: any WallClock
    private let logger: Logger
    /// Each agent's latest full health view: the base its deltas apply to.
    private let latestHealth = Mutex<[String: AgentHealth]>([:])

    init(store: TwinStore, projection: TwinProjection?, alerts: AlertEngine? = nil, clock: any WallClock, logger: Logger) {
        self.store = store
        self.alerts = alerts
        self.projection = projection
        self.clock = clock
        self.logger = logger
    }

    func birth(_ payload: [UInt8], agent: String) {
        record(payload, agent: agent, as: AgentBirth.self) { birth, _ in try self.store.recordBirth(birth, now: self.clock.nowMilliseconds()) }
        projection?.agentBorn(agent)
        alerts?.agentBorn(agent)
    }

    func death(_ payload: [UInt8], agent: String) {
        record(payload, agent: agent, as: AgentDeath.self) { death, _ in try self.store.recordDeath(death, now: self.clock.nowMilliseconds()) }
    }

    func health(_ payload: [UInt8], agent: String) {
        guard !AgentHealthDelta.isDelta(payload) else { return healthDelta(payload, agent: agent) }
        record(payload, agent: agent, as: AgentHealth.self) { health, json in
            self.latestHealth.withLock { $0[agent] = health }
            return try self.store.recordHealth(health, json: json, now: self.clock.nowMilliseconds())
        }
    }

    /// A health delta: applied to the agent's latest report of the same boot epoch (kept here, or
    /// read back from the store after a restart) and recorded as the full report it makes.
    /// Without such a base (none stored, or of another epoch) it counts only as a sign of life
    /// until the agent's next full report.
    private func healthDelta(_ payload: [UInt8], agent: String) {
        let now = clock.nowMilliseconds()
        do {
            let delta = try JSONDecoder().decode(AgentHealthDelta.self, from: Data(payload))
            var base = latestHealth.withLock { $0[agent] }
            if base?.bootEpoch != delta.bootEpoch, let json = try store.lastHealthJSON(agent: agent) {
                base = try? JSONDecoder().decode(AgentHealth.self, from: Data(json.utf8))
            }
            guard let base, base.bootEpoch == delta.bootEpoch else {
                try store.recordSignOfLife(agent: agent, now: now)
                logger.debug("a health delta without its full report; waiting for the next one", metadata: ["agent": "\(agent)"])
                return
            }
            let health = delta.applied(to: base, now: now)
            latestHealth.withLock { $0[agent] = health }
            if let change = try store.recordHealth(health, json: health.json(), now: now) {
                alerts?.fleetChanged([change])
                logger.log(level: change.to == .online ? .info : .warning, "agent \(change.to.rawValue)", metadata: [
                    "agent": "\(agent)", "epoch": "\(change.bootEpoch)", "reason": "\(change.reason)"])
            }
        } catch {
            logger.warning("ignoring a malformed health delta", metadata: ["agent": "\(agent)", "error": "\(error)"])
        }
    }

    /// Decodes and records one announcement (`record` gets it and its JSON text).
    private func record<T: AgentAnnouncement>(_ payload: [UInt8], agent: String, as type: T.Type,
                                              _ record: (T, String) throws -> FleetTransition?) {
        guard !payload.isEmpty else { return }  // a cleared retained message
        do {
            let announcement = try JSONDecoder().decode(T.self, from: Data(payload))
            guard announcement.agentID == agent else {
                throw CoreError(.malformed, "names agent '\(announcement.agentID)' but arrived on the topic of '\(agent)'")
            }
            if let change = try record(announcement, String(decoding: payload, as: UTF8.self)) {
                alerts?.fleetChanged([change])
                logger.log(level: change.to == .online ? .info : .warning, "agent \(change.to.rawValue)", metadata: [
                    "agent": "\(agent)", "epoch": "\(change.bootEpoch)", "reason": "\(change.reason)"])
            }
        } catch {
            logger.warning("ignoring a malformed announcement", metadata: ["agent": "\(agent)", "type": "\(T.self)", "error": "\(error)"])
        }
    }
}
