import GemelloCore
/// Subscriptions in and out (clause 5.8.1 create, 5.8.2 update, 5.8.3 retrieve): validated with
/// `BadRequestData` naming the member and the fix; rendered compacted with the caller's context.
extension Subscription {
    static let formats: Set<String> = ["normalized", "keyValues", "simplified", "concise"]

    /// A subscription from a request body. `id` is used when the body has none.
    public static func parse(_ body: JSON, context: LDContext, contextReference: JSON?, id: String, now: Int64) throws(NGSILDError) -> Subscription {
        guard case .object(let o) = body else { throw .badRequest("a subscription must be a JSON object") }
        guard o["type"]?.stringValue == "Subscription" else { throw .badRequest("the subscription needs \"type\": \"Subscription\"") }
        let subscriptionID = o["id"]?.stringValue ?? id
        guard EntityParser.isURI(subscriptionID) else { throw .badRequest("subscription id \(subscriptionID) is not a URI") }

        var selectors: [EntitySelector] = []
        if let entities = o["entities"] {
            guard let list = entities.arrayValue, !list.isEmpty else { throw .badRequest("entities must be a non-empty array of {id, idPattern, type}") }
            for item in list {
                guard let type = item["type"]?.stringValue, !type.isEmpty else {
                    throw .badRequest("every entities selector needs a type (clause 5.2.8); got \(item.serialized)")
                }
                // Validate the selector now; keep it as expanded names joined by the same operators.
                let expression = try TypeExpression.parse(type, expand: context.expand)
                let id = item["id"]?.stringValue
                if let id, !EntityParser.isURI(id) { throw .badRequest("entities id \(id) is not a URI") }
                let pattern = item["idPattern"]?.stringValue
                if let pattern { _ = try SafePattern.compile(pattern, what: "idPattern") }
                selectors.append(EntitySelector(id: id, idPattern: pattern, type: expression.text))
            }
        }
        var watched: [String] = []
        if let w = o["watchedAttributes"] {
            guard let list = w.arrayValue?.compactMap(\.stringValue), !list.isEmpty, list.count == w.arrayValue?.count else {
                throw .badRequest("watchedAttributes must be a non-empty array of attribute names")
            }
            watched = list.map(context.expand)
        }
        guard !selectors.isEmpty || !watched.isEmpty else {
            throw .badRequest("a subscription needs entities or watchedAttributes (clause 5.8.1)")
        }
        guard case .object(let n)? = o["notification"] else { throw .badRequest("the subscription needs a notification member with an endpoint") }
        guard case .object(let e)? = n["endpoint"], let uri = e["uri"]?.stringValue else {
            throw .badRequest("notification.endpoint.uri is required (http://, https://, mqtt://host:port/topic or mqtts://)")
        }
        guard ["http://", "https://", "mqtt://", "mqtts://"].contains(where: { uri.hasPrefix($0) }), EntityParser.isURI(uri) else {
            throw .badRequest("notification.endpoint.uri \(uri) is not an http(s):// or mqtt(s):// URI")
        }
        let accept = e["accept"]?.stringValue ?? "application/json"
        guard accept == "application/json" || accept == "application/ld+json" else {
            throw .badRequest("notification.endpoint.accept must be application/json or application/ld+json")
        }
        func keyValues(_ member: String) throws(NGSILDError) -> [(key: String, value: String)] {
            guard let list = e[member] else { return [] }
            var out: [(key: String, value: String)] = []
            for item in list.arrayValue ?? [] {
                guard let k = item["key"]?.stringValue, let v = item["value"]?.stringValue, !k.isEmpty else {
                    throw .badRequest("notification.endpoint.\(member) must be a list of {\"key\", \"value\"} strings")
                }
                out.append((k, v))
            }
            return out
        }
        var s = Subscription(id: subscriptionID, entities: selectors, watchedAttributes: watched,
                             endpoint: Endpoint(uri: uri, accept: accept, receiverInfo: try keyValues("receiverInfo"),
                                                notifierInfo: try keyValues("notifierInfo")), createdAt: now)
        s.name = o["subscriptionName"]?.stringValue
        s.description = o["description"]?.stringValue
        if let q = o["q"] {
            guard let text = q.stringValue else { throw .badRequest("q must be a string") }
            _ = try Query.parse(text, expand: { context.expand($0) })
            s.q = text
        }
        if let geo = o["geoQ"] {
            guard let georel = geo["georel"]?.stringValue, let geometry = geo["geometry"]?.stringValue, let coordinates = geo["coordinates"] else {
                throw .badRequest("geoQ needs georel, geometry and coordinates")
            }
            let coords = coordinates.stringValue.flatMap { try? JSON.parse($0) } ?? coordinates
            _ = try GeoQuery.parse(georel: georel, geometry: geometry, coordinates: coords,
                                   property: context.expand(geo["geoproperty"]?.stringValue ?? "location"))
            s.geoQ = geo
        }
        if let attributes = n["attributes"] {
            guard let list = attributes.arrayValue?.compactMap(\.stringValue), list.count == attributes.arrayValue?.count else {
                throw .badRequest("notification.attributes must be an array of attribute names")
            }
            s.notifiedAttributes = list.map(context.expand)
        }
        if let format = n["format"] {
            guard let f = format.stringValue, formats.contains(f) else {
                throw .badRequest("notification.format must be normalized, keyValues, simplified or concise")
            }
            s.format = f
        }
        s.sysAttrs = n["sysAttrs"]?.boolValue ?? false
        s.showChanges = n["showChanges"]?.boolValue ?? false
        s.lang = o["lang"]?.stringValue
        if let t = o["throttling"] {
            guard let v = t.numberValue, v >= 0 else { throw .badRequest("throttling must be a number of seconds ≥ 0") }
            s.throttling = v
        }
        if let t = o["timeInterval"] {
            guard let v = t.numberValue, v > 0 else { throw .badRequest("timeInterval must be a number of seconds > 0") }
            guard watched.isEmpty else { throw .badRequest("timeInterval and watchedAttributes cannot be used together (clause 5.8.1)") }
            guard s.throttling == 0 else { throw .badRequest("timeInterval and throttling cannot be used together") }
            s.timeInterval = v
        }
        if let x = o["expiresAt"] {
            guard let text = x.stringValue, let ms = DateTime.milliseconds(text) else { throw .badRequest("expiresAt must be an ISO 8601 date-time") }
            s.expiresAt = ms
        }
        if let active = o["isActive"] {
            guard let b = active.boolValue else { throw .badRequest("isActive must be true or false") }
            s.isActive = b
        }
        s.context = contextReference
        return s
    }

