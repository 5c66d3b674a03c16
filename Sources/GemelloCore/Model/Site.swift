/// Where an agent runs: a 5G tower site or a fibre node of the Smart Land network.
public struct Site: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case fiveGTower = "5g-tower"
        case fiberNode = "fiber-node"
    }

    public var id: String
    public var kind: Kind
    public var latitude: Double
    public var longitude: Double

    public init(id: String, kind: Kind, latitude: Double, longitude: Double) {
        self.id = id
        self.kind = kind
        self.latitude = latitude
        self.longitude = longitude
    }
}

/// A sensor as the agent announces it: its id, the Smart Data Model type of the entity it
/// feeds, and the attributes (series) it produces with their units.
public struct SensorInfo: Sendable, Equatable, Codable {
    public var id: String
    /// FIWARE Smart Data Model entity type, e.g. `AirQualityObserved`, `WeatherObserved`.
    public var entityType: String
    public var attributes: [Attribute]

    public struct Attribute: Sendable, Equatable, Codable {
        public var name: String
        public var unit: String
        public init(name: String, unit: String) {
            self.name = name
            self.unit = unit
        }
    }

    public init(id: String, entityType: String, attributes: [Attribute]) {
        self.id = id
        self.entityType = entityType
        self.attributes = attributes
    }
}
