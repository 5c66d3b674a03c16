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
        route(.post, "/temporal/entities", true) { x, _ throws(NGSILDError) in
            let parser = EntityParser(context: x.context, now: broker.now)
            guard case .object(let members) = x.body! else { throw .badRequest("the body must be a temporal entity (a JSON object)") }
            var entity = try parser.entity(.object(members.filter { ["id", "@id", "type", "@type"].contains($0.key) }))
            entity.attributes = try parser.temporalFragment(x.body!)
            if try broker.writeTemporal(entity) {
                return Response(status: .created, headers: [.location: "/ngsi-ld/v1/temporal/entities/\(entity.id)"])
            }
            return NGSILDExchange.noContent()
        }
        route(.post, "/temporal/entities/:id/attrs", true) { x, c throws(NGSILDError) in
            let attributes = try EntityParser(context: x.context, now: broker.now).temporalFragment(x.body!)
            try broker.appendTemporal(id: pathParameter(c, "id"), attributes: attributes)
            return NGSILDExchange.noContent()
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
        return x.reply(objects: bodies, list: list, status: status, extraHeaders: headers)
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

    /// One temporal entity as JSON text (without `@context`).
    func render(_ entity: ContextBroker.TemporalEntity, query: TemporalQuery) -> [UInt8] {
        guard case .object(var out) = entities.render(entity.current) else { return Array("{}".utf8) }
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
        var text = JSONText(capacity: 256 + entity.histories.reduce(0) { $0 + $1.points.count * 40 })
        text.byte(UInt8(ascii: "{"))
        var first = true
        func member(_ name: String) {
            if !first { text.byte(UInt8(ascii: ",")) }
            first = false
            text.key(name)
        }
        for name in out.keys.sorted() {
            member(name)
            text.json(out[name]!)
        }
        for history in entity.histories {
            member(context.compact(history.name))
            write(history, query: query, into: &text)
        }
        text.byte(UInt8(ascii: "}"))
        return text.bytes
    }

    func write(_ history: ContextBroker.AttributeHistory, query: TemporalQuery, into text: inout JSONText) {
        if !history.kept.isEmpty { return writeKept(history, query: query, into: &text) }
        let p = history.points
        switch query.representation {
        case .normalized:
            let lineageName = lineage ? context.compact(Self.lineageTerm) : ""
            var lineageValues: [Int: JSON] = [:]  // per source: the sub-property, written once
            text.byte(UInt8(ascii: "["))
            for i in 0..<p.count {
                if i > 0 { text.byte(UInt8(ascii: ",")) }
                let source = p.source(of: i)
                text.raw("{")
                if entities.sysAttrs, source.committedAt > 0 {
                    text.raw("\"createdAt\":")
                    text.time(source.committedAt)
                    text.raw(",")
                }
                text.raw("\"instanceId\":")
                text.string(ContextBroker.instanceID(p, i))
                if lineage {
                    text.byte(UInt8(ascii: ","))
                    text.key(lineageName)
                    let s = Int(p.sourceIndex[i])
                    if lineageValues[s] == nil { lineageValues[s] = lineageValue(history, source) }
                    text.json(lineageValues[s]!)
                }
                if entities.sysAttrs, source.committedAt > 0 {
                    text.raw(",\"modifiedAt\":")
                    text.time(source.committedAt)
                }
                text.raw(",\"observedAt\":")
                text.time(p.timestamps[i])
                text.raw(",\"type\":\"Property\"")
                if let unit = history.unitCode {
                    text.raw(",\"unitCode\":")
                    text.string(unit)
                }
                text.raw(",\"value\":")
                text.number(p.values[i])
                text.raw("}")
            }
            text.byte(UInt8(ascii: "]"))
        case .temporalValues:
            text.raw("{\"type\":\"Property\",\"values\":[")
            for i in 0..<p.count {
                text.raw(i > 0 ? ",[" : "[")
                text.number(p.values[i])
                text.byte(UInt8(ascii: ","))
                text.time(p.timestamps[i])
                text.byte(UInt8(ascii: "]"))
            }
            text.raw("]}")
        case .aggregated(let methods, let period):
            text.raw("{")
            var periods: [PeriodAggregate] = []
            let summaries = history.summaries
            let firsts = [summaries.first?.time, p.timestamps.first].compactMap { $0 }
            let lasts = [summaries.last.map { $0.time + 3_599_999 }, p.timestamps.last].compactMap { $0 }
            if let first = firsts.min(), let last = lasts.max() {
                let origin: Int64 = query.relation == .after || query.relation == .between ? query.range.lowerBound : first
                let end: Int64 = query.relation == .between || query.relation == .before ? query.range.upperBound + 1 : last + 1
                periods = PeriodAggregate.aggregate(times: p.timestamps, values: p.values, summaries: summaries, origin: origin, end: end,
                                                    period: period, distinct: methods.contains(.distinctCount))
            }
            // Each period's bounds written once, reused by every method.
            var bounds: [[UInt8]] = []
            bounds.reserveCapacity(periods.count)
            for a in periods {
                var b = JSONText(capacity: 56)
                b.byte(UInt8(ascii: ","))
                b.time(a.start)
                b.byte(UInt8(ascii: ","))
                b.time(a.end)
                b.byte(UInt8(ascii: "]"))
                bounds.append(b.bytes)
            }
            for (k, m) in methods.sorted(by: { $0.rawValue < $1.rawValue }).enumerated() {
                if k > 0 { text.byte(UInt8(ascii: ",")) }
                text.key(m.rawValue)
                text.byte(UInt8(ascii: "["))
                for (i, a) in periods.enumerated() {
                    text.raw(i > 0 ? ",[" : "[")
                    text.number(a.value(m))
                    text.append(bounds[i])
                }
                text.byte(UInt8(ascii: "]"))
            }
            text.raw(",\"type\":\"Property\"")
            if let unit = history.unitCode {
                text.raw(",\"unitCode\":")
                text.string(unit)
            }
            text.raw("}")
        }
    }

    /// A client attribute's kept instances (any value kinds; aggregation over the numeric ones).
    func writeKept(_ history: ContextBroker.AttributeHistory, query: TemporalQuery, into text: inout JSONText) {
        let kept = history.kept
        switch query.representation {
        case .normalized:
            text.json(.array(kept.map { item -> JSON in
                var o = entities.render(item.instance)
                o["instanceId"] = .string(item.id)
                return o
            }))
        case .temporalValues:
            let kind = kept[0].instance.kind
            text.json(["type": .string(kind.rawValue), .init(kind == .relationship ? "objects" : "values"): .array(kept.map { item -> JSON in
                [item.instance.value, item.instance.observedAt.map { .string(DateTime.string(milliseconds: $0)) } ?? ""]
            })])
        case .aggregated(let methods, let period):
            let numeric = kept.compactMap { item -> (Int64, Double)? in
                item.instance.value.numberValue.map { (item.instance.observedAt ?? item.instance.createdAt, $0) }
            }
            var o: [String: JSON] = ["type": .string(kept[0].instance.kind.rawValue)]
            var periods: [PeriodAggregate] = []
            if let first = numeric.first?.0, let last = numeric.last?.0 {
                let origin: Int64 = query.relation == .after || query.relation == .between ? query.range.lowerBound : first
                let end: Int64 = query.relation == .between || query.relation == .before ? query.range.upperBound + 1 : last + 1
                periods = PeriodAggregate.aggregate(times: numeric.map(\.0), values: numeric.map(\.1), origin: origin, end: end,
                                                    period: period, distinct: methods.contains(.distinctCount))
            }
            for m in methods {
                o[m.rawValue] = .array(periods.map { a in
                    [.number(a.value(m)), .string(DateTime.string(milliseconds: a.start)), .string(DateTime.string(milliseconds: a.end))]
                })
            }
            text.json(.object(o))
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
