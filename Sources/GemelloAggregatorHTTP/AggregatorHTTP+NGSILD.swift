import GemelloCore
import Foundation
import GemelloAggregator
import GemelloNGSILD
import HTTPTypes
import Hummingbird

/// The NGSI-LD API (ETSI GS CIM 009 v1.8, HTTP binding) under `/ngsi-ld/v1`: entities, attributes,
/// batch operations, discovery. Parsing and rendering here; decisions in ``ContextBroker``.
extension AggregatorHTTP {
    static func addNGSILDRoutes(to router: Router<BasicRequestContext>, broker: ContextBroker) {
        let base = "/ngsi-ld/v1"
        func route(_ method: HTTPRequest.Method, _ path: String, body: Bool = false,
                   _ handler: @escaping @Sendable (NGSILDExchange, BasicRequestContext) async throws(NGSILDError) -> Response) {
            router.on(RouterPath(base + path), method: method) { request, context -> Response in
                do {
                    let exchange = try await NGSILDExchange.open(request, broker: broker, readBody: body)
                    return try await handler(exchange, context)
                } catch let error as NGSILDError {
                    return NGSILDExchange.problem(error)
                } catch {
                    return NGSILDExchange.problem(NGSILDError(.internalError, "\(error)"))
                }
            }
        }
        @Sendable func pathID(_ context: BasicRequestContext, _ name: String = "id") -> String { pathParameter(context, name) }

        // MARK: Entities

        route(.get, "/entities") { x, _ throws(NGSILDError) in
            var query = try entityQuery(x)
            try page(x, &query)
            let (entities, total) = try broker.query(query)
            return try list(x, entities, total: total)
        }
        route(.post, "/entities", body: true) { x, _ throws(NGSILDError) in
            let entity = try EntityParser(context: x.context, now: broker.now).entity(x.body!)
            try broker.create(entity)
            return Response(status: .created, headers: [.location: "\(base)/entities/\(entity.id)"])
        }
        route(.get, "/entities/:id") { x, c throws(NGSILDError) in
            let id = pathID(c)
            guard let entity = broker.entity(id: id) else { throw .notFound("no entity with id \(id)") }
            let renderer = try x.renderer()
            if x.accepted == .geoJSON {
                return x.reply(renderer.feature(entity, geoProperty: x.context.expand(x.parameter("geoproperty") ?? "location")))
            }
            return x.reply(renderer.render(entity))
        }
        route(.put, "/entities/:id", body: true) { x, c throws(NGSILDError) in
            let id = pathID(c)
            var body = x.body!
            if body["id"] == nil { body["id"] = .string(id) }
            guard body["id"]?.stringValue == id else { throw .badRequest("the body's id \(body["id"]!.serialized) is not \(id) of the URL") }
            try broker.replace(try EntityParser(context: x.context, now: broker.now).entity(body))
            return NGSILDExchange.noContent()
        }
        route(.patch, "/entities/:id", body: true) { x, c throws(NGSILDError) in
            let (attributes, deletions) = try mergeFragment(x)
            let result = try broker.merge(id: pathID(c), attributes: attributes, deletions: deletions)
            return updateReply(x, result)
        }
        route(.delete, "/entities/:id") { _, c throws(NGSILDError) in
            try broker.delete(id: pathID(c))
            return NGSILDExchange.noContent()
        }

        // MARK: Attributes

        route(.post, "/entities/:id/attrs", body: true) { x, c throws(NGSILDError) in
            let attributes = try EntityParser(context: x.context, now: broker.now).fragment(x.body!)
            let result = try broker.append(id: pathID(c), attributes: attributes, noOverwrite: x.options.contains("noOverwrite"))
            return updateReply(x, result)
        }
        route(.patch, "/entities/:id/attrs", body: true) { x, c throws(NGSILDError) in
            let attributes = try EntityParser(context: x.context, now: broker.now).fragment(x.body!)
            return updateReply(x, try broker.update(id: pathID(c), attributes: attributes))
        }
        route(.patch, "/entities/:id/attrs/:attr", body: true) { x, c throws(NGSILDError) in
            guard case .object(let members) = x.body! else { throw .badRequest("the body must be an attribute object") }
            let name = pathID(c, "attr")
            var body = members
            if body["type"] == nil, let existing = broker.entity(id: pathID(c))?.attribute(x.context.expand(name),
                                                                                           datasetId: members["datasetId"]?.stringValue) {
                body["type"] = .string(existing.kind.rawValue)
            }
            let parser = EntityParser(context: x.context, now: broker.now)
            var patch: Attribute
            if body[Attribute.Kind(rawValue: body["type"]?.stringValue ?? "")?.valueMember ?? "value"] == nil {
                // Only metadata or sub-attributes change: parse with a placeholder value that is not applied.
                var filled = body
                filled[Attribute.Kind(rawValue: body["type"]?.stringValue ?? "")?.valueMember ?? "value"] = .string("urn:ngsi-ld:placeholder")
                if filled["type"]?.stringValue == "GeoProperty" { filled["value"] = ["type": "Point", "coordinates": [0, 0]] }
                patch = try parser.instance(name: name, .object(filled))
            } else {
                patch = try parser.instance(name: name, .object(body))
            }
            patch.datasetId = members["datasetId"]?.stringValue
            try broker.patchAttribute(id: pathID(c), name: x.context.expand(name), with: patch,
                                      members: Set(members.keys).union(patch.sub.isEmpty ? [] : ["sub"]))
            return NGSILDExchange.noContent()
        }
        route(.put, "/entities/:id/attrs/:attr", body: true) { x, c throws(NGSILDError) in
            let name = pathID(c, "attr")
            let expanded = x.context.expand(name)
            let instances = try EntityParser(context: x.context, now: broker.now).attribute(name: name, x.body!)
            guard let entity = broker.entity(id: pathID(c)) else { throw .notFound("no entity with id \(pathID(c))") }
            guard entity.attributes[expanded] != nil else { throw .notFound("entity \(entity.id) has no attribute \(name)") }
            let result = try broker.append(id: entity.id, attributes: [expanded: instances], noOverwrite: false)
            if let failure = result.notUpdated.first { throw NGSILDError(.operationNotSupported, failure.reason) }
            return NGSILDExchange.noContent()
        }
        route(.delete, "/entities/:id/attrs/:attr") { x, c throws(NGSILDError) in
            try broker.deleteAttribute(id: pathID(c), name: x.context.expand(pathID(c, "attr")), datasetId: x.parameter("datasetId"),
                                       all: x.parameter("deleteAll") == "true")
            return NGSILDExchange.noContent()
        }

        addBatchRoutes(route: route, broker: broker)
        addDiscoveryRoutes(route: route, broker: broker)
        addSubscriptionRoutes(route: route, broker: broker)
        addTemporalRoutes(route: route, broker: broker)
    }

