import GemelloCore
import GemelloAggregator
import GemelloNGSILD
import HTTPTypes
import Hummingbird

/// One NGSI-LD request as the HTTP binding (ETSI GS CIM 009 clause 6) sees it: its media types,
/// the `@context` it names (Link header or body), its body and query options; and how to reply.
struct NGSILDExchange {
    enum Accepted { case json, jsonLD, geoJSON }

    static let linkRelation = "http://www.w3.org/ns/json-ld#context"
    /// The cap when no ``AccessMiddleware`` read the body first (that one applies `http.max-body`).
    static let maxBody = 16 << 20

    let request: Request
    /// The context as named by the request (nil: none, the core context applies).
    let contextReference: JSON?
    let context: LDContext
    let accepted: Accepted
    let body: JSON?

    /// Reads the headers and body and resolves the context.
    static func open(_ request: Request, broker: ContextBroker, readBody: Bool) async throws(NGSILDError) -> NGSILDExchange {
        if request.headers[HTTPField.Name("NGSILD-Tenant")!] != nil {
            throw NGSILDError(.noMultiTenantSupport, "this broker has one tenant; send the request without an NGSILD-Tenant header")
        }
        let accepted = try acceptedType(request.headers[.accept])
        var body: JSON?
        var reference: JSON?
        let contentType = request.headers[.contentType].map { $0.split(separator: ";")[0].trimmingSpaces.lowercased() }
        let link = try linkContext(request.headers[values: HTTPField.Name("Link")!])
        if readBody {
            guard let contentType else { throw NGSILDError(.unsupportedMediaType, "the request has a body but no Content-Type; send application/json or application/ld+json") }
            guard contentType == "application/json" || contentType == "application/ld+json" || contentType == "application/merge-patch+json" else {
                throw NGSILDError(.unsupportedMediaType, "Content-Type \(contentType) is not accepted; send application/json or application/ld+json")
            }
            let buffer: ByteBuffer
            do { buffer = try await request.body.collect(upTo: maxBody) } catch {
                throw NGSILDError(.payloadTooLarge, "the body is larger than \(maxBody) bytes or could not be read")
            }
            do { body = try JSON.parse(buffer.readableBytesView) } catch { throw NGSILDError(.invalidRequest, "\(error)") }
            if contentType == "application/ld+json" {
                guard link == nil else { throw NGSILDError.badRequest("a JSON-LD body carries its own @context; do not send a Link header with it") }
                reference = try ldContext(of: body!)
            } else {
                if case .object(let o) = body!, o["@context"] != nil {
                    throw NGSILDError.badRequest("an application/json body may not hold @context; send it as application/ld+json or name it in a Link header")
                }
                if case .array(let items) = body!, items.contains(where: { $0["@context"] != nil }) {
                    throw NGSILDError.badRequest("an application/json body may not hold @context; send it as application/ld+json or name it in a Link header")
                }
                reference = link.map { JSON.string($0) }
            }
        } else {
            reference = link.map { JSON.string($0) }
        }
        let context = try await broker.contexts.resolve(reference)
        return NGSILDExchange(request: request, contextReference: reference, context: context, accepted: accepted, body: body)
    }

    /// The `@context` of a JSON-LD body (an entity, or an array of entities all naming one).
    static func ldContext(of body: JSON) throws(NGSILDError) -> JSON {
        switch body {
        case .object(let o):
            guard let c = o["@context"] else { throw NGSILDError.badRequest("an application/ld+json body needs an @context member") }
            return c
        case .array(let items):
            guard let first = items.first?["@context"] else {
                throw NGSILDError.badRequest("every entity of an application/ld+json batch needs an @context member")
            }
            for item in items where item["@context"] != first {
                throw NGSILDError.badRequest("the entities of one batch must name the same @context")
            }
            return first
        default:
            throw NGSILDError.badRequest("the body must be a JSON object or array, not \(body.kindName)")
        }
    }

    static func acceptedType(_ header: String?) throws(NGSILDError) -> Accepted {
        guard let header, !header.isEmpty else { return .json }
        var best: (Accepted, Double)?
        for part in header.split(separator: ",") {
            let fields = part.split(separator: ";").map { $0.trimmingSpaces.lowercased() }
            let quality = fields.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            let type: Accepted?
            switch fields[0] {
            case "application/json", "application/*", "*/*": type = .json
            case "application/ld+json": type = .jsonLD
            case "application/geo+json": type = .geoJSON
            default: type = nil
            }
            if let type, quality > 0, quality > (best?.1 ?? -1) { best = (type, quality) }
        }
        guard let best else {
            throw NGSILDError(.notAcceptable, "Accept: \(header) names no type this broker serves; accept application/json, application/ld+json or application/geo+json")
        }
        return best.0
    }

    /// The URL of a Link header with rel json-ld#context.
    static func linkContext(_ values: [String]) throws(NGSILDError) -> String? {
        for value in values {
            for link in value.split(separator: ",") {
                guard link.contains(linkRelation) else { continue }
                guard let open = link.firstIndex(of: "<"), let close = link.firstIndex(of: ">"), open < close else {
                    throw NGSILDError.badRequest("Link header \(link) has no <URL>")
                }
                return String(link[link.index(after: open)..<close])
            }
        }
        return nil
    }

