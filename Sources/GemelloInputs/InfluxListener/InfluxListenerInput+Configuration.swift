import GemelloCore

extension InfluxListenerInput {
    /// Options of an `influx-listener` input (this folder's README.md and sample.yaml).
    public struct Configuration: InputOptions {
        public static let type = "influx-listener"
        public var sensor: SensorInfo
        /// Where to listen; nil: that transport is off.
        var http: ListenAddress?
        var tcp: ListenAddress?
        var udp: ListenAddress?
        public var tokenFile: String?
        public var maxBody: Int
        public var maxConnections: Int
        public var idleTimeout: Duration
        public var retryAfter: Duration
        /// Of timestamps on TCP and UDP lines (HTTP writes say theirs with `precision=`).
        public var precision: InfluxLineProtocol.Precision
        public var units: [String: String]
        public var nameTags: [String]

        public init(_ section: ConfigSection) throws(CoreError) {
            let sensorID = try section.sensorID()
            let entityType = try section.string("entity-type", default: "DeviceMeasurement")
            func address(_ key: String, default fallback: String) throws(CoreError) -> ListenAddress? {
                let text = try section.string(key, default: fallback)
                guard text != "off" else { return nil }
                guard let address = ListenAddress(text) else {
                    throw section.error(key, "not an IPv4 host:port to listen on", value: text, fix: "write e.g. 127.0.0.1:8186, or off")
                }
                return address
            }
            http = try address("http", default: "127.0.0.1:8186")
            tcp = try address("tcp", default: "off")
            udp = try address("udp", default: "off")
            guard http != nil || tcp != nil || udp != nil else {
                throw section.error("http", "every transport is off", fix: "listen on at least one of http, tcp, udp")
            }
            tokenFile = try section.optionalString("token-file").map { _ throws(CoreError) in try section.path("token-file") }
            let insecure = try section.bool("insecure", default: false)
            // Beyond this machine, writes must be authenticated (HTTP with a token; TCP and UDP
            // cannot be), unless the operator says otherwise in so many words.
            if !insecure {
                if let http, !http.isLoopback, tokenFile == nil {
                    throw section.error("http", "listening beyond this machine without a token", value: "\(http)",
                                        fix: "set token-file (clients send Authorization: Token <token>), listen on 127.0.0.1, or set insecure: true")
                }
                for (key, address) in [("tcp", tcp), ("udp", udp)] {
                    if let address, !address.isLoopback {
                        throw section.error(key, "plain \(key.uppercased()) takes writes from anyone who can reach it", value: "\(address)",
                                            fix: "listen on 127.0.0.1 (a local Telegraf), use http with a token-file, or set insecure: true")
                    }
                }
            }
            maxBody = Int(try section.byteSize("max-body", default: 32 << 20, range: 1024...(1 << 30)))
            maxConnections = try section.int("max-connections", default: 64, range: 1...10_000)
            idleTimeout = try section.duration("idle-timeout", default: .seconds(60), range: .seconds(1)...(.seconds(3600)))
            retryAfter = try section.duration("retry-after", default: .seconds(5), range: .seconds(1)...(.seconds(3600)))
            precision = try section.precision()
            units = try section.unitMap()
            nameTags = try section.stringList("name-tags", default: [])
            sensor = SensorInfo(id: sensorID, entityType: entityType,
                                attributes: units.sorted { $0.key < $1.key }.map { .init(name: $0.key, unit: $0.value) })
        }

        public func makeInput(_ context: InputContext) -> any Input { InfluxListenerInput(configuration: self, clock: context.clock) }
    }
}
