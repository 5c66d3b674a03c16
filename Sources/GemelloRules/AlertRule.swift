import GemelloCore

/// One rule of `rules.yaml`: which series (or which agents) it watches, the condition that
/// raises and clears its alert, and what the alert says (CAP severity, category, texts, area).
///
/// Every duration is in milliseconds of **observation** time for series conditions (a backlog is
/// judged by when its readings were taken, not when they arrived) and of wall time for
/// `silent` and the fleet conditions, which are about what is not heard now.
public struct AlertRule: Sendable, Equatable {
    /// Unique name (`[a-z0-9-]`), part of every alert's identity.
    public var name: String
    public var match: Match
    public var condition: Condition
    /// The raise condition must hold this long before the alert is raised (0: at once).
    public var forMilliseconds: Int64 = 0
    /// The clear condition must hold this long before the alert clears; a raise condition met again
    /// meanwhile keeps the alert open (flapping is damped into one alert whose count grows).
    public var clearForMilliseconds: Int64 = 0
    /// An open alert's changed value is sent as an Update at most this often; a severity change at once.
    public var updateEveryMilliseconds: Int64 = 300_000
    public var severity: Severity = .moderate
    /// When the value goes past this, the severity is raised to `escalation.severity`.
    public var escalation: Escalation?
    public var category: Category = .other
    public var urgency: Urgency = .immediate
    /// Headline and description per language (`it`, `en`, ...); the first one is the main one.
    public var texts: [Text] = []
    public var area: Area = .site
    /// Sink names this rule's alerts go to (nil: every sink).
    public var sinks: [String]?

    public init(name: String, match: Match = Match(), condition: Condition) {
        self.name = name
        self.match = match
        self.condition = condition
    }

    /// Which series a series condition watches; every given part must match.
    public struct Match: Sendable, Equatable {
        /// Smart Data Model entity type of the sensor (`WeatherObserved`).
        public var entityType: String?
        /// Attribute name, a glob (`pm25`, `battery*`).
        public var attribute: Glob?
        /// `<agent>/<sensor>/<attribute>`, a glob (`replay-*/arpa-senato/pm25`).
        public var series: Glob?
        /// Agent id, a glob (also for fleet conditions).
        public var agent: Glob?
        public init(entityType: String? = nil, attribute: Glob? = nil, series: Glob? = nil, agent: Glob? = nil) {
            self.entityType = entityType
            self.attribute = attribute
            self.series = series
            self.agent = agent
        }

        public func matches(agent: String, sensor: Substring, attribute: Substring, entityType: String?) -> Bool {
            if let type = self.entityType, type != entityType { return false }
            if let glob = self.attribute, !glob.matches(attribute) { return false }
            if let glob = self.agent, !glob.matches(Substring(agent)) { return false }
            if let glob = series, !glob.matches(Substring("\(agent)/\(sensor)/\(attribute)")) { return false }
            return true
        }
    }

    public enum Condition: Sendable, Equatable {
        /// Raised above `raise` (or below, when `above` is false), cleared once past `clear` the
        /// other way: hysteresis.
        case threshold(above: Bool, raise: Double, clear: Double)
        /// The change over `window` (newest minus oldest reading within it) reaches `raise`
        /// (a rise; a fall when `raise` is negative); cleared once it is back within `clear`.
        case rate(window: Int64, raise: Double, clear: Double)
        /// The mean of the readings within `window` is past `raise` (above, or below when `above`
        /// is false); cleared once past `clear` the other way.
        case mean(window: Int64, above: Bool, raise: Double, clear: Double)
        /// No reading for this long (wall time): the sensor is silent.
        case silent(Int64)
        /// An agent of the fleet went offline.
        case agentOffline
        /// At least `count` agents (of one `area` when the rule names a polygon or circle)
        /// went offline within `within`: one grouped alert, not one per agent.
        case agentsOffline(count: Int, within: Int64)

        public var isFleet: Bool {
            switch self {
            case .agentOffline, .agentsOffline: true
            default: false
            }
        }
        public var isSeries: Bool {
            switch self {
            case .threshold, .rate, .mean: true
            default: false
            }
        }
        /// How much history (ms before a reading) the condition looks at.
        public var window: Int64 {
            switch self {
            case .rate(let w, _, _), .mean(let w, _, _, _): w
            default: 0
            }
        }
    }

    public struct Escalation: Sendable, Equatable {
        public var value: Double
        public var severity: Severity
        public init(value: Double, severity: Severity) {
            self.value = value
            self.severity = severity
        }
    }

    /// CAP 1.2 `severity`.
    public enum Severity: String, Sendable, CaseIterable, Comparable {
        case minor, moderate, severe, extreme
        public var cap: String { rawValue.prefix(1).uppercased() + rawValue.dropFirst() }
        var rank: Int { Self.allCases.firstIndex(of: self)! }
        public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
    }

    /// CAP 1.2 `category`.
    public enum Category: String, Sendable, CaseIterable {
        case geo, met, safety, security, rescue, fire, health, env, transport, infra, cbrne, other
        public var cap: String {
            switch self {
            case .cbrne: "CBRNE"
            default: rawValue.prefix(1).uppercased() + rawValue.dropFirst()
            }
        }
    }

    /// CAP 1.2 `urgency` for live alerts (late ones are `Past`).
    public enum Urgency: String, Sendable, CaseIterable {
        case immediate, expected, future, unknown
        public var cap: String { rawValue.prefix(1).uppercased() + rawValue.dropFirst() }
    }

    public struct Text: Sendable, Equatable {
        /// `it`, `en`, ...: CAP `language` is written `it-IT`, `en-GB` for these two.
        public var language: String
        public var headline: String
        public var description: String?
        public init(language: String, headline: String, description: String? = nil) {
            self.language = language
            self.headline = headline
            self.description = description
        }
    }

    public enum Area: Sendable, Equatable {
        /// A circle of `radius` km around the site of the agent (its announced location).
        case site(radiusKm: Double = 0.5)
        /// A closed ring of (latitude, longitude) points; `geocode`: its ISTAT code when it is a comune.
        case polygon(name: String, points: [Point], geocode: String? = nil)
        case circle(name: String, center: Point, radiusKm: Double)

        public static let site = Area.site(radiusKm: 0.5)
    }

    public struct Point: Sendable, Equatable {
        public var latitude: Double
        public var longitude: Double
        public init(latitude: Double, longitude: Double) {
            self.latitude = latitude
            self.longitude = longitude
        }
    }
}

/// A shell-style pattern: `*` is any run of characters, `?` one character.
public struct Glob: Sendable, Equatable, CustomStringConvertible {
    public let pattern: String
    private let parts: [Character]
    public init(_ pattern: String) {
        self.pattern = pattern
        parts = Array(pattern)
    }
    public var description: String { pattern }

    public func matches(_ text: Substring) -> Bool {
        if !pattern.contains("*") && !pattern.contains("?") { return text == pattern }
        let chars = Array(text)
        var (p, t, star, mark) = (0, 0, -1, 0)
        while t < chars.count {
            if p < parts.count && (parts[p] == "?" || parts[p] == chars[t]) {
                p += 1; t += 1
            } else if p < parts.count && parts[p] == "*" {
                star = p; mark = t; p += 1
            } else if star >= 0 {
                p = star + 1; mark += 1; t = mark
            } else {
                return false
            }
        }
        while p < parts.count && parts[p] == "*" { p += 1 }
        return p == parts.count
    }
}
