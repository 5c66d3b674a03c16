import GemelloCore
import GemelloAggregator
import GemelloNGSILD
import HTTPTypes
import Hummingbird

/// Batch operations (clause 5.6.7–5.6.10, 5.7.2 by POST) and discovery (clause 5.7.5–5.7.10).
extension AggregatorHTTP {
    typealias NGSILDRoute = (HTTPRequest.Method, String, Bool,
                             @escaping @Sendable (NGSILDExchange, BasicRequestContext) async throws(NGSILDError) -> Response) -> Void

    static func addBatchRoutes(route: NGSILDRoute, broker: ContextBroker) {
        /// Parses each entity of a batch body; the ones that fail become errors of their own.
        @Sendable func entities(_ x: NGSILDExchange) throws(NGSILDError) -> ([Entity], [(String, NGSILDError)]) {
            guard case .array(let items) = x.body! else { throw .badRequest("a batch body must be a JSON array of entities") }
            let parser = EntityParser(context: x.context, now: broker.now)
            var parsed: [Entity] = []
            var errors: [(String, NGSILDError)] = []
            for item in items {
                do throws(NGSILDError) { parsed.append(try parser.entity(item)) } catch {
                    errors.append((item["id"]?.stringValue ?? item["@id"]?.stringValue ?? "", error))
                }
            }
            return (parsed, errors)
        }
        @Sendable func reply(_ result: BatchResult, parseErrors: [(String, NGSILDError)], allGood: () -> Response) -> Response {
            let errors = parseErrors + result.errors.map { ($0.id, $0.error) }
            guard !errors.isEmpty else { return allGood() }
            let body: JSON = [
                "success": .array(result.success.map { .string($0) }),
                "errors": .array(errors.map { id, error in
                    var problem = error.body
                    problem["status"] = .number(Double(error.status))
                    return ["entityId": .string(id), "error": problem]
                }),
            ]
            return Response(status: HTTPResponse.Status(code: 207), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body.serialized)))
        }
        @Sendable func idList(_ ids: [String]) -> Response {
            Response(status: .created, headers: [.contentType: "application/json"],
                     body: .init(byteBuffer: ByteBuffer(string: JSON.array(ids.map { .string($0) }).serialized)))
        }

        route(.post, "/entityOperations/create", true) { x, _ throws(NGSILDError) in
            let (parsed, parseErrors) = try entities(x)
            let result = try broker.batchCreate(parsed)
            return reply(result, parseErrors: parseErrors) { idList(result.success) }
        }
        route(.post, "/entityOperations/upsert", true) { x, _ throws(NGSILDError) in
            let (parsed, parseErrors) = try entities(x)
            let result = try broker.batchUpsert(parsed, mode: x.options.contains("update") ? .update : .replace)
            return reply(result, parseErrors: parseErrors) { result.created.isEmpty ? NGSILDExchange.noContent() : idList(result.created) }
        }
        route(.post, "/entityOperations/update", true) { x, _ throws(NGSILDError) in
            let (parsed, parseErrors) = try entities(x)
            let result = try broker.batchUpdate(parsed, noOverwrite: x.options.contains("noOverwrite"))
            return reply(result, parseErrors: parseErrors) { NGSILDExchange.noContent() }
        }
        route(.post, "/entityOperations/delete", true) { x, _ throws(NGSILDError) in
            guard case .array(let items) = x.body!, items.allSatisfy({ $0.stringValue != nil }) else {
                throw .badRequest("the body of a batch delete must be a JSON array of entity ids")
            }
            let result = try broker.batchDelete(items.compactMap(\.stringValue))
            return reply(result, parseErrors: []) { NGSILDExchange.noContent() }
        }
        route(.post, "/entityOperations/query", true) { x, _ throws(NGSILDError) in
            var query = try bodyQuery(x)
            try page(x, &query)
            let (found, total) = try broker.query(query)
            return try list(x, found, total: total)
        }
    }

    /// The entity selection of a `Query` body (clause 5.2.23): entities, attrs, q, geoQ.
    static func bodyQuery(_ x: NGSILDExchange) throws(NGSILDError) -> EntityQuery {
            let body = x.body!
            guard body["type"]?.stringValue == "Query" else { throw .badRequest("the body must be a Query (\"type\": \"Query\")") }
            var query = EntityQuery()
            let context = x.context
            if let selectors = body["entities"]?.arrayValue {
                // One selector is supported fully; several are combined when they only list ids or types.
                var ids: [String] = []
                var types: [TypeExpression] = []
                for s in selectors {
                    if let id = s["id"]?.stringValue { ids.append(id) }
                    if let pattern = s["idPattern"]?.stringValue { try query.setIDPattern(pattern) }
                    if let type = s["type"]?.stringValue { types.append(try TypeExpression.parse(type, expand: context.expand)) }
                }
                if !ids.isEmpty { query.ids = ids }
                if !types.isEmpty { query.types = types.count == 1 ? types[0] : .or(types) }
            }
            if let attrs = body["attrs"]?.arrayValue { query.attributes = Set(attrs.compactMap(\.stringValue).map(context.expand)) }
            if let q = body["q"]?.stringValue { query.q = try Query.parse(q, expand: { context.expand($0) }) }
            if let geo = body["geoQ"] {
                guard let georel = geo["georel"]?.stringValue, let geometry = geo["geometry"]?.stringValue, let coordinates = geo["coordinates"] else {
                    throw .badRequest("geoQ needs georel, geometry and coordinates")
                }
                let coords = coordinates.stringValue.flatMap { try? JSON.parse($0) } ?? coordinates
                query.geo = try GeoQuery.parse(georel: georel, geometry: geometry, coordinates: coords,
                                               property: context.expand(geo["geoproperty"]?.stringValue ?? "location"))
            }
        return query
    }

    static func addDiscoveryRoutes(route: NGSILDRoute, broker: ContextBroker) {
        route(.get, "/types", false) { x, _ throws(NGSILDError) in
            let summaries = broker.typeSummaries()
            let names = summaries.keys.sorted { x.context.compact($0) < x.context.compact($1) }
            if x.parameter("details") == "true" {
                return x.reply(.array(names.map { iri in
                    ["id": .string(iri), "type": "EntityType", "typeName": .string(x.context.compact(iri)),
                     "attributeNames": .array(summaries[iri]!.attributes.map { .string(x.context.compact($0)) }.sorted { $0.stringValue! < $1.stringValue! })]
                }))
            }
            return x.reply(["id": "urn:ngsi-ld:EntityTypeList:gemello", "type": "EntityTypeList",
                            "typeList": .array(names.map { .string(x.context.compact($0)) })])
        }
        route(.get, "/types/:type", false) { x, c throws(NGSILDError) in
            let name = pathParameter(c, "type")
            let iri = x.context.expand(name)
            guard let summary = broker.typeSummaries()[iri] else { throw .notFound("no entity has type \(name)") }
            let attributes = broker.attributeSummaries()
            return x.reply([
                "id": .string(iri), "type": "EntityTypeInfo", "typeName": .string(x.context.compact(iri)),
                "entityCount": .number(Double(summary.count)),
                "attributeDetails": .array(summary.attributes.sorted { x.context.compact($0) < x.context.compact($1) }.map { a in
                    ["id": .string(a), "type": "Attribute", "attributeName": .string(x.context.compact(a)),
                     "attributeTypes": .array((attributes[a]?.kinds.sorted() ?? []).map { .string($0) })]
                }),
            ])
        }
        route(.get, "/attributes", false) { x, _ throws(NGSILDError) in
            let summaries = broker.attributeSummaries()
            let names = summaries.keys.sorted { x.context.compact($0) < x.context.compact($1) }
            if x.parameter("details") == "true" {
                return x.reply(.array(names.map { attributeDetail($0, summaries[$0]!, x.context) }))
            }
            return x.reply(["id": "urn:ngsi-ld:AttributeList:gemello", "type": "AttributeList",
                            "attributeList": .array(names.map { .string(x.context.compact($0)) })])
        }
        route(.get, "/attributes/:attr", false) { x, c throws(NGSILDError) in
            let name = pathParameter(c, "attr")
            let iri = x.context.expand(name)
            guard let summary = broker.attributeSummaries()[iri] else { throw .notFound("no entity has attribute \(name)") }
            return x.reply(attributeDetail(iri, summary, x.context))
        }
    }

    static func attributeDetail(_ iri: String, _ s: (count: Int, types: Set<String>, kinds: Set<String>), _ context: LDContext) -> JSON {
        ["id": .string(iri), "type": "Attribute", "attributeName": .string(context.compact(iri)),
         "attributeCount": .number(Double(s.count)), "attributeTypes": .array(s.kinds.sorted().map { .string($0) }),
         "typeNames": .array(s.types.map { .string(context.compact($0)) }.sorted { $0.stringValue! < $1.stringValue! })]
    }
}

