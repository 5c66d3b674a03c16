import GemelloAggregator
import GemelloNGSILD
import Hummingbird
import HummingbirdAuth
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOHTTPTypes

/// Applies ``APIAccess`` to every request before its route: the bearer token (read with
/// HummingbirdAuth) and its scope, the rate limit, and the size caps. Refusals are NGSI-LD
/// ProblemDetails: 401 (with `WWW-Authenticate: Bearer`), 403, 413, 414, 429 (with `Retry-After`).
struct AccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let access: APIAccess
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let length = request.headers[.contentLength].flatMap { Int($0) }
        let decision = access.decide(method: request.method.rawValue, path: request.uri.path, query: request.uri.query,
                                     bearer: request.headers.bearer?.token, hasAuthorization: request.headers[.authorization] != nil,
                                     contentLength: length)
        switch decision {
        case .allow:
            guard length == nil, [.post, .put, .patch].contains(request.method) else { return try await next(request, context) }
            // A body without a Content-Length (chunked) is read here, up to the cap, before any route sees it.
            var request = request
            do { _ = try await request.collectBody(upTo: access.policy.maxBody) } catch {
                let problem = NGSILDError(.payloadTooLarge, "the body is larger than \(access.policy.maxBody) bytes (http.max-body), or could not be read")
                return Response(status: .init(code: problem.status), headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(string: problem.body.serialized)))
            }
            return try await next(request, context)
        case .deny(let problem, let retryAfter):
            var headers: HTTPFields = [.contentType: "application/json"]
            if problem.kind == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"gemello\"" }
            if let retryAfter { headers[.retryAfter] = "\(retryAfter)" }
            if problem.kind != .tooManyRequests {
                logger.notice("request refused", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)",
                                                            "status": "\(problem.status)", "reason": "\(problem.detail)"])
            }
            return Response(status: .init(code: problem.status), headers: headers,
                            body: .init(byteBuffer: ByteBuffer(string: problem.body.serialized)))
        }
    }
}

extension AggregatorHTTP {
    /// The server: HTTP/1.1, or with `http.tls-*` HTTPS offering HTTP/2 and HTTP/1.1 by ALPN; in
    /// both a request must arrive whole within `http.request-timeout` (slow clients are cut off).
    static func serverBuilder(_ configuration: AggregatorConfiguration) throws -> HTTPServerBuilder {
        let timeout = TimeAmount.nanoseconds(Int64(configuration.httpRequestTimeout.components.seconds) * 1_000_000_000
                                             + configuration.httpRequestTimeout.components.attoseconds / 1_000_000_000)
        let http1 = HTTP1Channel.Configuration(additionalChannelHandlers: [RequestDeadlineHandler(timeout: timeout)], idleTimeout: timeout * 4)
        guard let tls = configuration.httpTLS else { return .http1(configuration: http1) }
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(tls.certFile)
            key = try NIOSSLPrivateKey(file: tls.keyFile, format: .pem)
        } catch {
            throw AggregatorError(.configuration, "http.tls-cert-file / http.tls-key-file: cannot load \(tls.certFile) and \(tls.keyFile): \(error). "
                                  + "Fix: PEM files readable by the aggregator's user (gemello pki init makes broker.crt/.key you can reuse)")
        }
        var tlsConfiguration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tlsConfiguration.minimumTLSVersion = .tlsv12
        return try .http2Upgrade(tlsConfiguration: tlsConfiguration,
                                 configuration: .init(idleTimeout: configuration.httpRequestTimeout * 4, streamConfiguration: http1))
    }
}

/// Closes a connection whose next request has not arrived whole (head and body) within
/// `timeout` of the connection opening or the previous response: a slowloris client dripping
/// header bytes holds a connection for at most that long.
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) {
            deadline?.cancel()
            deadline = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { arm(context) }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }
}
