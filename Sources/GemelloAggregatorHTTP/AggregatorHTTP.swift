import Foundation
import GemelloAggregator
import GemelloCore
import GemelloNGSILD
import Hummingbird
import Logging
import Prometheus

/// The aggregator's HTTP API: health, fleet, and the twin as NGSI-LD entities.
/// The only module that imports Hummingbird.
///
/// - `GET /health`: ``GemelloCore/AggregatorHealth``
/// - `GET /fleet`: `[FleetAgentSummary]`; `GET /fleet/{agent}`: ``GemelloCore/FleetAgentDetail``
/// - `GET /metrics`: Prometheus text format (when a registry is given)
/// - `GET /` and `/dashboard`: the fleet dashboard (one self-contained HTML page)
/// - `GET /alerts`, `GET /alerts/{id}`, `POST /alerts/{id}/ack` (`AggregatorHTTP+Alerts.swift`)
/// - `/ngsi-ld/v1/...`: the NGSI-LD API (`AggregatorHTTP+NGSILD.swift`, docs/ngsi-ld.md)
public enum AggregatorHTTP {
    /// Builds the HTTP application (a `Service`). `onListening` receives the bound port
    /// (useful with port 0 in tests).
    /// Every route is behind ``AccessMiddleware`` (tokens, scopes, rate limit, size caps: `access`,
    /// open when nil); `http.tls-*` makes it HTTPS with HTTP/2.
    public static func application(
        store: TwinStore, broker: ContextBroker, counters: IngestCounters, configuration: AggregatorConfiguration,
        metrics: PrometheusCollectorRegistry? = nil, alerts: AlertEngine? = nil, access: APIAccess? = nil,
        clock: any WallClock = SystemWallClock(), logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let router = Router()
        if let access { router.add(middleware: AccessMiddleware(access: access, logger: logger)) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]

        router.get("/health") { _, _ -> Response in
            // A store that cannot be read is reported as such, not as an empty "ok" twin.
            let totals = try? store.totals()
            let healthy = totals != nil && counters.brokerConnected.load(ordering: .relaxed)
            let health = AggregatorHealth(
                status: healthy ? "ok" : "degraded",
                version: GemelloVersion.current, brokerConnected: counters.brokerConnected.load(ordering: .relaxed),
                uptimeSeconds: Double((ContinuousClock.now - counters.startedAt).components.seconds),
                batchesIngested: totals?.batches ?? 0, readingsIngested: totals?.readings ?? 0,
                duplicateBatches: totals?.duplicates ?? 0, rejectedBatches: totals?.rejected ?? 0, agents: totals?.agents ?? 0)
            return json(try encoder.encode(health), contentType: "application/json")
        }
        addFleetRoutes(to: router, store: store, counters: counters, configuration: configuration, metrics: metrics,
                       clock: clock, encoder: encoder)
        addNGSILDRoutes(to: router, broker: broker)
        addAlertRoutes(to: router, store: store, alerts: alerts)
        return Application(
            router: router,
            server: try serverBuilder(configuration),
            configuration: .init(address: .hostname(configuration.httpHost, port: configuration.httpPort), serverName: "gemello-aggregator"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.httpPort) },
            logger: logger)
    }

    static func json(_ data: Data, contentType: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension AggregatorError: HTTPResponseError {
    public var status: HTTPResponse.Status { .internalServerError }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = Data(NGSILDError(.internalError, description).body.serialized.utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
