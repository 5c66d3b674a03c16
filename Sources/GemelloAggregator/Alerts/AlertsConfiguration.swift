import Foundation
import GemelloBrokerAccess
import GemelloCore
import GemelloMosquitto
import GemelloRules

/// The `alerts:` section of the aggregator's configuration: where the rules are, how CAP
/// messages name their sender, and the sinks alerts are forwarded to.
///
/// ```yaml
/// alerts:
///   rules: rules.yaml               # the rules (reloaded on SIGHUP); none: no alerts
///   geodata: ../../shared/geodata/milano-comuni.geojson   # comuni: rule areas by name, ISTAT geocodes on alerts
///   keep-cleared: 30d               # cleared alerts kept in the store and the twin
///   cap:
///     sender: gemello@comune.milano.invalid
///     sender-name: Gemello Digitale
///     status: Actual                # Actual | Exercise | System | Test | Draft
///     scope: Restricted             # Public | Restricted | Private
///     restriction: Control Room Polizia Locale
///   sinks:
///     - name: control-room          # unique, [a-z0-9-]
///       type: webhook               # webhook (HTTP POST) | mqtt | ngsi-ld (telemetry forwarding)
///       url: https://cr.example/cap # webhook, ngsi-ld
///       format: cap                 # cap (CAP 1.2 XML) | json
///       header: Authorization       # the header the token goes in
///       token-file: /etc/gemello/control-room.token   # or token: ...; sent as "Bearer <token>" in Authorization
///       max-queued: 100000          # messages kept while the sink is down; past it the oldest are dropped, counted
///       timeout: 10s
///     - name: civil-protection
///       type: mqtt
///       broker: mqtts://cr-broker.example:8883   # mqtt:// only to a broker on this machine
///       broker-tls: {ca-file: /etc/gemello/cr-ca.crt}   # and broker-username, broker-password-file (BrokerAccess)
///       topic: cap/gemello
///       format: cap
///     - name: telemetry-pm25        # raw telemetry as NGSI-LD notifications (a managed subscription)
///       type: ngsi-ld
///       url: http://cr.example/ngsi
///       entity-type: WeatherObserved
///       attributes: [pm25]
/// ```
public struct AlertsConfiguration: Sendable {
    /// The rules file (nil: no rules, no alerts).
    public var rulesPath: String?
    /// The comuni's outlines (GeoJSON): rules may name a comune as their area, and alerts carry the
    /// ISTAT code of the comune they are in (nil: neither).
    public var geodata: String?
    public var keepCleared: Duration = .seconds(30 * 86_400)
    public var cap = CAPWriter()
    public var sinks: [Sink] = []

    public init() {}

    public struct Sink: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable {
            case webhook, mqtt
            case ngsiLD = "ngsi-ld"
        }
        public enum Format: String, Sendable, CaseIterable {
            case cap, json
        }
        public var name: String
        public var kind: Kind
        public var url: String = ""
        /// `mqtt`: the broker (its URL and this aggregator's identity there) and topic.
        public var broker: String {
            get { brokerAccess.url }
            set { brokerAccess.url = newValue }
        }
        public var brokerAccess = BrokerAccess(url: "")
        public var topic: String = ""
        public var format: Format = .cap
        public var header: String = "Authorization"
        public var token: String?
        public var maxQueued = 100_000
        public var timeout: Duration = .seconds(10)
        /// `ngsi-ld`: what is forwarded.
        public var entityType: String = ""
        public var attributes: [String] = []

        public init(name: String, kind: Kind) {
            self.name = name
            self.kind = kind
        }

        /// The header value carrying the token (Bearer in `Authorization`, as is in any other header).
        public var headerValue: String? {
            guard let token else { return nil }
            return header.lowercased() == "authorization" && !token.contains(" ") ? "Bearer \(token)" : token
        }

