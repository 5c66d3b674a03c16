import GemelloCore

/// The rules of `rules.yaml`, validated.
///
/// ```yaml
/// late-after: 5m                # observations older than this when judged make late alerts
/// rules:
///   - name: pm25-eu-daily-limit # unique, [a-z0-9-]
///     match:                    # every given key must match (globs: * and ?)
///       entity-type: WeatherObserved
///       attribute: pm25         # or series: <agent>/<sensor>/<attribute>, agent: <id>
///     mean:                     # one condition: threshold | rate | mean | silent | agent-offline | agents-offline
///       window: 24h
///       above: 25               # or below: N
///       clear-below: 20         # hysteresis (clear-above with below); default: the raise value
///     for: 0s                   # the raise condition must hold this long (observation time)
///     clear-for: 6h             # the clear condition must hold this long; flaps meanwhile are counted
///     update-every: 5m          # an open alert's value is sent at most this often
///     severity: moderate        # CAP: minor | moderate | severe | extreme
///     escalate:                 # optional: past this value, a higher severity
///       at: 50
///       severity: severe
///     category: health          # CAP: geo met safety security rescue fire health env transport infra cbrne other
///     urgency: immediate        # CAP: immediate | expected | future | unknown (late alerts are Past)
///     headline:                 # per language; placeholders {value} {unit} {entity} {agent} {sensor}
///       it: "PM2.5 ..."         #   {attribute} {rule} {count} {members} {site}
///       en: "PM2.5 ..."
///     description: { same languages }
///     area: site                # the agent's site (radius-km: 0.5), or a section with comune: (name
///                               # or ISTAT code, with alerts.geodata), or name and polygon:
///                               # "lat,lon lat,lon ..." or circle: "lat,lon radius-km"
///     sinks: [control-room]     # default: every sink
/// ```
public struct RuleSet: Sendable, Equatable {
    public var rules: [AlertRule]
    public var lateAfterMilliseconds: Int64 = 300_000

    public init(rules: [AlertRule], lateAfterMilliseconds: Int64 = 300_000) {
        self.rules = rules
        self.lateAfterMilliseconds = lateAfterMilliseconds
    }

    /// `areas`: the comuni a rule may name as its area (`area: {comune: Milano}`).
    public static func load(path: String, areas: AreaIndex? = nil) throws(CoreError) -> RuleSet {
        try parse(try ConfigSection.readText(path: path), file: path, areas: areas)
    }

    public static func parse(_ text: String, file: String, areas: AreaIndex? = nil) throws(CoreError) -> RuleSet {
        let root = try ConfigSection.parse(text, file: file)
        let lateAfter = try root.duration("late-after", default: .seconds(300), range: .seconds(1)...Duration.seconds(86_400 * 365))
        var rules: [AlertRule] = []
        for section in try root.sections("rules") {
            let rule = try Self.rule(section, areas: areas)
            if rules.contains(where: { $0.name == rule.name }) {
                throw section.error("name", "two rules have this name", value: rule.name, fix: "give every rule a name of its own")
            }
            rules.append(rule)
        }
        try root.rejectUnknownKeys()
        return RuleSet(rules: rules, lateAfterMilliseconds: lateAfter.wholeMilliseconds)
    }

    static let conditionKeys = ["threshold", "rate", "mean", "silent", "agent-offline", "agents-offline"]
    static let anyDuration = Duration.zero...Duration.seconds(86_400 * 3650)

