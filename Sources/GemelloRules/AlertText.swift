import GemelloCore

/// Fills a rule's headline and description templates for one alert.
public enum AlertText {
    /// `{value}` (the peak once cleared) `{current}` `{unit}` `{entity}` `{agent}` `{sensor}`
    /// `{attribute}` `{rule}` `{count}` `{members}` `{site}`; an unknown placeholder stays as written.
    /// A cleared alert's texts say so (`Cessato:`, `Cleared:`) and report its peak as `{value}`.
    public static func render(_ template: String, _ alert: Alert, language: String = "en") -> String {
        let text = fill(template, alert)
        guard alert.status == .cleared else { return text }
        return (language == "it" ? "Cessato: " : "Cleared: ") + text
    }

    static func fill(_ template: String, _ alert: Alert) -> String {
        guard template.contains("{") else { return template }
        var out = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            out += rest[..<open]
            let name = rest[rest.index(after: open)..<close]
            out += value(of: name, alert) ?? String(rest[open...close])
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    static func value(of name: Substring, _ alert: Alert) -> String? {
        switch name {
        case "value": number(alert.status == .cleared ? alert.peak : alert.value)
        case "current": number(alert.value)
        case "unit": alert.unit.map(UnitCode.symbol) ?? ""
        case "entity": alert.entityID
        case "agent": alert.agent ?? alert.members.joined(separator: ", ")
        case "sensor": alert.entityID.split(separator: ":").last.map(String.init) ?? ""
        case "attribute": alert.attribute ?? ""
        case "rule": alert.rule
        case "count": String(alert.count)
        case "members": String(alert.members.count)
        case "site": alert.site ?? alert.agent ?? ""
        default: nil
        }
    }

    /// At most two decimals, no trailing zeros (`25.37`, `3`).
    public static func number(_ value: Double) -> String {
        guard value.isFinite else { return String(value) }
        let scaled = (value * 100).rounded() / 100
        if scaled == scaled.rounded(), abs(scaled) < 1e15 { return String(Int64(scaled)) }
        return String(scaled)
    }
}
