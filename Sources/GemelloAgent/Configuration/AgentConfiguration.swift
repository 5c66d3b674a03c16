import GemelloBrokerAccess
import GemelloCore
@_exported import GemelloInputs

/// Everything an agent needs, validated once at start-up (see `AgentConfiguration+Decoding.swift`
/// for every key and its default).
public struct AgentConfiguration: Sendable {
    public var agentID: String
    public var site: Site
    /// The broker's URL and this agent's identity there (TLS files, username, password file).
    public var broker: BrokerAccess
    /// The key that signs every batch (HMAC-SHA256), so the aggregator can tell this agent's
    /// batches from anyone else's even through a misconfigured broker. `nil`: batches unsigned.
    public var batchKeyFile: String?
    public var buffer: Buffer
    public var publisher: Publisher
    /// How often the agent publishes its health heartbeat.
    public var healthInterval: Duration
    /// How often a full health report goes out between the deltas (to an aggregator that reads them).
    public var healthFullInterval: Duration = .seconds(600)
    public var inputs: [InputConfiguration]
    /// The file this was loaded from (relative input paths resolve against its folder).
    public var sourceFile: String
    /// FNV-1a of that file's bytes, announced in the birth so ops can spot configuration drift.
    public var configHash: String?

    public struct Buffer: Sendable {
        /// SQLite file holding every accepted reading until the aggregator acknowledges it.
        public var path: String
        /// Readings are group-committed at least this often.
        public var flushInterval: Duration
        /// ...or as soon as this many are waiting, whichever comes first.
        public var flushReadings: Int
        /// The quota (bytes, age) and the policy past it.
        public var limits: ReadingBuffer.Limits = .none
    }

    public struct Publisher: Sendable {
        /// Readings per batch (at most).
        public var batchSize: Int
        /// Batches published but not yet acknowledged by the aggregator, at most.
        public var maxInFlight: Int
        /// Re-send a batch that has had no acknowledgement for this long.
        public var ackTimeout: Duration
        /// On shutdown, keep delivering the buffer for at most this long.
        public var drainTimeout: Duration
        /// zlib level for batch bodies (0 disables compression).
        public var compressionLevel: Int
        /// MQTT keepalive; the broker declares the agent dead after 1.5× this without traffic.
        public var keepAlive: Duration
        /// Readings accepted within this window are live and go out first; older ones waiting
        /// (after an outage) are the backlog, sent behind them. `nil`: acceptance order.
        public var liveWindow: Duration? = .seconds(30)
        /// Cap on the bytes per second published while a backlog drains (live readings are
        /// never held back by it). `nil`: no cap.
        public var backlogRate: Int64? = 256 << 10
        /// Latency budget of a batch: readings wait for company until the oldest of them was
        /// accepted this long ago (or a full batch is waiting, a backlog drains, the agent stops).
        /// `.zero`: a batch as soon as anything is committed.
        public var maxDelay: Duration = .seconds(5)
        /// The newest wire format (and health form) to use: 2 (v2 frames and health deltas once
        /// the aggregator says it reads them) or 1 (always v1 and full health reports).
        public var wireVersion: UInt8 = 2
    }

    public init(agentID: String, site: Site, broker: BrokerAccess, buffer: Buffer, publisher: Publisher,
                healthInterval: Duration, inputs: [InputConfiguration], sourceFile: String) {
        self.agentID = agentID
        self.site = site
        self.broker = broker
        self.buffer = buffer
        self.publisher = publisher
        self.healthInterval = healthInterval
        self.inputs = inputs
        self.sourceFile = sourceFile
    }
}
