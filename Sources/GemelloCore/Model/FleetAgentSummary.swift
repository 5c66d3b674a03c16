/// One agent as the aggregator's `GET /fleet` reports it (and `gemello fleet --json` prints it).
public struct FleetAgentSummary: Sendable, Equatable, Codable {
    /// `online`: connected and heard from recently; `stale`: connected but silent past its
    /// expected interval; `offline`: disconnected (Last Will or clean stop) or silent too long.
    public enum Status: String, Sendable, Codable, CaseIterable {
        case online, stale, offline
    }

    public var id: String
    public var status: Status
    public var siteID: String?
    public var siteKind: String?
    public var latitude: Double?
    public var longitude: Double?
    public var version: String?
    public var bootEpoch: UInt64
    /// ISO 8601 time of the last message of any kind from this agent.
    public var lastSeen: String?
    public var secondsSinceLastSeen: Double?
    public var batchesReceived: Int64
    public var readingsReceived: Int64
    public var duplicateBatches: Int64
    public var rejectedBatches: Int64
    /// From the agent's latest health message.
    public var readingsAccepted: Int64?
    public var readingsBuffered: Int64?
    /// When the current status began (ISO 8601), as the registry recorded it.
    public var statusSince: String?
    /// From the birth: configuration fingerprint, health interval, MQTT keepalive.
    public var configHash: String?
    public var healthIntervalSeconds: Double?
    public var keepAliveSeconds: Int?
    /// The agent's latest health message, whole.
    public var health: AgentHealth?

    public init(id: String, status: Status, siteID: String?, siteKind: String?, latitude: Double?, longitude: Double?,
                version: String?, bootEpoch: UInt64, lastSeen: String?, secondsSinceLastSeen: Double?,
                batchesReceived: Int64, readingsReceived: Int64, duplicateBatches: Int64, rejectedBatches: Int64,
                readingsAccepted: Int64?, readingsBuffered: Int64?) {
        self.id = id
        self.status = status
        self.siteID = siteID
        self.siteKind = siteKind
        self.latitude = latitude
        self.longitude = longitude
        self.version = version
        self.bootEpoch = bootEpoch
        self.lastSeen = lastSeen
        self.secondsSinceLastSeen = secondsSinceLastSeen
        self.batchesReceived = batchesReceived
        self.readingsReceived = readingsReceived
        self.duplicateBatches = duplicateBatches
        self.rejectedBatches = rejectedBatches
        self.readingsAccepted = readingsAccepted
        self.readingsBuffered = readingsBuffered
    }
}

/// `GET /fleet/{agent}`: the summary, the status transitions (newest first) and the health
/// history (oldest first) the registry keeps.
public struct FleetAgentDetail: Sendable, Equatable, Codable {
    public var agent: FleetAgentSummary
    public var transitions: [FleetTransition]
    public var healthHistory: [AgentHealth]

    public init(agent: FleetAgentSummary, transitions: [FleetTransition], healthHistory: [AgentHealth]) {
        self.agent = agent
        self.transitions = transitions
        self.healthHistory = healthHistory
    }
}

/// One change of an agent's status, as the registry records it.
public struct FleetTransition: Sendable, Equatable, Codable {
    public var agentID: String
    /// ISO 8601.
    public var time: String
    public var from: FleetAgentSummary.Status?
    public var to: FleetAgentSummary.Status
    public var bootEpoch: UInt64
    /// Why: "birth", "goodbye", "last will", "silent 31 s", "heard again".
    public var reason: String

    public init(agentID: String, time: String, from: FleetAgentSummary.Status?, to: FleetAgentSummary.Status,
                bootEpoch: UInt64, reason: String) {
        self.agentID = agentID
        self.time = time
        self.from = from
        self.to = to
        self.bootEpoch = bootEpoch
        self.reason = reason
    }
}

/// The aggregator's `GET /health` body.
public struct AggregatorHealth: Sendable, Equatable, Codable {
    public var status: String
    public var version: String
    public var brokerConnected: Bool
    public var uptimeSeconds: Double
    public var batchesIngested: Int64
    public var readingsIngested: Int64
    public var duplicateBatches: Int64
    public var rejectedBatches: Int64
    public var agents: Int

    public init(status: String, version: String, brokerConnected: Bool, uptimeSeconds: Double, batchesIngested: Int64,
                readingsIngested: Int64, duplicateBatches: Int64, rejectedBatches: Int64, agents: Int) {
        self.status = status
        self.version = version
        self.brokerConnected = brokerConnected
        self.uptimeSeconds = uptimeSeconds
        self.batchesIngested = batchesIngested
        self.readingsIngested = readingsIngested
        self.duplicateBatches = duplicateBatches
        self.rejectedBatches = rejectedBatches
        self.agents = agents
    }
}