    /// The subscription as a reply (clause 5.2.12), names compacted with `context`.
    public func rendered(_ context: LDContext, now: Int64, sysAttrs: Bool = false) -> JSON {
        var o: [String: JSON] = ["id": .string(id), "type": "Subscription", "isActive": .bool(isActive),
                                 "status": .string(status(now: now).rawValue)]
        if let name { o["subscriptionName"] = .string(name) }
        if let description { o["description"] = .string(description) }
        if !entities.isEmpty {
            o["entities"] = .array(entities.map { e in
                var item: [String: JSON] = ["type": .string(TypeExpression.compactText(e.type, context))]
                if let id = e.id { item["id"] = .string(id) }
                if let p = e.idPattern { item["idPattern"] = .string(p) }
                return .object(item)
            })
        }
        if !watchedAttributes.isEmpty { o["watchedAttributes"] = .array(watchedAttributes.map { .string(context.compact($0)) }) }
        if let q { o["q"] = .string(q) }
        if let geoQ { o["geoQ"] = geoQ }
        var endpoint: [String: JSON] = ["uri": .string(self.endpoint.uri), "accept": .string(self.endpoint.accept)]
        if !self.endpoint.receiverInfo.isEmpty {
            endpoint["receiverInfo"] = .array(self.endpoint.receiverInfo.map { ["key": .string($0.key), "value": .string($0.value)] })
        }
        if !self.endpoint.notifierInfo.isEmpty {
            endpoint["notifierInfo"] = .array(self.endpoint.notifierInfo.map { ["key": .string($0.key), "value": .string($0.value)] })
        }
        var n: [String: JSON] = ["format": .string(format), "endpoint": .object(endpoint)]
        // The counters appear once there is something to count (the schema's minimum is 1).
        if timesSent > 0 { n["timesSent"] = .number(Double(timesSent)) }
        if timesFailed > 0 { n["timesFailed"] = .number(Double(timesFailed)) }
        if !notifiedAttributes.isEmpty { n["attributes"] = .array(notifiedAttributes.map { .string(context.compact($0)) }) }
        if sysAttrs { n["sysAttrs"] = true }
        if showChanges { n["showChanges"] = true }
        if let t = lastNotification { n["lastNotification"] = .string(DateTime.string(milliseconds: t)) }
        if let t = lastSuccess { n["lastSuccess"] = .string(DateTime.string(milliseconds: t)) }
        if let t = lastFailure { n["lastFailure"] = .string(DateTime.string(milliseconds: t)) }
        n["status"] = .string((lastFailure ?? 0) > (lastSuccess ?? 0) ? "failed" : "ok")
        o["notification"] = .object(n)
        if throttling > 0 { o["throttling"] = .number(throttling) }
        if timeInterval > 0 { o["timeInterval"] = .number(timeInterval) }
        if let expiresAt { o["expiresAt"] = .string(DateTime.string(milliseconds: expiresAt)) }
        if let lang { o["lang"] = .string(lang) }
        if sysAttrs {
            o["createdAt"] = .string(DateTime.string(milliseconds: createdAt))
            o["modifiedAt"] = .string(DateTime.string(milliseconds: modifiedAt))
        }
        return .object(o)
    }

