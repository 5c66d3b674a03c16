/// One alert: a rule's verdict about one subject (a series of an entity, an agent, a group of
/// agents) from when it was raised until it cleared. Times are observation times for series
/// rules and wall times for `silent` and the fleet (Unix ms).
public struct Alert: Sendable, Equatable {
    /// Stable: derived from the rule, the subject and the raise time, so a re-evaluation of the
    /// same data names the same alert.
    public var id: String
    public var rule: String
    /// `series:<agent>/<sensor>/<attribute>`, `backfill:<agent>/<sensor>/<attribute>` (a backlog's
    /// episode), `agent:<id>` or `group:<rule>`.
    public var subject: String
    /// The twin entity (or Device) concerned.
    public var entityID: String
    public var entityType: String
    public var agent: String?
    public var attribute: String?
    public var unit: String?
    public var status: Status = .open
    public var severity: AlertRule.Severity
    /// The condition's figure (the reading, the mean, the change, the seconds of silence, the
    /// agents offline) as last reported.
    public var value: Double
    /// The most extreme figure while open (the highest for a rule about rising values, the lowest
    /// for one about falling values): what a clear or a late summary reports.
    public var peak: Double
    /// The site's name (its id as the agent announced it), for texts and CAP's `areaDesc`.
    public var site: String?
    /// The comune the alert's location lies in (``AreaIndex``): its ISTAT code (CAP `geocode`) and name.
    public var geocode: String?
    public var areaName: String?
    /// Times raised, flaps included.
    public var count = 1
    public var raisedAt: Int64
    public var updatedAt: Int64
    public var clearedAt: Int64?
    /// Raised from observations older than the rule set's `late-after` when they were judged (a backlog).
    public var late = false
    public var acknowledgedAt: Int64?
    public var acknowledgedBy: String?
    /// Messages sent for it so far.
    public var revision = 0
    /// Id and wall time of its first message, and of its latest one (CAP `references`).
    public var firstMessage: MessageRef?
    public var lastMessage: MessageRef?
    /// Observation time the value was last sent at.
    public var sentValueAt: Int64
    public var location: AlertRule.Point?
    /// Agents of a grouped fleet alert.
    public var members: [String] = []

    public enum Status: String, Sendable, CaseIterable {
        case open, cleared
    }

    public struct MessageRef: Sendable, Equatable {
        public var id: String
        public var sent: Int64
        public init(id: String, sent: Int64) {
            self.id = id
            self.sent = sent
        }
    }

    public init(id: String, rule: String, subject: String, entityID: String, entityType: String, severity: AlertRule.Severity,
                value: Double, raisedAt: Int64) {
        self.id = id
        self.rule = rule
        self.subject = subject
        self.entityID = entityID
        self.entityType = entityType
        self.severity = severity
        self.value = value
        peak = value
        self.raisedAt = raisedAt
        updatedAt = raisedAt
        sentValueAt = raisedAt
    }

    /// A stable id: FNV-1a of the rule, the subject and the raise time.
    public static func makeID(rule: String, subject: String, raisedAt: Int64) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(rule)|\(subject)|\(raisedAt)".utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return "a" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// One message about an alert, for every sink: its kind (CAP `msgType`), the alert as it is
/// then, a stable id (`<alert id>.<revision>`: a resend is recognisably the same message) and
/// the earlier messages it refers to.
public struct AlertMessage: Sendable, Equatable {
    public var kind: Kind
    public var alert: Alert
    public var id: String
    public var sent: Int64
    public var references: [Alert.MessageRef]

    public enum Kind: String, Sendable {
        case alert = "Alert", update = "Update", cancel = "Cancel"
    }

    public init(kind: Kind, alert: Alert, id: String, sent: Int64, references: [Alert.MessageRef]) {
        self.kind = kind
        self.alert = alert
        self.id = id
        self.sent = sent
        self.references = references
    }
}
