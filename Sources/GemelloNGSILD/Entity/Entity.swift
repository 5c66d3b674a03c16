import GemelloCore
/// An NGSI-LD entity as the broker keeps it: every name expanded to its IRI, every attribute in
/// normalized form, with system times.
public struct Entity: Sendable, Equatable {
    /// The entity id (a URI).
    public var id: String
    /// Expanded entity type IRIs (an entity may have several, clause 4.16).
    public var types: [String]
    /// Expanded attribute name → its instances (one per `datasetId`; `nil` is the default instance).
    public var attributes: [String: [Attribute]]
    /// Unix milliseconds.
    public var createdAt: Int64
    public var modifiedAt: Int64

    public init(id: String, types: [String], attributes: [String: [Attribute]] = [:], createdAt: Int64, modifiedAt: Int64) {
        self.id = id
        self.types = types
        self.attributes = attributes
        self.createdAt = createdAt
        self.modifiedAt = modifiedAt
    }

    /// The instance of `name` with `datasetId`, if any.
    public func attribute(_ name: String, datasetId: String? = nil) -> Attribute? {
        attributes[name]?.first { $0.datasetId == datasetId }
    }

    /// Sets (adds or replaces) the instance with the same dataset id.
    public mutating func set(_ name: String, _ attribute: Attribute) {
        var instances = attributes[name] ?? []
        if let index = instances.firstIndex(where: { $0.datasetId == attribute.datasetId }) {
            instances[index] = attribute
        } else {
            instances.append(attribute)
        }
        attributes[name] = instances
    }

    /// Removes the instance with `datasetId` (or all with `all`); whether anything was removed.
    @discardableResult
    public mutating func remove(_ name: String, datasetId: String? = nil, all: Bool = false) -> Bool {
        guard var instances = attributes[name] else { return false }
        let before = instances.count
        if all { instances.removeAll() } else { instances.removeAll { $0.datasetId == datasetId } }
        attributes[name] = instances.isEmpty ? nil : instances
        return instances.count != before
    }
}

/// One attribute instance: a Property, Relationship, GeoProperty, LanguageProperty, ...
public struct Attribute: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case property = "Property"
        case relationship = "Relationship"
        case geoProperty = "GeoProperty"
        case languageProperty = "LanguageProperty"
        case listProperty = "ListProperty"
        case listRelationship = "ListRelationship"
        case jsonProperty = "JsonProperty"
        case vocabProperty = "VocabProperty"

        /// The member that holds this kind's value.
        public var valueMember: String {
            switch self {
            case .property, .geoProperty: "value"
            case .relationship: "object"
            case .languageProperty: "languageMap"
            case .listProperty: "valueList"
            case .listRelationship: "objectList"
            case .jsonProperty: "json"
            case .vocabProperty: "vocab"
            }
        }
    }

    public var kind: Kind
    /// The value (`value`, `object`, `languageMap`, ... by kind).
    public var value: JSON
    public var datasetId: String?
    /// Unix milliseconds of `observedAt`, if given.
    public var observedAt: Int64?
    public var unitCode: String?
    /// Sub-attributes (expanded name → normalized attribute object, names inside expanded too).
    public var sub: [String: JSON]
    public var createdAt: Int64
    public var modifiedAt: Int64
    /// The agent whose ingest owns this attribute (telemetry); `nil` for attributes clients wrote.
    public var owner: String?
    /// The parsed geometry of a GeoProperty (for geo-queries).
    public var geometry: Geometry?

    public init(kind: Kind, value: JSON, datasetId: String? = nil, observedAt: Int64? = nil, unitCode: String? = nil,
                sub: [String: JSON] = [:], createdAt: Int64, modifiedAt: Int64, owner: String? = nil) {
        self.kind = kind
        self.value = value
        self.datasetId = datasetId
        self.observedAt = observedAt
        self.unitCode = unitCode
        self.sub = sub
        self.createdAt = createdAt
        self.modifiedAt = modifiedAt
        self.owner = owner
        self.geometry = kind == .geoProperty ? Geometry(geoJSON: value) : nil
    }
}