    static func rule(_ s: ConfigSection, areas: AreaIndex?) throws(CoreError) -> AlertRule {
        let name = try s.string("name")
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }) else {
            throw s.error("name", "a rule name is lowercase letters, digits and dashes", value: name, fix: "rename it, e.g. pm25-daily-limit")
        }
        let present = conditionKeys.filter { s.has($0) }
        guard present.count == 1 else {
            throw s.error(present.count > 1 ? present[1] : "name",
                          present.isEmpty ? "the rule has no condition" : "the rule has more than one condition",
                          fix: "give each rule exactly one of: \(conditionKeys.joined(separator: ", "))")
        }
        var match = AlertRule.Match()
        if let m = try s.section("match") {
            match.entityType = try m.optionalString("entity-type")
            match.attribute = try m.optionalString("attribute").map(Glob.init)
            match.series = try m.optionalString("series").map(Glob.init)
            match.agent = try m.optionalString("agent").map(Glob.init)
            try m.rejectUnknownKeys()
        }
        let condition = try Self.condition(present[0], s)
        if condition.isSeries || { if case .silent = condition { true } else { false } }() {
            guard match.entityType != nil || match.attribute != nil || match.series != nil else {
                throw s.error("match", "a series condition needs to know which series it watches",
                              fix: "add match: with entity-type, attribute or series")
            }
        }
        var rule = AlertRule(name: name, match: match, condition: condition)
        rule.forMilliseconds = try s.duration("for", default: .zero, range: anyDuration).wholeMilliseconds
        rule.clearForMilliseconds = try s.duration("clear-for", default: .zero, range: anyDuration).wholeMilliseconds
        rule.updateEveryMilliseconds = try s.duration("update-every", default: .seconds(300), range: anyDuration).wholeMilliseconds
        rule.severity = try s.choice("severity", default: .moderate)
        if let e = try s.section("escalate") {
            rule.escalation = AlertRule.Escalation(value: try e.double("at", range: -1e300...1e300), severity: try e.choice("severity"))
            try e.rejectUnknownKeys()
        }
        rule.category = try s.choice("category", default: .other)
        rule.urgency = try s.choice("urgency", default: .immediate)
        rule.texts = try Self.texts(s, name: name)
        rule.area = try Self.area(s, areas: areas)
        rule.sinks = try s.optionalStringList("sinks")
        try s.rejectUnknownKeys()
        return rule
    }

    static func condition(_ key: String, _ s: ConfigSection) throws(CoreError) -> AlertRule.Condition {
        let numbers = -1e300...1e300
        switch key {
        case "silent":
            return .silent(try s.duration("silent", default: .zero, range: .seconds(1)...Duration.seconds(86_400 * 365)).wholeMilliseconds)
        case "agent-offline":
            guard try s.bool("agent-offline", default: false) else {
                throw s.error("agent-offline", "agent-offline takes true", fix: "write agent-offline: true (and for: 60s to wait)")
            }
            return .agentOffline
        case "agents-offline":
            guard let c = try s.section(key) else { throw s.error(key, "expected count and within", fix: "indent count: and within: under it") }
            let count = try c.int("count", range: 2...1_000_000)
            let within = try c.duration("within", default: .seconds(60), range: .seconds(1)...Duration.seconds(86_400)).wholeMilliseconds
            try c.rejectUnknownKeys()
            return .agentsOffline(count: count, within: within)
        default:
            guard let c = try s.section(key) else { throw s.error(key, "expected a section", fix: "indent the condition's keys under it") }
            let window = key == "threshold" ? 0
                : try c.duration("window", default: .zero, range: .seconds(1)...Duration.seconds(86_400 * 366)).wholeMilliseconds
            if key != "threshold" && window == 0 {
                throw c.error("window", "a \(key) condition needs a window", fix: "add window: with a duration, e.g. window: 10m")
            }
            let result: AlertRule.Condition
            if key == "rate" {
                guard c.has("rise") != c.has("fall") else {
                    throw c.error("rise", "a rate condition has rise: or fall:, not both", fix: "write rise: N (a rise of N within the window) or fall: N")
                }
                let rise = c.has("rise")
                let size = abs(try c.double(rise ? "rise" : "fall", range: numbers))
                let clear = try c.double(rise ? "clear-below" : "clear-above", default: rise ? size / 2 : -size / 2, range: numbers)
                result = .rate(window: window, raise: rise ? size : -size, clear: clear)
            } else {
                guard c.has("above") != c.has("below") else {
                    throw c.error("above", "the condition has above: or below:, not both", fix: "write above: N (with clear-below:) or below: N (with clear-above:)")
                }
                let above = c.has("above")
                let raise = try c.double(above ? "above" : "below", range: numbers)
                let clear = try c.double(above ? "clear-below" : "clear-above", default: raise, range: numbers)
                if above ? clear > raise : clear < raise {
                    throw c.error(above ? "clear-below" : "clear-above", "the clear value is past the raise value",
                                  value: "\(clear)", fix: above ? "write a clear-below at or under \(raise)" : "write a clear-above at or over \(raise)")
                }
                result = key == "mean" ? .mean(window: window, above: above, raise: raise, clear: clear)
                    : .threshold(above: above, raise: raise, clear: clear)
            }
            try c.rejectUnknownKeys()
            return result
        }
    }

    static func texts(_ s: ConfigSection, name: String) throws(CoreError) -> [AlertRule.Text] {
        guard let headline = try s.section("headline") else {
            if s.has("headline") { return [AlertRule.Text(language: "en", headline: try s.string("headline"))] }
            return [AlertRule.Text(language: "en", headline: "\(name): {entity} {attribute} {value}")]
        }
        let description = try s.section("description")
        var texts: [AlertRule.Text] = []
        for language in headline.keys {
            texts.append(AlertRule.Text(language: language, headline: try headline.string(language),
                                        description: try description?.optionalString(language)))
        }
        if let description { try description.rejectUnknownKeys() }
        return texts
    }

    static func area(_ s: ConfigSection, areas: AreaIndex?) throws(CoreError) -> AlertRule.Area {
        guard s.has("area") else { return .site }
        guard let a = try s.section("area") else {
            let text = try s.string("area")
            guard text == "site" else { throw s.error("area", "not an area", value: text, fix: "write area: site, or a section with polygon: or circle:") }
            return .site
        }
        let result: AlertRule.Area
        if let comune = try a.optionalString("comune") {
            guard let areas else {
                throw a.error("comune", "naming a comune needs the comuni's outlines", value: comune,
                              fix: "set alerts.geodata in the aggregator's configuration (gemello rules: --geodata FILE) to ../shared/geodata/milano-comuni.geojson")
            }
            guard let found = areas.named(comune) else {
                throw a.error("comune", "no such comune in \(areas.path)", value: comune, fix: "write its name as ISTAT spells it, or its ISTAT code")
            }
            result = .polygon(name: found.name, points: found.simplified, geocode: found.code)
        } else if let polygon = try a.optionalString("polygon") {
            let points = polygon.split(separator: " ").compactMap(Self.point)
            guard points.count >= 4, points.count == polygon.split(separator: " ").count, points.first == points.last else {
                throw a.error("polygon", "not a closed polygon of lat,lon pairs", value: polygon,
                              fix: "write at least four space-separated lat,lon pairs, the last equal to the first (CAP's polygon)")
            }
            result = .polygon(name: try a.string("name"), points: points)
        } else if let circle = try a.optionalString("circle") {
            let parts = circle.split(separator: " ")
            guard parts.count == 2, let center = Self.point(parts[0]), let radius = Double(parts[1]), radius > 0 else {
                throw a.error("circle", "not a circle", value: circle, fix: "write \"lat,lon radius-km\", e.g. \"45.4642,9.1900 5\"")
            }
            result = .circle(name: try a.string("name"), center: center, radiusKm: radius)
        } else {
            result = .site(radiusKm: try a.double("radius-km", default: 0.5, range: 0.001...1000))
        }
        try a.rejectUnknownKeys()
        return result
    }

    static func point(_ text: Substring) -> AlertRule.Point? {
        let parts = text.split(separator: ",")
        guard parts.count == 2, let lat = Double(parts[0]), let lon = Double(parts[1]), abs(lat) <= 90, abs(lon) <= 180 else { return nil }
        return AlertRule.Point(latitude: lat, longitude: lon)
    }
}