import Foundation

/// Subscriptions (clause 5.8).
extension AggregatorHTTP {
    static func addSubscriptionRoutes(route: NGSILDRoute, broker: ContextBroker) {
        route(.post, "/subscriptions", true) { x, _ throws(NGSILDError) in
            let id = try await broker.createSubscription(x.body!, context: x.context, contextReference: x.contextReference)
            return Response(status: .created, headers: [.location: "/ngsi-ld/v1/subscriptions/\(id)"])
        }
        route(.get, "/subscriptions", false) { x, _ throws(NGSILDError) in
            let all = try broker.allSubscriptions()
            let limit = try x.parameter("limit").map { v throws(NGSILDError) in try integer(v, "limit") } ?? broker.limits.defaultLimit
            let offset = try x.parameter("offset").map { v throws(NGSILDError) in try integer(v, "offset") } ?? 0
            guard limit >= 0, limit <= broker.limits.maxLimit, offset >= 0 else {
                throw NGSILDError(.tooManyResults, "limit must be 0 … \(broker.limits.maxLimit) and offset ≥ 0")
            }
            let page = all.dropFirst(offset).prefix(limit)
            var headers: HTTPFields = [:]
            if x.parameter("count") == "true" { headers[HTTPField.Name("NGSILD-Results-Count")!] = String(all.count) }
            let sysAttrs = x.options.contains("sysAttrs")
            return x.reply(.array(page.map { $0.rendered(x.context, now: broker.now, sysAttrs: sysAttrs) }), extraHeaders: headers)
        }
        route(.get, "/subscriptions/:id", false) { x, c throws(NGSILDError) in
            let id = pathParameter(c, "id")
            return x.reply(try broker.subscription(id: id).rendered(x.context, now: broker.now, sysAttrs: x.options.contains("sysAttrs")))
        }
        route(.patch, "/subscriptions/:id", true) { x, c throws(NGSILDError) in
            let id = pathParameter(c, "id")
            try await broker.updateSubscription(id: id, patch: x.body!, context: x.context, contextReference: x.contextReference)
            return NGSILDExchange.noContent()
        }
        route(.delete, "/subscriptions/:id", false) { _, c throws(NGSILDError) in
            let id = pathParameter(c, "id")
            try broker.deleteSubscription(id: id)
            return NGSILDExchange.noContent()
        }
    }
}
