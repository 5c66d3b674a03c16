import GemelloCore

/// Writes an alert message as OASIS CAP 1.2 XML (valid against `CAP-v1.2.xsd`): one `info`
/// block per language of the rule, times with a numeric offset (`+00:00`: the XSD refuses `Z`
/// and fractions), areas as `lat,lon` circles or polygons.
///
/// - `identifier`: `<prefix><alert id>.<revision>`: stable per message, so a resend is the same message.
/// - `msgType`: `Alert` when raised, `Update` while open, `Cancel` when cleared, with `references`
///   to the alert's first and latest earlier messages.
/// - `effective`/`onset`: when the condition was met (observation time); `expires`: when it cleared.
/// - A late alert (from a backlog) has urgency `Past`.
public struct CAPWriter: Sendable {
    public var sender: String
    public var senderName: String
    /// `Actual`, `Exercise`, `System`, `Test`, `Draft`.
    public var status: String
    /// `Public`, `Restricted` (with `restriction`), `Private`.
    public var scope: String
    public var restriction: String?
    public var identifierPrefix: String

    public init(sender: String = "gemello-aggregator@gemello.invalid", senderName: String = "Gemello",
                status: String = "Actual", scope: String = "Restricted", restriction: String? = "Control Room",
                identifierPrefix: String = "urn:gemello:alert:") {
        self.sender = sender
        self.senderName = senderName
        self.status = status
        self.scope = scope
        self.restriction = restriction
        self.identifierPrefix = identifierPrefix
    }

    public func xml(_ message: AlertMessage, rule: AlertRule?) -> String {
        let alert = message.alert
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">\n"
        x += element("identifier", identifierPrefix + message.id, 1)
        x += element("sender", sender, 1)
        x += element("sent", Self.time(message.sent), 1)
        x += element("status", status, 1)
        x += element("msgType", message.kind.rawValue, 1)
        x += element("scope", scope, 1)
        if scope == "Restricted" { x += element("restriction", restriction ?? "Control Room", 1) }
        if !message.references.isEmpty {
            x += element("references", message.references.map { "\(sender),\(identifierPrefix)\($0.id),\(Self.time($0.sent))" }
                .joined(separator: " "), 1)
        }
        let texts = rule?.texts.isEmpty == false ? rule!.texts : [AlertRule.Text(language: "en", headline: "\(alert.rule): {entity} {value}")]
        for text in texts {
            x += "  <info>\n"
            x += element("language", Self.language(text.language), 2)
            x += element("category", (rule?.category ?? .other).cap, 2)
            x += element("event", alert.rule, 2)
            if message.kind == .cancel || alert.status == .cleared { x += element("responseType", "AllClear", 2) }
            x += element("urgency", alert.late || alert.status == .cleared ? "Past" : (rule?.urgency ?? .immediate).cap, 2)
            x += element("severity", alert.severity.cap, 2)
            x += element("certainty", "Observed", 2)
            x += "    <eventCode><valueName>gemello:rule</valueName><value>\(Self.escape(alert.rule))</value></eventCode>\n"
            x += "    <eventCode><valueName>sdm:entityType</valueName><value>\(Self.escape(alert.entityType))</value></eventCode>\n"
            x += element("effective", Self.time(alert.raisedAt), 2)
            x += element("onset", Self.time(alert.raisedAt), 2)
            if let cleared = alert.clearedAt { x += element("expires", Self.time(max(cleared, alert.raisedAt)), 2) }
            x += element("senderName", senderName, 2)
            x += element("headline", AlertText.render(text.headline, alert, language: text.language), 2)
            if let d = text.description { x += element("description", AlertText.render(d, alert, language: text.language), 2) }
            var parameters: [(String, String)] = [("gemello:alertId", alert.id), ("ngsi-ld:entityId", alert.entityID),
                                                  ("gemello:status", alert.status.rawValue), ("gemello:value", AlertText.number(alert.value)),
                                                  ("gemello:count", String(alert.count)), ("gemello:late", alert.late ? "true" : "false")]
            if let attribute = alert.attribute { parameters.append(("gemello:attribute", attribute)) }
            if let unit = alert.unit { parameters.append(("gemello:unitCode", unit)) }
            if let by = alert.acknowledgedBy { parameters.append(("gemello:acknowledgedBy", by)) }
            if !alert.members.isEmpty { parameters.append(("gemello:agents", alert.members.joined(separator: " "))) }
            for (name, value) in parameters {
                x += "    <parameter><valueName>\(Self.escape(name))</valueName><value>\(Self.escape(value))</value></parameter>\n"
            }
            x += area(alert, rule?.area ?? .site)
            x += "  </info>\n"
        }
        return x + "</alert>\n"
    }

    func area(_ alert: Alert, _ area: AlertRule.Area) -> String {
        var x = "    <area>\n"
        switch area {
        case .site(let radius):
            let place = alert.site ?? alert.agent ?? alert.entityID
            x += element("areaDesc", alert.areaName.map { "\(place) (\($0))" } ?? place, 3)
            if let p = alert.location { x += element("circle", "\(Self.point(p)) \(AlertText.number(radius))", 3) }
            x += geocode(alert.geocode)
        case .polygon(let name, let points, let code):
            x += element("areaDesc", name, 3)
            x += element("polygon", points.map(Self.point).joined(separator: " "), 3)
            x += geocode(code ?? alert.geocode)
        case .circle(let name, let center, let radius):
            x += element("areaDesc", name, 3)
            x += element("circle", "\(Self.point(center)) \(AlertText.number(radius))", 3)
            x += geocode(alert.geocode)
        }
        return x + "    </area>\n"
    }

    /// The comune's ISTAT code, as Italian civil-protection systems key areas.
    func geocode(_ code: String?) -> String {
        guard let code else { return "" }
        return "      <geocode><valueName>ISTAT</valueName><value>\(Self.escape(code))</value></geocode>\n"
    }

    func element(_ name: String, _ value: String, _ depth: Int) -> String {
        String(repeating: "  ", count: depth) + "<\(name)>\(Self.escape(value))</\(name)>\n"
    }

    static func point(_ p: AlertRule.Point) -> String { "\(p.latitude),\(p.longitude)" }

    /// `it` → `it-IT`, `en` → `en-GB`; anything else as written (RFC 3066).
    static func language(_ code: String) -> String {
        switch code {
        case "it": "it-IT"
        case "en": "en-GB"
        default: code
        }
    }

    /// CAP's dateTime: `2026-11-29T15:31:21+00:00` (no fraction, numeric offset).
    public static func time(_ ms: Int64) -> String { String(Timestamp.iso8601(milliseconds: ms).prefix(19)) + "+00:00" }

    static func escape(_ s: String) -> String {
        guard s.contains(where: { $0 == "&" || $0 == "<" || $0 == ">" || $0 == "\"" }) else { return s }
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
