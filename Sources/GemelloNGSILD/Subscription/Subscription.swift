import GemelloCore
/// An NGSI-LD subscription (ETSI GS CIM 009 clause 5.2.12) as the broker keeps it: names
/// expanded, the `@context` it was made with kept to compact its notifications.
public struct Subscription: Sendable, Equatable {
    public struct EntitySelector: Sendable, Equatable {
        public var id: String?
        public var idPattern: String?
        /// Expanded type, or a type selector (clause 4.17) kept as text and expanded names.
        public var type: String
        public init(id: String? = nil, idPattern: String? = nil, type: String) {
            self.id = id
            self.idPattern = idPattern
            self.type = type
        }
    }

    public struct Endpoint: Sendable, Equatable {
        /// `http://`, `https://`, `mqtt://host:port/topic` or `mqtts://`.
        public var uri: String
        /// `application/json` (default) or `application/ld+json`.
        public var accept: String
        /// Headers (HTTP) or metadata (MQTT) sent with each notification.
        public var receiverInfo: [(key: String, value: String)]
        /// Options for the notifier (MQTT: `MQTT-QoS`, `MQTT-Version`).
        public var notifierInfo: [(key: String, value: String)]

        public init(uri: String, accept: String = "application/json", receiverInfo: [(key: String, value: String)] = [],
                    notifierInfo: [(key: String, value: String)] = []) {
            self.uri = uri
            self.accept = accept
            self.receiverInfo = receiverInfo
            self.notifierInfo = notifierInfo
        }

        public static func == (a: Endpoint, b: Endpoint) -> Bool {
            a.uri == b.uri && a.accept == b.accept && a.receiverInfo.map(\.key) == b.receiverInfo.map(\.key)
                && a.receiverInfo.map(\.value) == b.receiverInfo.map(\.value) && a.notifierInfo.map(\.key) == b.notifierInfo.map(\.key)
                && a.notifierInfo.map(\.value) == b.notifierInfo.map(\.value)
        }
    }

    public enum Status: String, Sendable {
        case active, paused, expired
    }

    public var id: String
    public var name: String?
    public var description: String?
    public var entities: [EntitySelector]
    /// Expanded names; empty: any attribute change triggers.
    public var watchedAttributes: [String]
    /// The `q` text as given (its names are expanded when parsed with ``context``).
    public var q: String?
    public var geoQ: JSON?
    /// Expanded names of the attributes to notify; empty: all.
    public var notifiedAttributes: [String]
    /// `normalized`, `keyValues`, `simplified` or `concise`.
    public var format: String
    public var endpoint: Endpoint
    public var sysAttrs: Bool
    public var showChanges: Bool
    public var lang: String?
    /// Seconds between notifications at least (0: none).
    public var throttling: Double
    /// Seconds between periodic notifications (0: notify on change).
    public var timeInterval: Double
    /// Unix milliseconds.
    public var expiresAt: Int64?
    public var isActive: Bool
    /// The `@context` the subscription was made with (nil: the core context).
    public var context: JSON?
    public var createdAt: Int64
    public var modifiedAt: Int64

    /// Delivery status (clause 5.2.12 NotificationParams).
    public var timesSent: Int64 = 0
    public var timesFailed: Int64 = 0
    public var lastNotification: Int64?
    public var lastSuccess: Int64?
    public var lastFailure: Int64?
    /// Notifications dropped because the outbox was full (never silently: also in /metrics).
    public var dropped: Int64 = 0

    public func status(now: Int64) -> Status {
        if let expiresAt, expiresAt <= now { return .expired }
        return isActive ? .active : .paused
    }

    public init(id: String, entities: [EntitySelector], watchedAttributes: [String], endpoint: Endpoint, createdAt: Int64) {
        self.id = id
        self.entities = entities
        self.watchedAttributes = watchedAttributes
        self.notifiedAttributes = []
        self.format = "normalized"
        self.endpoint = endpoint
        self.sysAttrs = false
        self.showChanges = false
        self.throttling = 0
        self.timeInterval = 0
        self.isActive = true
        self.createdAt = createdAt
        self.modifiedAt = createdAt
    }
}
