import Foundation
import GemelloAggregator
import GemelloCore
import GemelloNGSILD
import Hummingbird
import Prometheus

/// The fleet routes: `/fleet`, `/fleet/{agent}`, `/metrics`, and the dashboard page.
extension AggregatorHTTP {
    static func addFleetRoutes(to router: Router<BasicRequestContext>, store: TwinStore, counters: IngestCounters,
                               configuration: AggregatorConfiguration, metrics: PrometheusCollectorRegistry?,
                               clock: any WallClock, encoder: JSONEncoder) {
        router.get("/fleet") { _, _ -> Response in
            let now = clock.nowMilliseconds()
            let fleet = try store.fleet(now: now, policy: configuration.fleet, hearing: counters.hearing(now: now))
            return json(try encoder.encode(fleet), contentType: "application/json")
        }
        router.get("/fleet/:agent") { request, context -> Response in
            let id = pathParameter(context, "agent")
            let limit = request.uri.queryParameters.get("health").flatMap { Int($0) } ?? 360
            let now = clock.nowMilliseconds()
            guard let detail = try store.agentDetail(id: id, now: now, policy: configuration.fleet,
                                                     hearing: counters.hearing(now: now), healthLimit: max(0, min(limit, 100_000))) else {
                let problem = NGSILDError(.resourceNotFound, "no agent with id \(id) has reported", title: "Agent not found")
                return json(Data(problem.body.serialized.utf8), contentType: "application/json", status: .notFound)
            }
            return json(try encoder.encode(detail), contentType: "application/json")
        }
        if let metrics {
            router.get("/metrics") { _, _ -> Response in
                Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                         body: .init(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer())))
            }
        }
        let page = ByteBuffer(string: DashboardPage.html)
        for path in ["/", "/dashboard"] {
            router.get(RouterPath(path)) { _, _ -> Response in
                Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: page))
            }
        }
    }
}
