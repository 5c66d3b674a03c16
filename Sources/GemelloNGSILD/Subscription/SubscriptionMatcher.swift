import GemelloCore
/// Decides whether an entity change triggers a subscription (clause 5.8.6: new entity, or a
/// change of a watched attribute; the `q` and `geoQ` filters on the new state) and renders the
/// entity as the notification carries it. Built once per subscription and context.
///
/// `@unchecked Sendable`: every member is immutable after init; the only non-Sendable parts are
/// `Regex<AnyRegexOutput>` values (in `patterns` and `query`), which Swift marks so only because
/// their dynamic output type is not Sendable. Matching does not mutate them.
public struct SubscriptionMatcher: @unchecked Sendable {
    public let subscription: Subscription
    public let context: LDContext
    let types: [TypeExpression]
    let patterns: [Regex<AnyRegexOutput>?]
    let query: Query?
    let geo: GeoQuery?

    public init(_ subscription: Subscription, context: LDContext) throws(NGSILDError) {
        self.subscription = subscription
        self.context = context
        var types: [TypeExpression] = []
        var patterns: [Regex<AnyRegexOutput>?] = []
        for selector in subscription.entities {
            types.append(try TypeExpression.parse(selector.type, expand: { $0 }))
            if let p = selector.idPattern {
                patterns.append(try SafePattern.compile(p, what: "idPattern"))
            } else {
                patterns.append(nil)
            }
        }
        self.types = types
        self.patterns = patterns
        query = try subscription.q.map { q throws(NGSILDError) in try Query.parse(q, expand: { context.expand($0) }) }
        if let g = subscription.geoQ, let rel = g["georel"]?.stringValue, let geometry = g["geometry"]?.stringValue, let c = g["coordinates"] {
            geo = try GeoQuery.parse(georel: rel, geometry: geometry, coordinates: c.stringValue.flatMap { try? JSON.parse($0) } ?? c,
                                     property: context.expand(g["geoproperty"]?.stringValue ?? "location"))
        } else {
            geo = nil
        }
    }

    /// The entity types this subscription can select (nil: any, e.g. watchedAttributes only or a
    /// selector with `;`), so that changes of other types need not be matched at all.
    public var selectedTypes: Set<String>? {
        guard !types.isEmpty else { return nil }
        var all = Set<String>()
        for t in types {
            guard let alternatives = t.alternatives else { return nil }
            all.formUnion(alternatives)
        }
        return all
    }

    /// What decides how a change is rendered for this subscription: two subscriptions with the
    /// same signature render a change identically.
    public var renderSignature: String {
        let s = subscription
        return [s.format, s.sysAttrs ? "s" : "", s.showChanges ? "c" : "", s.lang ?? "", s.notifiedAttributes.joined(separator: ","),
                s.context?.serialized ?? ""].joined(separator: "|")
    }

    /// Whether the entity is one the subscription is about (entities selectors only).
    public func selects(_ entity: Entity) -> Bool {
        guard !types.isEmpty else { return true }
        for (i, selector) in subscription.entities.enumerated() {
            // Cheapest test first: most changes are of entities of other types.
            guard types[i].matches(entity.types) else { continue }
            if let id = selector.id, id != entity.id { continue }
            if let pattern = patterns[i], (try? pattern.firstMatch(in: entity.id)) == nil { continue }
            return true
        }
        return false
    }

    /// Whether the filters (`q`, `geoQ`) hold for the entity.
    public func filters(_ entity: Entity) -> Bool {
        if let query, !query.matches(entity) { return false }
        if let geo {
            guard let instances = entity.attributes[geo.property], instances.contains(where: { $0.geometry.map(geo.matches) ?? false }) else {
                return false
            }
        }
        return true
    }

    /// Whether the change from `before` to `after` triggers a notification.
    public func triggers(before: Entity?, after: Entity) -> Bool {
        guard selects(after), filters(after) else { return false }
        let changed = Self.changedAttributes(before: before, after: after)
        guard !changed.isEmpty || before == nil else { return false }
        if subscription.watchedAttributes.isEmpty { return true }
        if before == nil { return subscription.watchedAttributes.contains { after.attributes[$0] != nil } }
        return subscription.watchedAttributes.contains { changed.contains($0) }
    }

    /// Expanded names of attributes created, changed (value or metadata) or deleted.
    public static func changedAttributes(before: Entity?, after: Entity) -> Set<String> {
        guard let before else { return Set(after.attributes.keys) }
        var changed = Set<String>()
        for (name, instances) in after.attributes where !same(before.attributes[name], instances) { changed.insert(name) }
        for name in before.attributes.keys where after.attributes[name] == nil { changed.insert(name) }
        return changed
    }

    static func same(_ a: [Attribute]?, _ b: [Attribute]) -> Bool {
        guard let a, a.count == b.count else { return false }
        for x in b {
            guard let y = a.first(where: { $0.datasetId == x.datasetId }), y.kind == x.kind, y.value == x.value,
                  y.observedAt == x.observedAt, y.unitCode == x.unitCode, y.sub == x.sub else { return false }
        }
        return true
    }

    /// The entity as the notification carries it (format, attributes, sysAttrs, showChanges, lang).
    public func render(before: Entity?, after: Entity) -> JSON {
        var renderer = EntityRenderer(context: context)
        switch subscription.format {
        case "keyValues", "simplified": renderer.format = .simplified
        case "concise": renderer.format = .concise
        default: renderer.format = .normalized
        }
        renderer.sysAttrs = subscription.sysAttrs
        renderer.language = subscription.lang
        if !subscription.notifiedAttributes.isEmpty { renderer.attributes = Set(subscription.notifiedAttributes) }
        var rendered = renderer.render(after)
        if subscription.showChanges, renderer.format != .simplified, let before {
            for name in Self.changedAttributes(before: before, after: after) {
                guard let old = before.attribute(name), let key = Optional(context.compact(name)), case .object(var now)? = rendered[key] else { continue }
                now["previous" + old.kind.valueMember.prefix(1).uppercased() + old.kind.valueMember.dropFirst()] = old.value
                rendered[key] = .object(now)
            }
        }
        return rendered
    }
}
