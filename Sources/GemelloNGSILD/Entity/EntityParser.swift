import GemelloCore
/// Turns request bodies (normalized or concise form, clause 4.5) into expanded ``Entity`` values,
/// refusing what the spec does not allow with `BadRequestData` naming the attribute and the fix.
public struct EntityParser {
    public let context: LDContext
    /// Unix milliseconds used as createdAt / modifiedAt.
    public let now: Int64

    public init(context: LDContext, now: Int64) {
        self.context = context
        self.now = now
    }

    /// Members of an entity that are not attributes.
    static let entityMembers: Set<String> = ["id", "@id", "type", "@type", "@context", "scope", "createdAt", "modifiedAt", "deletedAt"]
    static let attributeMembers: Set<String> = ["type", "value", "object", "languageMap", "valueList", "objectList", "json", "vocab",
                                                "observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt", "instanceId",
                                                "objectType", "lang", "deletedAt"]
    static let geometryTypes: Set<String> = ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"]
    static let forbiddenNameCharacters: Set<Character> = ["<", ">", "\"", "'", "=", ";", "(", ")", " ", "\t", "\n", "\r"]

    /// A whole entity (create, upsert, replace): `id` and `type` required.
    public func entity(_ json: JSON) throws(NGSILDError) -> Entity {
        guard case .object(let members) = json else { throw .badRequest("an entity must be a JSON object, not \(json.kindName)") }
        guard let idValue = members["id"] ?? members["@id"] else { throw .badRequest("the entity has no id; add \"id\": \"urn:ngsi-ld:<Type>:<name>\"") }
        guard let id = idValue.stringValue, Self.isURI(id) else {
            throw .badRequest("entity id \(idValue.serialized) is not a URI; write e.g. urn:ngsi-ld:Sensor:42")
        }
        let types = try self.types(members["type"] ?? members["@type"], entity: id)
        guard !types.isEmpty else { throw .badRequest("entity \(id) has no type; add \"type\": \"<EntityType>\"") }
        var entity = Entity(id: id, types: types, createdAt: now, modifiedAt: now)
        for (name, instances) in try fragment(json, requireAttributes: false) { entity.attributes[name] = instances }
        return entity
    }

    /// The expanded types of a `type` member (a string or an array of strings).
    public func types(_ value: JSON?, entity: String) throws(NGSILDError) -> [String] {
        guard let value else { return [] }
        var out: [String] = []
        for item in value.asList {
            guard let name = item.stringValue, !name.isEmpty, try Self.validName(name) else {
                throw .badRequest("the type of \(entity) must be a name or a list of names, not \(item.serialized)")
            }
            let expanded = context.expand(name)
            if !out.contains(expanded) { out.append(expanded) }
        }
        return out
    }

    /// The attributes of a body (entity members that are not id, type, @context, ...).
    public func fragment(_ json: JSON, requireAttributes: Bool = true) throws(NGSILDError) -> [String: [Attribute]] {
        guard case .object(let members) = json else { throw .badRequest("the body must be a JSON object, not \(json.kindName)") }
        var out: [String: [Attribute]] = [:]
        for (name, value) in members where !Self.entityMembers.contains(name) {
            _ = try Self.validName(name)
            out[context.expand(name)] = try attribute(name: name, value)
        }
        if requireAttributes && out.isEmpty { throw .badRequest("the body holds no attribute") }
        return out
    }

    /// A temporal representation's attributes (clause 4.5.7): each an instance or an array of
    /// instances over time (any datasetIds, repeated), parsed one by one.
    public func temporalFragment(_ json: JSON) throws(NGSILDError) -> [String: [Attribute]] {
        guard case .object(let members) = json else { throw .badRequest("the body must be a JSON object, not \(json.kindName)") }
        var out: [String: [Attribute]] = [:]
        for (name, value) in members where !Self.entityMembers.contains(name) {
            _ = try Self.validName(name)
            var list: [Attribute] = []
            for item in value.asList { list.append(try instance(name: name, item)) }
            guard !list.isEmpty else { throw .badRequest("attribute \(name) has no instance") }
            out[context.expand(name)] = list
        }
        guard !out.isEmpty else { throw .badRequest("the body holds no attribute") }
        return out
    }

    /// The instances of one attribute (several when the value is an array of instances with datasetIds).
    public func attribute(name: String, _ value: JSON) throws(NGSILDError) -> [Attribute] {
        if case .array(let items) = value, !items.isEmpty, items.allSatisfy({ Self.isInstanceObject($0) }) {
            var instances: [Attribute] = []
            for item in items {
                let instance = try self.instance(name: name, item)
                guard !instances.contains(where: { $0.datasetId == instance.datasetId }) else {
                    throw .badRequest("attribute \(name) has two instances with datasetId \(instance.datasetId ?? "(default)"); each instance needs its own datasetId")
                }
                instances.append(instance)
            }
            return instances
        }
        return [try instance(name: name, value)]
    }

    static func isInstanceObject(_ value: JSON) -> Bool {
        guard case .object(let o) = value else { return false }
        if let t = o["type"]?.stringValue, Attribute.Kind(rawValue: t) != nil { return true }
        return o["value"] != nil || o["object"] != nil || o["languageMap"] != nil || o["datasetId"] != nil
    }

