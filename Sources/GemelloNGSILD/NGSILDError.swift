import GemelloCore
/// The one error type of the NGSI-LD module: an NGSI-LD ProblemDetails (ETSI GS CIM 009 clause
/// 5.5.2 error types, RFC 7807 body) with the HTTP status of the spec's HTTP binding.
public struct NGSILDError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case invalidRequest = "InvalidRequest"
        case badRequestData = "BadRequestData"
        case alreadyExists = "AlreadyExists"
        case operationNotSupported = "OperationNotSupported"
        case resourceNotFound = "ResourceNotFound"
        case internalError = "InternalError"
        case tooComplexQuery = "TooComplexQuery"
        case tooManyResults = "TooManyResults"
        case ldContextNotAvailable = "LdContextNotAvailable"
        case noMultiTenantSupport = "NoMultiTenantSupport"
        /// HTTP binding: no representation in the `Accept`ed media types (406).
        case notAcceptable = "NotAcceptable"
        /// HTTP binding: a body in a media type other than JSON / JSON-LD (415).
        case unsupportedMediaType = "UnsupportedMediaType"
        /// HTTP binding: a route that exists for other methods (405).
        case methodNotAllowed = "MethodNotAllowed"
        /// HTTP binding (docs/security.md): no valid bearer token (401).
        case unauthorized = "Unauthorized"
        /// HTTP binding: a valid token without the scope the request needs (403).
        case forbidden = "Forbidden"
        /// HTTP binding: a body past `http.max-body` (413).
        case payloadTooLarge = "PayloadTooLarge"
        /// HTTP binding: a query string past `http.max-query` (414).
        case uriTooLong = "URITooLong"
        /// HTTP binding: over the token's rate limit (429, with Retry-After).
        case tooManyRequests = "TooManyRequests"
    }

    public let kind: Kind
    public let title: String
    public let detail: String

    public init(_ kind: Kind, _ detail: String, title: String? = nil) {
        self.kind = kind
        self.detail = detail
        self.title = title ?? Self.defaultTitle(kind)
    }

    public static func badRequest(_ detail: String) -> NGSILDError { NGSILDError(.badRequestData, detail) }
    public static func invalid(_ detail: String) -> NGSILDError { NGSILDError(.invalidRequest, detail) }
    public static func notFound(_ detail: String) -> NGSILDError { NGSILDError(.resourceNotFound, detail) }

    /// The problem type URI. The spec's error types live under `https://uri.etsi.org/ngsi-ld/errors/`;
    /// the HTTP-binding-only kinds use the same base (as Orion-LD does for 406 and 415).
    public var typeURI: String { "https://uri.etsi.org/ngsi-ld/errors/" + kind.rawValue }

    public var status: Int {
        switch kind {
        case .invalidRequest, .badRequestData: 400
        case .alreadyExists: 409
        case .operationNotSupported: 422
        case .resourceNotFound: 404
        case .internalError: 500
        case .tooComplexQuery, .tooManyResults: 403
        case .ldContextNotAvailable: 503
        case .noMultiTenantSupport: 501
        case .notAcceptable: 406
        case .unsupportedMediaType: 415
        case .methodNotAllowed: 405
        case .unauthorized: 401
        case .forbidden: 403
        case .payloadTooLarge: 413
        case .uriTooLong: 414
        case .tooManyRequests: 429
        }
    }

    /// The ProblemDetails body.
    public var body: JSON { ["type": .string(typeURI), "title": .string(title), "detail": .string(detail)] }

    public var description: String { "\(kind.rawValue): \(detail)" }

    static func defaultTitle(_ kind: Kind) -> String {
        switch kind {
        case .invalidRequest: "Invalid request"
        case .badRequestData: "Bad request data"
        case .alreadyExists: "Already exists"
        case .operationNotSupported: "Operation not supported"
        case .resourceNotFound: "Resource not found"
        case .internalError: "Internal error"
        case .tooComplexQuery: "Too complex query"
        case .tooManyResults: "Too many results"
        case .ldContextNotAvailable: "JSON-LD context not available"
        case .noMultiTenantSupport: "No multi-tenant support"
        case .notAcceptable: "Not acceptable"
        case .unsupportedMediaType: "Unsupported media type"
        case .methodNotAllowed: "Method not allowed"
        case .unauthorized: "Unauthorized"
        case .forbidden: "Forbidden"
        case .payloadTooLarge: "Payload too large"
        case .uriTooLong: "URI too long"
        case .tooManyRequests: "Too many requests"
        }
    }
}