    // MARK: - Query options

    func parameter(_ name: String) -> String? {
        request.uri.queryParameters.get(name).flatMap { $0.isEmpty ? nil : $0 }
    }

    var options: Set<String> {
        Set((parameter("options") ?? "").split(separator: ",").map { String($0).trimmingSpaces })
    }

    /// The renderer the options ask for.
    func renderer() throws(NGSILDError) -> EntityRenderer {
        var r = EntityRenderer(context: context)
        let options = self.options
        switch parameter("format") {
        case nil: break
        case "normalized": r.format = .normalized
        case "simplified", "keyValues": r.format = .simplified
        case "concise": r.format = .concise
        case let other?: throw .badRequest("format=\(other) is not normalized, simplified, keyValues or concise")
        }
        if parameter("format") == nil {
            if options.contains("keyValues") || options.contains("simplified") { r.format = .simplified }
            if options.contains("concise") { r.format = .concise }
        }
        r.sysAttrs = options.contains("sysAttrs")
        if let attrs = parameter("attrs") { r.attributes = Set(list(attrs).map(context.expand)) }
        if let pick = parameter("pick") { r.pick = Set(list(pick).map { $0 == "id" || $0 == "type" ? $0 : context.expand($0) }) }
        if let omit = parameter("omit") { r.omit = Set(list(omit).map { $0 == "id" || $0 == "type" ? $0 : context.expand($0) }) }
        if r.pick != nil && !r.omit.isEmpty { throw .badRequest("pick and omit cannot be used together") }
        r.language = parameter("lang")
        return r
    }

    func list(_ text: String) -> [String] {
        text.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
    }

    // MARK: - Replies

    /// A reply body in the accepted representation: `@context` inside for JSON-LD, a Link header
    /// for JSON (the context the request named, or the core context).
    func reply(_ value: JSON, status: HTTPResponse.Status = .ok, extraHeaders: HTTPFields = [:]) -> Response {
        var headers = extraHeaders
        var payload = value
        let contextValue: JSON = contextReference ?? .string(ContextResolver.coreContextURL)
        switch accepted {
        case .jsonLD:
            headers[.contentType] = "application/ld+json"
            payload = Self.withContext(value, contextValue)
        case .json, .geoJSON:
            headers[.contentType] = accepted == .geoJSON ? "application/geo+json" : "application/json"
            if case .string(let url) = contextValue {
                headers[HTTPField.Name("Link")!] = "<\(url)>; rel=\"\(Self.linkRelation)\"; type=\"application/ld+json\""
            }
            if accepted == .geoJSON, case .object = payload { payload["@context"] = contextValue }
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: payload.serialized)))
    }

    /// A reply of objects already written as JSON text (each starting with `{`): one, or a list.
    /// For JSON-LD each gets the `@context` member; for JSON the Link header, as ``reply(_:status:extraHeaders:)``.
    func reply(objects: [[UInt8]], list: Bool, status: HTTPResponse.Status = .ok, extraHeaders: HTTPFields = [:]) -> Response {
        var headers = extraHeaders
        let contextValue: JSON = contextReference ?? .string(ContextResolver.coreContextURL)
        var contextMember: [UInt8] = []
        switch accepted {
        case .jsonLD, .geoJSON:
            headers[.contentType] = "application/ld+json"
            contextMember = Array("\"@context\":\(contextValue.serialized)".utf8)
        case .json:
            headers[.contentType] = "application/json"
            if case .string(let url) = contextValue {
                headers[HTTPField.Name("Link")!] = "<\(url)>; rel=\"\(Self.linkRelation)\"; type=\"application/ld+json\""
            }
        }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(objects.reduce(2) { $0 + $1.count + contextMember.count + 2 })
        if list { buffer.writeInteger(UInt8(ascii: "[")) }
        for (i, object) in objects.enumerated() {
            if i > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            if contextMember.isEmpty || object.count < 2 {
                buffer.writeBytes(object)
            } else {
                buffer.writeInteger(UInt8(ascii: "{"))
                buffer.writeBytes(contextMember)
                if object[1] != UInt8(ascii: "}") { buffer.writeInteger(UInt8(ascii: ",")) }
                buffer.writeBytes(object[1...])
            }
        }
        if list { buffer.writeInteger(UInt8(ascii: "]")) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: buffer))
    }

    static func withContext(_ value: JSON, _ context: JSON) -> JSON {
        switch value {
        case .object(var o):
            o["@context"] = context
            return .object(o)
        case .array(let items): return .array(items.map { withContext($0, context) })
        default: return value
        }
    }

    static func problem(_ error: NGSILDError) -> Response {
        Response(status: HTTPResponse.Status(code: error.status), headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: error.body.serialized)))
    }

    static func noContent() -> Response { Response(status: .noContent) }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s = s.dropFirst() }
        while s.last?.isWhitespace == true { s = s.dropLast() }
        return String(s)
    }
}
