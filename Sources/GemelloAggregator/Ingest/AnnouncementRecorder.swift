import Foundation
import GemelloCore
import Logging

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
        record(payload, agent: agent, as: AgentHealth.self) { health, json in
            try self.store.recordHealth(health, json: json, now: self.clock.nowMilliseconds())
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
