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
    /// FNV-1a of the agent's configuration file: two agents (or two boots) with different hashes
    /// run different settings. Absent from agents older than the fleet view.
    public var configHash: String?
    /// How often this agent sends health: the aggregator calls it `stale` after a few missed ones.
    public var healthIntervalSeconds: Double?
    /// The MQTT keepalive: the broker publishes the Last Will after 1.5× this without traffic.
    public var keepAliveSeconds: Int?

    public init(agentID: String, bootEpoch: UInt64, version: String, site: Site, sensors: [SensorInfo], time: Int64,
                configHash: String? = nil, healthIntervalSeconds: Double? = nil, keepAliveSeconds: Int? = nil) {
        self.agentID = agentID
        self.bootEpoch = bootEpoch
        self.version = version
        self.site = site
        self.sensors = sensors
        self.time = time
        self.configHash = configHash
        self.healthIntervalSeconds = healthIntervalSeconds
        self.keepAliveSeconds = keepAliveSeconds
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
        if let configHash { writer.field("configHash", configHash) }
        if let healthIntervalSeconds { writer.field("healthIntervalSeconds", healthIntervalSeconds) }
        if let keepAliveSeconds { writer.field("keepAliveSeconds", keepAliveSeconds) }
        return writer.finished()
    }
}

/// The Last Will the broker publishes when an agent vanishes, tagged with the session's epoch so
/// a late death never marks a newer session offline.
public struct AgentDeath: AgentAnnouncement, Equatable {
    public var agentID: String
    public var bootEpoch: UInt64
    /// `true` when the agent said goodbye itself on a clean stop; absent in the Last Will.
    public var graceful: Bool?

    public init(agentID: String, bootEpoch: UInt64, graceful: Bool? = nil) {
        self.agentID = agentID
        self.bootEpoch = bootEpoch
        self.graceful = graceful
    }

    public func json() -> String {
        var writer = JSONWriter()
        writer.field("agentID", agentID)
        writer.field("bootEpoch", bootEpoch)
        if let graceful { writer.field("graceful", graceful) }
        return writer.finished()
    }
}

/// Periodic heartbeat: the agent's own counters and the box it runs on. Every field added after
/// the first release is optional, so an older agent's health still decodes.
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
    /// Readings the buffer's limits dropped over its life (quota, age, full disk).
    public var readingsDropped: Int64?
    /// Bytes the buffer's database holds now (pages in use).
    public var bufferedBytes: Int64?
    /// Age of the oldest reading not yet acknowledged, in seconds (0 when the buffer is empty).
    public var oldestUnsentSeconds: Double?
    /// Free bytes on the buffer's filesystem (for an unprivileged process).
    public var diskFreeBytes: Int64?
    /// Resident memory of the agent process.
    public var rssBytes: Int64?
    /// CPU used since the previous health message, in percent of one core.
    public var cpuPercent: Double?
    /// Connections to the broker lost since this boot.
    public var reconnects: Int64?
    /// Publish-to-acknowledgement latency of the batches acknowledged since the previous health
    /// message (mean and worst), in milliseconds; absent when none was.
    public var ackLatencyMeanMilliseconds: Double?
    public var ackLatencyMaxMilliseconds: Double?
    /// True while the buffer is full and inputs that can wait are paused (back-pressure).
    public var bufferPaused: Bool?
    /// Each input's self-metrics (readings, errors, last success), in configuration order.
    public var inputs: [InputHealth]?

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
        if let bufferedBytes { writer.field("bufferedBytes", bufferedBytes) }
        if let oldestUnsentSeconds { writer.field("oldestUnsentSeconds", oldestUnsentSeconds) }
        if let diskFreeBytes { writer.field("diskFreeBytes", diskFreeBytes) }
        if let rssBytes { writer.field("rssBytes", rssBytes) }
        if let cpuPercent { writer.field("cpuPercent", cpuPercent) }
        if let reconnects { writer.field("reconnects", reconnects) }
        if let ackLatencyMeanMilliseconds { writer.field("ackLatencyMeanMilliseconds", ackLatencyMeanMilliseconds) }
        if let ackLatencyMaxMilliseconds { writer.field("ackLatencyMaxMilliseconds", ackLatencyMaxMilliseconds) }
        if let bufferPaused { writer.field("bufferPaused", bufferPaused) }
        if let inputs { writer.field("inputs", raw: "[" + inputs.map { $0.json() }.joined(separator: ",") + "]") }
        return writer.finished()
    }
}

/// One input's self-metrics in a health message: a device that stops answering shows here as
/// growing `errors` and an old `lastSuccess`, with the reason in `lastError`.
public struct InputHealth: Codable, Sendable, Equatable {
    public var sensor: String
    /// The input's `type` (`modbus`, `system`, ...).
    public var type: String
    /// Readings handed to the buffer since this boot.
    public var readings: Int64
    /// Failed reads of the source since this boot.
    public var errors: Int64
    /// Unix ms of the last successful read; absent before the first.
    public var lastSuccess: Int64?
    /// Why the last read failed, while it keeps failing; absent once a read succeeds.
    public var lastError: String?
    /// True while the input waits for room in the buffer.
    public var paused: Bool?

    public init(sensor: String, type: String, readings: Int64, errors: Int64, lastSuccess: Int64? = nil,
                lastError: String? = nil, paused: Bool? = nil) {
        self.sensor = sensor
        self.type = type
        self.readings = readings
        self.errors = errors
        self.lastSuccess = lastSuccess
        self.lastError = lastError
        self.paused = paused
    }

    public func json() -> String {
        var writer = JSONWriter()
        writer.field("sensor", sensor)
        writer.field("type", type)
        writer.field("readings", readings)
        writer.field("errors", errors)
        if let lastSuccess { writer.field("lastSuccess", lastSuccess) }
        if let lastError { writer.field("lastError", lastError) }
        if let paused { writer.field("paused", paused) }
        return writer.finished()
    }
}

/// FNV-1a (64-bit) as 16 hex digits: a cheap fingerprint of a configuration file, not a security hash.
public enum ContentHash {
    public static func fnv1a64<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