    /// A path parameter, percent-decoded (ids are URIs: `urn%3Angsi-ld%3A...` is common).
    static func pathParameter(_ context: BasicRequestContext, _ name: String) -> String {
        let raw = context.parameters.get(name) ?? ""
        return raw.removingPercentEncoding ?? raw
    }

    /// `limit`, `offset` and `count` of a query request.
    static func page(_ x: NGSILDExchange, _ query: inout EntityQuery) throws(NGSILDError) {
        query.limit = try x.parameter("limit").map { v throws(NGSILDError) in try integer(v, "limit") }
        query.offset = try x.parameter("offset").map { v throws(NGSILDError) in try integer(v, "offset") } ?? 0
        query.count = x.parameter("count") == "true"
    }

    static func integer(_ text: String, _ name: String) throws(NGSILDError) -> Int {
        guard let value = Int(text) else { throw .badRequest("\(name)=\(text) is not a whole number") }
        return value
    }

    /// The entity selection of a GET /entities request.
    static func entityQuery(_ x: NGSILDExchange) throws(NGSILDError) -> EntityQuery {
        var query = EntityQuery()
        if let ids = x.parameter("id") { query.ids = x.list(ids) }
        if let pattern = x.parameter("idPattern") { try query.setIDPattern(pattern) }
        if let type = x.parameter("type") { query.types = try TypeExpression.parse(type, expand: x.context.expand) }
        if let attrs = x.parameter("attrs") { query.attributes = Set(x.list(attrs).map(x.context.expand)) }
        let context = x.context
        if let q = x.parameter("q") { query.q = try Query.parse(q, expand: { context.expand($0) }) }
        let georel = x.parameter("georel"), geometry = x.parameter("geometry"), coordinates = x.parameter("coordinates")
        if georel != nil || geometry != nil || coordinates != nil {
            guard let georel, let geometry, let coordinates else {
                throw .badRequest("a geo-query needs georel, geometry and coordinates together")
            }
            let parsed: JSON
            do { parsed = try JSON.parse(coordinates) } catch { throw .badRequest("coordinates \(coordinates) is not a JSON array: \(error)") }
            query.geo = try GeoQuery.parse(georel: georel, geometry: geometry, coordinates: parsed,
                                           property: x.context.expand(x.parameter("geoproperty") ?? "location"))
        }
        return query
    }

    /// A list of entities in the accepted representation, with the count header when asked.
    static func list(_ x: NGSILDExchange, _ entities: [Entity], total: Int?) throws(NGSILDError) -> Response {
        let renderer = try x.renderer()
        var headers: HTTPFields = [:]
        if let total { headers[HTTPField.Name("NGSILD-Results-Count")!] = String(total) }
        if x.accepted == .geoJSON {
            let property = x.context.expand(x.parameter("geoproperty") ?? "location")
            return x.reply(["type": "FeatureCollection", "features": .array(entities.map { renderer.feature($0, geoProperty: property) })],
                           extraHeaders: headers)
        }
        return x.reply(.array(entities.map(renderer.render)), extraHeaders: headers)
    }

    /// 204 when every attribute was written, else 207 with the `UpdateResult`.
    static func updateReply(_ x: NGSILDExchange, _ result: UpdateResult) -> Response {
        guard !result.notUpdated.isEmpty else { return NGSILDExchange.noContent() }
        let body: JSON = [
            "updated": .array(result.updated.map { .string(x.context.compact($0)) }),
            "notUpdated": .array(result.notUpdated.map { ["attributeName": .string(x.context.compact($0.name)), "reason": .string($0.reason)] }),
        ]
        return Response(status: HTTPResponse.Status(code: 207), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body.serialized)))
    }

    /// A merge-patch body: attributes to write, and those set to null (or `urn:ngsi-ld:null`) to delete.
    static func mergeFragment(_ x: NGSILDExchange) throws(NGSILDError) -> ([String: [Attribute]], [String]) {
        guard case .object(var members) = x.body! else { throw .badRequest("the body must be a JSON object") }
        var deletions: [String] = []
        for (name, value) in members where value.isNull || value.stringValue == "urn:ngsi-ld:null"
            || value["value"]?.stringValue == "urn:ngsi-ld:null" || value["object"]?.stringValue == "urn:ngsi-ld:null" {
            deletions.append(x.context.expand(name))
            members[name] = nil
        }
        for key in ["id", "type", "@context"] { members[key] = nil }
        let attributes = members.isEmpty ? [:] : try EntityParser(context: x.context, now: 0).fragment(.object(members))
        return (attributes, deletions)
    }
}