        /// Whether messages about alerts go to this sink (ngsi-ld sinks carry telemetry only).
        public var takesAlerts: Bool { kind != .ngsiLD }
    }

    static func decode(_ s: ConfigSection) throws(CoreError) -> AlertsConfiguration {
        var c = AlertsConfiguration()
        if s.has("rules") { c.rulesPath = try s.path("rules") }
        if s.has("geodata") { c.geodata = try s.path("geodata") }
        c.keepCleared = try s.duration("keep-cleared", default: c.keepCleared, range: .seconds(3600)...(.seconds(3650 * 86_400)))
        if let cap = try s.section("cap") {
            c.cap.sender = try cap.string("sender", default: c.cap.sender)
            guard !c.cap.sender.contains(where: { $0 == " " || $0 == "," || $0 == "<" || $0 == "&" }) else {
                throw cap.error("sender", "CAP forbids spaces, commas, < and & in a sender", value: c.cap.sender,
                                fix: "write an address such as gemello@comune.milano.invalid")
            }
            c.cap.senderName = try cap.string("sender-name", default: c.cap.senderName)
            c.cap.status = try cap.choice("status", default: CAPStatus.actual).rawValue
            c.cap.scope = try cap.choice("scope", default: CAPScope.restricted).rawValue
            c.cap.restriction = try cap.string("restriction", default: c.cap.restriction ?? "Control Room")
            try cap.rejectUnknownKeys()
        }
        for section in try s.sections("sinks") {
            let sink = try sink(section)
            if c.sinks.contains(where: { $0.name == sink.name }) {
                throw section.error("name", "two sinks have this name", value: sink.name, fix: "give every sink a name of its own")
            }
            c.sinks.append(sink)
        }
        try s.rejectUnknownKeys()
        return c
    }

    enum CAPStatus: String, CaseIterable { case actual = "Actual", exercise = "Exercise", system = "System", test = "Test", draft = "Draft" }
    enum CAPScope: String, CaseIterable { case `public` = "Public", restricted = "Restricted", `private` = "Private" }

    static func sink(_ s: ConfigSection) throws(CoreError) -> Sink {
        let name = try s.string("name")
        guard !name.isEmpty, name.utf8.count <= 64, name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }) else {
            throw s.error("name", "a sink name is lowercase letters, digits and dashes", value: name, fix: "rename it, e.g. control-room")
        }
        var sink = Sink(name: name, kind: try s.choice("type"))
        switch sink.kind {
        case .webhook, .ngsiLD:
            sink.url = try s.string("url")
            guard let url = URL(string: sink.url), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw s.error("url", "not an http(s) URL", value: sink.url, fix: "write http://host:port/path or https://...")
            }
        case .mqtt:
            _ = try s.string("broker")
            sink.brokerAccess = try BrokerAccess.decode(s, defaultURL: "")
            sink.topic = try s.string("topic")
            guard !sink.topic.isEmpty, !sink.topic.contains("+"), !sink.topic.contains("#") else {
                throw s.error("topic", "not a topic to publish to", value: sink.topic, fix: "write a topic without wildcards, e.g. cap/gemello")
            }
        }
        if sink.kind == .ngsiLD {
            sink.entityType = try s.string("entity-type")
            sink.attributes = try s.optionalStringList("attributes") ?? []
        } else {
            sink.format = try s.choice("format", default: .cap)
        }
        sink.header = try s.string("header", default: sink.header)
        if s.has("token-file") {
            let file = try s.path("token-file")
            guard let text = try? String(contentsOfFile: file, encoding: .utf8),
                  let token = text.split(whereSeparator: \.isNewline).first.map(String.init), !token.isEmpty else {
                throw s.error("token-file", "cannot be read, or holds no token", value: file,
                              fix: "put the token on the file's first line and make it readable by the aggregator's user")
            }
            sink.token = token
        } else if s.has("token") {
            sink.token = try s.string("token")
        }
        sink.maxQueued = try s.int("max-queued", default: sink.maxQueued, range: 10...100_000_000)
        sink.timeout = try s.duration("timeout", default: sink.timeout, range: .milliseconds(100)...(.seconds(300)))
        try s.rejectUnknownKeys()
        return sink
    }
}