    /// The stored form: rendered with names left expanded, plus what only the broker keeps.
    public var stored: JSON {
        var o = rendered(LDContext(), now: 0)
        o["@gemello"] = [
            "context": context ?? .null, "createdAt": .number(Double(createdAt)), "modifiedAt": .number(Double(modifiedAt)),
            "timesSent": .number(Double(timesSent)), "timesFailed": .number(Double(timesFailed)), "dropped": .number(Double(dropped)),
            "lastNotification": lastNotification.map { .number(Double($0)) } ?? .null,
            "lastSuccess": lastSuccess.map { .number(Double($0)) } ?? .null,
            "lastFailure": lastFailure.map { .number(Double($0)) } ?? .null,
        ]
        return o
    }

    public init?(stored: JSON) {
        guard let meta = stored["@gemello"], var parsed = try? Subscription.parse(stored, context: LDContext(), contextReference: nil, id: "", now: 0) else {
            return nil
        }
        parsed.context = meta["context"].flatMap { $0.isNull ? nil : $0 }
        parsed.createdAt = Int64(meta["createdAt"]?.numberValue ?? 0)
        parsed.modifiedAt = Int64(meta["modifiedAt"]?.numberValue ?? 0)
        parsed.timesSent = Int64(meta["timesSent"]?.numberValue ?? 0)
        parsed.timesFailed = Int64(meta["timesFailed"]?.numberValue ?? 0)
        parsed.dropped = Int64(meta["dropped"]?.numberValue ?? 0)
        parsed.lastNotification = meta["lastNotification"]?.numberValue.map { Int64($0) }
        parsed.lastSuccess = meta["lastSuccess"]?.numberValue.map { Int64($0) }
        parsed.lastFailure = meta["lastFailure"]?.numberValue.map { Int64($0) }
        self = parsed
    }
}

extension TypeExpression {
    /// The selector as text (expanded names), the form subscriptions keep.
    public var text: String {
        switch self {
        case .type(let t): t
        case .and(let items): "(" + items.map(\.text).joined(separator: ";") + ")"
        case .or(let items): "(" + items.map(\.text).joined(separator: "|") + ")"
        }
    }

    /// A kept selector text with each name compacted.
    static func compactText(_ text: String, _ context: LDContext) -> String {
        guard let parsed = try? TypeExpression.parse(text, expand: { $0 }) else { return text }
        func render(_ e: TypeExpression, top: Bool) -> String {
            switch e {
            case .type(let t): return context.compact(t)
            case .and(let items): let s = items.map { render($0, top: false) }.joined(separator: ";"); return top ? s : "(" + s + ")"
            case .or(let items): let s = items.map { render($0, top: false) }.joined(separator: "|"); return top ? s : "(" + s + ")"
            }
        }
        return render(parsed, top: true)
    }
}
