import GemelloAggregator
import GemelloCore
import GemelloNGSILD
import HTTPTypes
import Hummingbird

/// The NGSI-LD temporal API (clauses 5.7.3, 5.7.4, 5.6.12, 6.18–6.22): the evolution of entities
/// as normalized instances, `temporalValues` or `aggregatedValues`, paged by time.
extension AggregatorHTTP {
    static func addTemporalRoutes(route: NGSILDRoute, broker: ContextBroker) {
        route(.get, "/temporal/entities", false) { x, _ throws(NGSILDError) in
            var selection = try entityQuery(x)
            try page(x, &selection)
            let temporal = try TemporalQuery.parse(parameter: x.parameter, options: x.options)
            return try temporalReply(x, broker.temporalQuery(selection, query: temporal), query: temporal, list: true)
        }
        route(.get, "/temporal/entities/:id", false) { x, c throws(NGSILDError) in
            let temporal = try TemporalQuery.parse(parameter: x.parameter, options: x.options)
            let attributes = x.parameter("attrs").map { Set(x.list($0).map(x.context.expand)) }
            let reply = try broker.temporalEntity(id: pathParameter(c, "id"), attributes: attributes, query: temporal)
            return try temporalReply(x, reply, query: temporal, list: false)
        }
        route(.post, "/temporal/entityOperations/query", true) { x, _ throws(NGSILDError) in
            var selection = try bodyQuery(x)
            try page(x, &selection)
            let temporalQ = x.body!["temporalQ"]
            let temporal = try TemporalQuery.parse(parameter: { name in
                switch temporalQ?[name] {
                case .string(let s)?: s
                case .number(let n)?: n == n.rounded() ? String(Int64(n)) : String(n)
                default: x.parameter(name)  // format, options, aggrMethods... may come as URL parameters
                }
            }, options: x.options)
            return try temporalReply(x, broker.temporalQuery(selection, query: temporal), query: temporal, list: true)
        }
        route(.delete, "/temporal/entities/:id/attrs/:attr/:instance", false) { x, c throws(NGSILDError) in
            try broker.deleteInstance(entity: pathParameter(c, "id"), attribute: x.context.expand(pathParameter(c, "attr")),
                                      instanceID: pathParameter(c, "instance"))
            return NGSILDExchange.noContent()
        }
        route(.delete, "/temporal/entities/:id/attrs/:attr", false) { x, c throws(NGSILDError) in
            try broker.deleteHistory(entity: pathParameter(c, "id"), attribute: x.context.expand(pathParameter(c, "attr")))
            return NGSILDExchange.noContent()
        }
        route(.delete, "/temporal/entities/:id", false) { _, c throws(NGSILDError) in
            try broker.delete(id: pathParameter(c, "id"))  // client entities; the agents' telemetry entities refuse (422)
            return NGSILDExchange.noContent()
        }
        for path in ["/temporal/entities", "/temporal/entities/:id/attrs"] {
            route(.post, path, true) { _, _ throws(NGSILDError) in
                throw NGSILDError(.operationNotSupported, "temporal writes are not built: the history of agent telemetry is kept as it is "
                                  + "ingested; write the current state of other entities through /ngsi-ld/v1/entities (docs/ngsi-ld.md)")
            }
        }
    }

    /// The reply: 200, or 206 with `Content-Range: date-time <start>-<end>/*` when an attribute's
    /// history was longer than `ngsi-ld.max-instances` (the client asks again from `end`).
    static func temporalReply(_ x: NGSILDExchange, _ reply: ContextBroker.TemporalReply, query: TemporalQuery,
                              list: Bool) throws(NGSILDError) -> Response {
        var renderer = try x.temporalRenderer()
        renderer.lineage = x.options.contains("lineage")
        let bodies = reply.entities.map { renderer.render($0, query: query) }
        var headers: HTTPFields = [:]
        if let total = reply.total { headers[HTTPField.Name("NGSILD-Results-Count")!] = String(total) }
        var status = HTTPResponse.Status.ok
        if let range = reply.partial {
            status = HTTPResponse.Status(code: 206)
            headers[.contentRange] = "date-time \(DateTime.string(milliseconds: range.lowerBound))-\(DateTime.string(milliseconds: range.upperBound))/*"
        }
        return x.reply(list ? .array(bodies) : bodies[0], status: status, extraHeaders: headers)
    }
}

