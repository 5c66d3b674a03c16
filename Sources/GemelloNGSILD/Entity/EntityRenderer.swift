import GemelloCore
/// Renders stored entities for a reply: compacted with the request's context, in normalized or
/// simplified (keyValues) form, with or without system attributes, projected by `attrs`,
/// `pick` and `omit` (clauses 4.5, 5.7.2).
public struct EntityRenderer {
    public enum Format: Sendable, Equatable {
        case normalized
        /// `keyValues` / `simplified`: each attribute as its bare value.
        case simplified
        /// `concise`: normalized without the redundant `type` members.
        case concise
    }

    public var context: LDContext
    public var format: Format = .normalized
    public var sysAttrs = false
    /// Expanded attribute names to keep (`attrs` / `pick` of attributes); nil keeps all.
    public var attributes: Set<String>?
    /// `pick` / `omit`: `id`, `type`, or expanded attribute names.
    public var pick: Set<String>?
    public var omit: Set<String> = []
    /// `lang`: a LanguageProperty becomes a Property in this language.
    public var language: String?

    public init(context: LDContext) { self.context = context }

    /// The entity as a JSON object (without `@context`: the caller adds it for JSON-LD replies).
    public func render(_ entity: Entity) -> JSON {
        var out: [String: JSON] = [:]
        if keeps("id") { out["id"] = .string(entity.id) }
        if keeps("type") {
            let types = entity.types.map { JSON.string(context.compact($0)) }
            out["type"] = types.count == 1 ? types[0] : .array(types)
        }
        if sysAttrs {
            out["createdAt"] = .string(DateTime.string(milliseconds: entity.createdAt))
            out["modifiedAt"] = .string(DateTime.string(milliseconds: entity.modifiedAt))
        }
        for (name, instances) in entity.attributes {
            if let attributes, !attributes.contains(name) { continue }
            guard keeps(name) else { continue }
            let rendered = instances.map(render)
            out[context.compact(name)] = rendered.count == 1 ? rendered[0] : .array(rendered)
        }
        return .object(out)
    }

    func keeps(_ name: String) -> Bool {
        if omit.contains(name) { return false }
        if let pick { return pick.contains(name) }
        return true
    }

    /// One attribute instance.
    public func render(_ attribute: Attribute) -> JSON {
        var kind = attribute.kind
        var value = attribute.value
        if kind == .vocabProperty { value = EntityParser.mapStrings(value) { context.compact($0) } }
        if kind == .languageProperty, let language, case .object(let map) = value {
            value = map[language] ?? map["@none"] ?? map.sorted(by: { $0.key < $1.key }).first?.value ?? .null
            kind = .property
        }
        if format == .simplified {
            if attribute.datasetId != nil { return ["value": value, "datasetId": .string(attribute.datasetId!)] }
            return value
        }
        var o: [String: JSON] = [kind.valueMember: value]
        if format == .normalized { o["type"] = .string(kind.rawValue) }
        if let observedAt = attribute.observedAt { o["observedAt"] = .string(DateTime.string(milliseconds: observedAt)) }
        if let unitCode = attribute.unitCode { o["unitCode"] = .string(unitCode) }
        if let datasetId = attribute.datasetId { o["datasetId"] = .string(datasetId) }
        if sysAttrs {
            o["createdAt"] = .string(DateTime.string(milliseconds: attribute.createdAt))
            o["modifiedAt"] = .string(DateTime.string(milliseconds: attribute.modifiedAt))
        }
        for (name, sub) in attribute.sub { o[context.compact(name)] = renderSub(sub) }
        return .object(o)
    }

    /// A stored sub-attribute (normalized JSON with expanded names) compacted.
    func renderSub(_ json: JSON) -> JSON {
        guard case .object(let members) = json else { return json }
        var out: [String: JSON] = [:]
        for (key, value) in members {
            if EntityParser.attributeMembers.contains(key) {
                if key == "type", format == .concise { continue }
                out[key] = value
            } else {
                out[context.compact(key)] = renderSub(value)
            }
        }
        if format == .simplified { return out["value"] ?? out["object"] ?? .object(out) }
        return .object(out)
    }

    /// `application/geo+json` (clause 4.5.16): a Feature, with the geometry of `geoProperty`
    /// (expanded name) and the rendered entity as its properties.
    public func feature(_ entity: Entity, geoProperty: String) -> JSON {
        var properties = render(entity)
        let id = properties["id"] ?? .string(entity.id)
        if case .object(var o) = properties {
            o["id"] = nil
            properties = .object(o)
        }
        let geometry = entity.attribute(geoProperty)?.value ?? entity.attributes[geoProperty]?.first?.value ?? .null
        return ["id": id, "type": "Feature", "geometry": geometry, "properties": properties]
    }
}
