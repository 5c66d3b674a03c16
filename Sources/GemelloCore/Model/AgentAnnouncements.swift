/// A message an agent publishes about itself; `agentID` must match the topic it arrived on.
public protocol AgentAnnouncement: Codable, Sendable {
    var agentID: String { get }
}

/// Published (retained) by an agent on every connect: who it is, where, and what it measures.
public struct AgentBirth: AgentAnnouncement, Equatable {
    public var agentID: String
    public var bootEpoch: UInt64
    public var version: String
    public var site: Site
    public var sensors: [SensorInfo]
    /// Unix milliseconds.
    public var time: Int64

    public init(agentID: String, bootEpoch: UInt64, version: String, site: Site, sensors: [SensorInfo], time: Int64) {
        self.agentID = agentID
        self.bootEpoch = bootEpoch
        self.version = version
        self.site = site
        self.sensors = sensors
        self.time = time
    }

    /// JSON without Foundation (see ``JSONWriter``); decoded on the aggregator with `Codable`.
    public func json() -> String {
        var site = JSONWriter()
        site.field("id", self.site.id)
        site.field("kind", self.site.kind.rawValue)
        site.field("latitude", self.site.latitude)
        site.field("longitude", self.site.longitude)
        let sensors = self.sensors.map { sensor -> String in
            var writer = JSONWriter()
            writer.field("id", sensor.id)
            writer.field("entityType", sensor.entityType)
            let attributes = sensor.attributes.map { attribute -> String in
                var a = JSONWriter()
                a.field("name", attribute.name)
                a.field("unit", attribute.unit)
                return a.finished()
            }
            writer.field("attributes", raw: "[" + attributes.joined(separator: ",") + "]")
            return writer.finished()
        }
        var writer = JSONWriter()
        writer.field("agentID", agentID)
        writer.field("bootEpoch", bootEpoch)
        writer.field("version", version)
        writer.field("site", raw: site.finished())
        writer.field("sensors", raw: "[" + sensors.joined(separator: ",") + "]")
        writer.field("time", time)
        return writer.finished()
    }
}

/// The Last Will the broker publishes when an agent vanishes, tagged with the session's epoch so
/// a late death never marks a newer session offline.
public struct AgentDeath: AgentAnnouncement, Equatable {
    public var agentID: String
    public var bootEpoch: UInt64

    public init(agentID: String, bootEpoch: UInt64) {
        self.agentID = agentID
        self.bootEpoch = bootEpoch
    }

    public func json() -> String {
        var writer = JSONWriter()
        writer.field("agentID", agentID)
        writer.field("bootEpoch", bootEpoch)
        return writer.finished()
    }
}

/// Periodic heartbeat with the agent's own counters.
public struct AgentHealth: AgentAnnouncement, Equatable {
    public var agentID: String
    public var bootEpoch: UInt64
    /// Unix milliseconds.
    public var time: Int64
    public var uptimeSeconds: Int64
    /// Readings accepted into the buffer since this boot.
    public var readingsAccepted: Int64
    /// Readings acknowledged by the aggregator since this boot.
    public var readingsDelivered: Int64
    /// Readings waiting in the buffer now.
    public var readingsBuffered: Int64
    /// Readings the buffer's limits dropped over its life (quota, age, full disk); absent from
    /// agents older than the limits.
    public var readingsDropped: Int64?

    public init(agentID: String, bootEpoch: UInt64, time: Int64, uptimeSeconds: Int64,
                readingsAccepted: Int64, readingsDelivered: Int64, readingsBuffered: Int64, readingsDropped: Int64? = nil) {
        self.agentID = agentID
        self.bootEpoch = bootEpoch
        self.time = time
        self.uptimeSeconds = uptimeSeconds
        self.readingsAccepted = readingsAccepted
        self.readingsDelivered = readingsDelivered
        self.readingsBuffered = readingsBuffered
        self.readingsDropped = readingsDropped
    }

    public func json() -> String {
        var writer = JSONWriter()
        writer.field("agentID", agentID)
        writer.field("bootEpoch", bootEpoch)
        writer.field("time", time)
        writer.field("uptimeSeconds", uptimeSeconds)
        writer.field("readingsAccepted", readingsAccepted)
        writer.field("readingsDelivered", readingsDelivered)
        writer.field("readingsBuffered", readingsBuffered)
        if let readingsDropped { writer.field("readingsDropped", readingsDropped) }
        return writer.finished()
    }
}
