import GemelloBrokerAccess
import GemelloCore

extension AgentConfiguration {
    /// Reads and validates a YAML configuration file.
    ///
    /// Keys (defaults in brackets):
    /// - `agent-id`: lowercase letters, digits, `-`, `_`, `.`; becomes the MQTT topic level and entity ids
    /// - `site`: `id`, `kind` (`5g-tower` | `fiber-node`), `latitude`, `longitude`
    /// - `broker`: `mqtts://host:port` or, to a broker on this machine, `mqtt://host:port` [`mqtt://127.0.0.1:1883`];
    ///   `broker-tls` (`ca-file`, `cert-file`, `key-file`), `broker-username`, `broker-password-file`,
    ///   `broker-insecure` [false] (see `BrokerAccess`)
    /// - `batch-key-file`: the agent's batch-signing key from `gemello agent enroll` [none: unsigned]
    /// - `buffer`: `path` [`/var/lib/gemello/<agent-id>.sqlite`], `flush-interval` [1s], `flush-readings` [5000],
    ///   `max-bytes` [1GiB], `max-age` [30d], `when-full` [drop-oldest]
    /// - `publisher`: `batch-size` [1000], `max-in-flight` [32], `ack-timeout` [30s], `drain-timeout` [15s],
    ///   `compression-level` [6], `keepalive` [10s], `live-window` [30s; 0s sends in acceptance order],
    ///   `backlog-rate` [256KiB/s; `unlimited`]
    /// - `health-interval` [10s]
    /// - `inputs`: a list; each item has `type` (see `InputRegistry`) and that input's keys (its folder's README.md)
    public static func load(path: String) throws(CoreError) -> AgentConfiguration {
        let text = try ConfigSection.readText(path: path)
        var configuration = try decode(try ConfigSection.parse(text, file: path))
        configuration.configHash = ContentHash.fnv1a64(text.utf8)
        return configuration
    }

    public static func decode(_ text: String, file: String) throws(CoreError) -> AgentConfiguration {
        try decode(try ConfigSection.parse(text, file: file))
    }