    /// One instance, normalized (`type` given) or concise (inferred, clause 4.5.3).
    public func instance(name: String, _ value: JSON) throws(NGSILDError) -> Attribute {
        guard case .object(let o) = value else { return Attribute(kind: .property, value: value, createdAt: now, modifiedAt: now) }
        let kind: Attribute.Kind
        if let t = o["type"]?.stringValue, let k = Attribute.Kind(rawValue: t) {
            kind = k
        } else if let t = o["type"]?.stringValue, Self.geometryTypes.contains(t), o["coordinates"] != nil {
            // Concise GeoProperty: the geometry itself.
            return try checkedGeo(name: name, Attribute(kind: .geoProperty, value: value, createdAt: now, modifiedAt: now))
        } else if o["type"] != nil, o["value"] != nil || o["object"] != nil {
            throw .badRequest("attribute \(name) has type \(o["type"]!.serialized); use Property, Relationship, GeoProperty, "
                              + "LanguageProperty, ListProperty, ListRelationship, JsonProperty or VocabProperty")
        } else if o["object"] != nil { kind = .relationship
        } else if o["languageMap"] != nil { kind = .languageProperty
        } else if o["valueList"] != nil { kind = .listProperty
        } else if o["objectList"] != nil { kind = .listRelationship
        } else if o["json"] != nil { kind = .jsonProperty
        } else if o["vocab"] != nil { kind = .vocabProperty
        } else if o["value"] != nil { kind = .property
        } else {
            // A plain JSON object is a concise Property whose value is that object.
            return Attribute(kind: .property, value: value, createdAt: now, modifiedAt: now)
        }
        guard let main = o[kind.valueMember], !main.isNull else {
            throw .badRequest("attribute \(name) is a \(kind.rawValue) without \"\(kind.valueMember)\"; add it (null is not a value)")
        }
        var attribute = Attribute(kind: kind, value: main, createdAt: now, modifiedAt: now)
        if let observed = o["observedAt"] {
            guard let text = observed.stringValue, let ms = DateTime.milliseconds(text) else {
                throw .badRequest("observedAt of \(name) is \(observed.serialized); write an ISO 8601 date-time such as 2024-05-01T10:00:00Z")
            }
            attribute.observedAt = ms
        }
        if let unit = o["unitCode"] {
            guard let code = unit.stringValue, !code.isEmpty else { throw .badRequest("unitCode of \(name) must be a UN/CEFACT code string") }
            attribute.unitCode = code
        }
        if let dataset = o["datasetId"] {
            guard let d = dataset.stringValue, Self.isURI(d) else { throw .badRequest("datasetId of \(name) must be a URI, not \(dataset.serialized)") }
            attribute.datasetId = d
        }
        switch kind {
        case .relationship:
            for target in main.asList where !(target.stringValue.map(Self.isURI) ?? false) {
                throw .badRequest("relationship \(name) points at \(target.serialized); \"object\" must be an entity id (URI)")
            }
        case .languageProperty:
            guard case .object(let map) = main, map.values.allSatisfy({ $0.stringValue != nil || $0.arrayValue != nil }) else {
                throw .badRequest("languageMap of \(name) must be an object of language tag → string")
            }
        case .vocabProperty:
            attribute.value = Self.mapStrings(main) { context.expand($0) }
        default: break
        }
        var sub: [String: JSON] = [:]
        for (key, member) in o where !Self.attributeMembers.contains(key) {
            _ = try Self.validName(key)
            let nested = try self.instance(name: "\(name).\(key)", member)
            sub[context.expand(key)] = nested.normalizedForStorage
        }
        attribute.sub = sub
        return kind == .geoProperty ? try checkedGeo(name: name, attribute) : attribute
    }

    private func checkedGeo(name: String, _ attribute: Attribute) throws(NGSILDError) -> Attribute {
        guard attribute.geometry != nil else {
            throw .badRequest("GeoProperty \(name) holds \(attribute.value.serialized), not a valid GeoJSON geometry "
                              + "(Point, LineString, Polygon, ... with [longitude, latitude] positions, polygons closed)")
        }
        return attribute
    }

    static func mapStrings(_ value: JSON, _ transform: (String) -> String) -> JSON {
        switch value {
        case .string(let s): .string(transform(s))
        case .array(let items): .array(items.map { mapStrings($0, transform) })
        default: value
        }
    }

    /// An absolute URI: a scheme, a colon and something after it (RFC 3986's shape, loosely).
    public static func isURI(_ text: String) -> Bool {
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex, text.index(after: colon) != text.endIndex else { return false }
        let scheme = text[..<colon]
        guard let first = scheme.first, first.isLetter, first.isASCII else { return false }
        return scheme.allSatisfy { ($0.isLetter || $0.isNumber || "+-.".contains($0)) && $0.isASCII }
            && !text.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" || $0 == "\"" })
    }

    /// Attribute and type names may not contain the characters the spec forbids in names (clause 4.6.2).
    @discardableResult
    static func validName(_ name: String) throws(NGSILDError) -> Bool {
        guard !name.isEmpty, !name.contains(where: { forbiddenNameCharacters.contains($0) }) else {
            throw .badRequest("\"\(name)\" is not a valid NGSI-LD name (no spaces, quotes, <, >, =, ;, ( or ))")
        }
        return true
    }
}

extension Attribute {
    /// The instance as a normalized JSON object with expanded names (how sub-attributes are kept).
    var normalizedForStorage: JSON {
        var o: [String: JSON] = ["type": .string(kind.rawValue), kind.valueMember: value]
        if let observedAt { o["observedAt"] = .string(DateTime.string(milliseconds: observedAt)) }
        if let unitCode { o["unitCode"] = .string(unitCode) }
        if let datasetId { o["datasetId"] = .string(datasetId) }
        for (k, v) in sub { o[k] = v }
        return .object(o)
    }
}
