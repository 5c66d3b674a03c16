import GemelloCore

/// One sensor of one agent as the twin sees it: the entity the city's systems consume.
public struct TwinEntity: Sendable, Equatable {
    /// `urn:ngsi-ld:<type>:<agent>:<sensor>`.
    public var id: String
    /// Smart Data Model type announced by the agent (`DeviceMeasurement` when unknown).
    public var type: String
    public var agentID: String
    public var sensorID: String
    public var latitude: Double?
    public var longitude: Double?
    public var attributes: [Attribute]

    public struct Attribute: Sendable, Equatable {
        public var name: String
        /// UN/CEFACT code.
        public var unit: String
        public var value: Double
        /// Unix milliseconds of the latest observation.
        public var observedAt: Int64
        /// Readings of this series in the history.
        public var count: Int64
    }

    public static func entityID(type: String, agent: String, sensor: String) -> String {
        "urn:ngsi-ld:\(type):\(agent):\(sensor)"
    }
}