    static func decode(_ root: ConfigSection) throws(CoreError) -> AgentConfiguration {
        let file = root.file
        let agentID = try root.string("agent-id")
        guard Topics.isValidAgentID(agentID) else {
            throw root.error("agent-id", "not a valid agent id", value: agentID,
                             fix: "use 1-64 lowercase letters, digits, '-', '_' or '.', e.g. tower-duomo-01")
        }
        guard let siteSection = try root.section("site") else {
            throw root.error("site", "required section is missing", fix: "add a 'site:' section with id, kind, latitude and longitude")
        }
        let site = Site(id: try siteSection.string("id"),
                        kind: try siteSection.choice("kind"),
                        latitude: try siteSection.double("latitude", range: -90...90),
                        longitude: try siteSection.double("longitude", range: -180...180))
        try siteSection.rejectUnknownKeys()

        let broker = try BrokerAccess.decode(root, defaultURL: "mqtt://127.0.0.1:1883")
        let batchKeyFile = try root.optionalString("batch-key-file").map { _ throws(CoreError) in try root.path("batch-key-file") }

        let bufferSection = try root.sectionOrEmpty("buffer")
        let buffer = Buffer(
            path: try bufferSection.path("path", default: "/var/lib/gemello/\(agentID).sqlite"),
            flushInterval: try bufferSection.duration("flush-interval", default: .seconds(1), range: .milliseconds(10)...(.seconds(300))),
            flushReadings: try bufferSection.int("flush-readings", default: 5000, range: 1...1_000_000),
            limits: .init(maxBytes: try bufferSection.byteSize("max-bytes", default: 1 << 30, range: (64 << 10)...(1 << 40)),
                          maxAge: try bufferSection.duration("max-age", default: .seconds(30 * 86_400), range: .seconds(60)...(.seconds(3650 * 86_400))),
                          whenFull: try bufferSection.choice("when-full", default: ReadingBuffer.OverflowPolicy.dropOldest)))
        try bufferSection.rejectUnknownKeys()

        let pub = try root.sectionOrEmpty("publisher")
        let liveWindow = try pub.duration("live-window", default: .seconds(30), range: .zero...(.seconds(86_400)))
        let publisher = Publisher(
            batchSize: try pub.int("batch-size", default: 1000, range: 1...100_000),
            maxInFlight: try pub.int("max-in-flight", default: 32, range: 1...1000),
            ackTimeout: try pub.duration("ack-timeout", default: .seconds(30), range: .milliseconds(100)...(.seconds(3600))),
            drainTimeout: try pub.duration("drain-timeout", default: .seconds(15), range: .zero...(.seconds(3600))),
            compressionLevel: try pub.int("compression-level", default: 6, range: 0...9),
            keepAlive: try pub.duration("keepalive", default: .seconds(10), range: .seconds(5)...(.seconds(3600))),
            liveWindow: liveWindow == .zero ? nil : liveWindow,
            backlogRate: try pub.byteRate("backlog-rate", default: 256 << 10, range: 1024...(1 << 40)),
            maxDelay: try pub.duration("max-delay", default: .seconds(5), range: .zero...(.seconds(3600))),
            wireVersion: UInt8(try pub.int("wire-version", default: 2, range: 1...2)))
        try pub.rejectUnknownKeys()

        let healthInterval = try root.duration("health-interval", default: .seconds(10), range: .seconds(1)...(.seconds(3600)))
        let healthFullInterval = try root.duration("health-full-interval", default: .seconds(600), range: .seconds(1)...(.seconds(86_400)))
        guard healthFullInterval >= healthInterval else {
            throw root.error("health-full-interval", "is shorter than health-interval", value: "\(healthFullInterval)",
                             fix: "set it to at least health-interval (\(healthInterval)); it says how often a full report replaces the deltas")
        }

        var inputs: [InputConfiguration] = []
        let inputSections = try root.sections("inputs")
        guard !inputSections.isEmpty else {
            throw root.error("inputs", "no inputs configured", fix: "add an 'inputs:' list with at least one input; types: \(InputRegistry.names.joined(separator: ", "))")
        }
        var sensorIDs: Set<String> = []
        for section in inputSections {
            let input = try InputRegistry.decode(section)
            guard sensorIDs.insert(input.sensor.id).inserted else {
                throw section.error("sensor", "two inputs use the same sensor id", value: input.sensor.id,
                                    fix: "give every input its own 'sensor' id")
            }
            inputs.append(input)
        }
        try root.rejectUnknownKeys()
        var configuration = AgentConfiguration(agentID: agentID, site: site, broker: broker, buffer: buffer, publisher: publisher,
                                               healthInterval: healthInterval, inputs: inputs, sourceFile: file)
        configuration.batchKeyFile = batchKeyFile
        configuration.healthFullInterval = healthFullInterval
        return configuration
    }
}

extension AgentConfiguration {
    /// The keys an access file may hold: the broker's, and the batch key.
    public static let accessKeys = BrokerAccess.keys + ["batch-key-file"]

    /// Replaces the broker identity with an access file's (`gemello agent enroll --output`): the
    /// site configuration stays as shipped, the identity lives beside it.
    public mutating func applyAccess(path: String) throws(CoreError) {
        let root = try ConfigSection.load(path: path)
        for key in root.keys where !Self.accessKeys.contains(key) {
            throw root.error(key, "not an access key", fix: "an access file holds only: \(Self.accessKeys.joined(separator: ", "))")
        }
        broker = try BrokerAccess.decode(root, defaultURL: broker.url)
        batchKeyFile = try root.optionalString("batch-key-file").map { _ throws(CoreError) in try root.path("batch-key-file") }
    }
}
