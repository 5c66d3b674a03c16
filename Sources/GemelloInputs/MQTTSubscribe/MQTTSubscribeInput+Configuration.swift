import GemelloCore

extension MQTTSubscribeInput {
    /// Options of an `mqtt-subscribe` input (this folder's README.md and sample.yaml).
    public struct Configuration: InputOptions {
        public static let type = "mqtt-subscribe"
        public var sensor: SensorInfo
        public var host: String
        public var port: Int
        public var clientID: String
        public var username: String?
        public var passwordFile: String?
        public var keepAlive: Duration
        public var maxBatch: Int
        public var units: [String: String]
        public var subscriptions: [MQTTSubscription]

        public init(_ section: ConfigSection) throws(CoreError) {
            let sensorID = try section.sensorID()
            let entityType = try section.string("entity-type", default: "DeviceMeasurement")
            let broker = try section.string("broker", default: "mqtt://127.0.0.1:1883")
            guard broker.hasPrefix("mqtt://") else {
                throw section.error("broker", "not an mqtt:// URL", value: broker,
                                    fix: "write mqtt://host:port (the site's broker; mqtts:// is not built for this input)")
            }
            let rest = broker.dropFirst(7)
            if let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (1...65_535).contains(port) {
                host = String(rest[..<colon])
                self.port = port
            } else {
                host = String(rest)
                port = 1883
            }
            guard !host.isEmpty, !host.contains("/") else { throw section.error("broker", "no host in the URL", value: broker) }
            let loopback = host == "localhost" || host.hasPrefix("127.")
            let insecure = try section.bool("insecure", default: false)
            if !loopback && !insecure {
                throw section.error("broker", "plain MQTT to another machine: anyone on the way reads and forges it", value: broker,
                                    fix: "run the site's broker on this box (mqtt://127.0.0.1:1883), or accept the risk on a closed site network with insecure: true")
            }
            clientID = try section.string("client-id", default: "gemello-\(sensorID)")
            guard !clientID.isEmpty, clientID.utf8.count <= 23 || clientID.allSatisfy({ $0.isASCII }) else {
                throw section.error("client-id", "not a usable client id", value: clientID)
            }
            username = try section.optionalString("username")
            passwordFile = try section.optionalString("password-file").map { _ throws(CoreError) in try section.path("password-file") }
            keepAlive = try section.duration("keepalive", default: .seconds(60), range: .seconds(5)...(.seconds(3600)))
            maxBatch = try section.int("max-batch", default: 500, range: 1...100_000)
            units = try section.unitMap()
            var subscriptions: [MQTTSubscription] = []
            for entry in try section.sections("subscriptions") {
                let filter = try entry.string("topic")
                guard !filter.isEmpty, !filter.contains("#") || filter.hasSuffix("#") else {
                    throw entry.error("topic", "not an MQTT topic filter", value: filter, fix: "'#' may only end a filter: site/+/temperature, lora/#")
                }
                let format = try entry.choice("format", default: MQTTPayloadFormat.json)
                var fields: [MQTTSubscription.Field] = []
                if let mapping = try entry.section("fields") {
                    for path in mapping.keys {
                        guard let field = try mapping.section(path) else { throw mapping.error(path, "expected 'attribute' and 'unit' under it") }
                        fields.append(.init(path: path, attribute: try field.string("attribute"),
                                            unit: try field.optionalString("unit") == nil ? nil : try field.unitCode()))
                        try field.rejectUnknownKeys()
                    }
                }
                let unit: String? = try entry.optionalString("unit") == nil ? nil : try entry.unitCode()
                let subscription = MQTTSubscription(
                    filter: filter, format: format, attribute: try entry.optionalString("attribute"), unit: unit,
                    fields: fields, timePath: try entry.optionalString("time-path"), precision: try entry.precision())
                if format != .json && (!fields.isEmpty || subscription.timePath != nil) {
                    throw entry.error("fields", "fields and time-path are for format: json", fix: "remove them, or set format: json")
                }
                try entry.rejectUnknownKeys()
                subscriptions.append(subscription)
            }
            guard !subscriptions.isEmpty else {
                throw section.error("subscriptions", "nothing to subscribe to", fix: "add subscriptions: with at least one topic")
            }
            self.subscriptions = subscriptions
            sensor = SensorInfo(id: sensorID, entityType: entityType,
                                attributes: units.sorted { $0.key < $1.key }.map { .init(name: $0.key, unit: $0.value) })
        }

        public func makeInput(_ context: InputContext) -> any Input { MQTTSubscribeInput(configuration: self, clock: context.clock) }
    }
}