extension NGSILDExchange {
    /// The entity renderer of the request, for the attributes without a kept history.
    func temporalRenderer() throws(NGSILDError) -> TemporalRenderer {
        guard accepted != .geoJSON else { throw NGSILDError(.notAcceptable, "temporal representations are JSON or JSON-LD, not GeoJSON") }
        var entityRenderer = EntityRenderer(context: context)
        entityRenderer.sysAttrs = options.contains("sysAttrs")
        entityRenderer.language = parameter("lang")
        return TemporalRenderer(entities: entityRenderer)
    }
}

/// Renders temporal entities (clause 4.5.7, 4.5.9, 4.5.19).
struct TemporalRenderer {
    var entities: EntityRenderer
    /// `options=lineage`: every instance carries a `lineage` sub-property (agent, site, boot
    /// epoch, batch sequence, commit time).
    var lineage = false

    var context: LDContext { entities.context }

    func render(_ entity: ContextBroker.TemporalEntity, query: TemporalQuery) -> JSON {
        guard case .object(var out) = entities.render(entity.current) else { return .null }
        // Attributes without a kept history: their current instance.
        for (name, value) in out where !["id", "type", "createdAt", "modifiedAt"].contains(name) {
            let instances = value.arrayValue ?? [value]
            switch query.representation {
            case .normalized: out[name] = .array(instances)
            case .temporalValues, .aggregated:
                let kind = instances.first?["type"] ?? "Property"
                let member = kind.stringValue == "Relationship" ? "objects" : "values"
                out[name] = ["type": kind, .init(member): .array(instances.map { i -> JSON in
                    [i["value"] ?? i["object"] ?? .null, i["observedAt"] ?? ""]
                })]
            }
        }
        for history in entity.histories {
            out[context.compact(history.name)] = render(history, query: query)
        }
        return .object(out)
    }

    func render(_ history: ContextBroker.AttributeHistory, query: TemporalQuery) -> JSON {
        let p = history.points
        switch query.representation {
        case .normalized:
            return .array((0..<p.count).map { i -> JSON in
                var o: [String: JSON] = ["type": "Property", "value": .number(p.values[i]),
                                         "observedAt": .string(DateTime.string(milliseconds: p.timestamps[i])),
                                         "instanceId": .string(ContextBroker.instanceID(p, i))]
                if let unit = history.unitCode { o["unitCode"] = .string(unit) }
                let source = p.source(of: i)
                if entities.sysAttrs, source.committedAt > 0 {
                    o["createdAt"] = .string(DateTime.string(milliseconds: source.committedAt))
                    o["modifiedAt"] = o["createdAt"]
                }
                if lineage { o[context.compact(Self.lineageTerm)] = lineageValue(history, source) }
                return .object(o)
            })
        case .temporalValues:
            return ["type": "Property", "values": .array((0..<p.count).map { i in
                [.number(p.values[i]), .string(DateTime.string(milliseconds: p.timestamps[i]))]
            })]
        case .aggregated(let methods, let period):
            var o: [String: JSON] = ["type": "Property"]
            guard p.count > 0 else {
                for m in methods { o[m.rawValue] = [] }
                return .object(o)
            }
            let origin: Int64 = query.relation == .after || query.relation == .between ? query.range.lowerBound : p.timestamps[0]
            let end: Int64 = query.relation == .between || query.relation == .before ? query.range.upperBound + 1 : p.timestamps[p.count - 1] + 1
            let periods = PeriodAggregate.aggregate(times: p.timestamps, values: p.values, origin: origin, end: end, period: period,
                                                    distinct: methods.contains(.distinctCount))
            for m in methods {
                o[m.rawValue] = .array(periods.map { a in
                    [.number(a.value(m)), .string(DateTime.string(milliseconds: a.start)), .string(DateTime.string(milliseconds: a.end))]
                })
            }
            if let unit = history.unitCode { o["unitCode"] = .string(unit) }
            return .object(o)
        }
    }

    /// The sub-property's expanded name (the core context's `@vocab` compacts it to `lineage`).
    static let lineageTerm = "https://uri.etsi.org/ngsi-ld/default-context/lineage"

    func lineageValue(_ history: ContextBroker.AttributeHistory, _ source: SeriesChunk.Source) -> JSON {
        var value: [String: JSON] = ["agent": .string(history.agent)]
        if let site = history.site { value["site"] = .string(site) }
        if source.sequence > 0 || source.epoch > 0 {
            value["bootEpoch"] = .number(Double(source.epoch))
            value["batch"] = .number(Double(source.sequence))
            value["committedAt"] = .string(DateTime.string(milliseconds: source.committedAt))
        } else {
            value["batch"] = "unknown (history migrated from a store that did not keep lineage)"
        }
        return ["type": "Property", "value": .object(value)]
    }
}
