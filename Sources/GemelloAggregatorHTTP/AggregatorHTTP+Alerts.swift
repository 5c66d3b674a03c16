import Foundation
import GemelloAggregator
import GemelloCore
import GemelloNGSILD
import GemelloRules
import Hummingbird

/// The alert routes (docs/alerts.md):
/// - `GET /alerts`: open alerts, newest first (`?all=true`: the cleared ones kept too; `?limit=N`)
/// - `GET /alerts/{id}`: one alert
/// - `POST /alerts/{id}/ack`: an operator acknowledges it (`?by=name`, or a JSON body `{"by": "name"}`);
///   it stays open until its condition clears, and every sink gets an Update saying who acknowledged it
extension AggregatorHTTP {
    static func addAlertRoutes(to router: Router<BasicRequestContext>, store: TwinStore, alerts: AlertEngine?) {
        @Sendable func body(_ list: [Alert]) -> Response {
            let rules = Dictionary((alerts?.rules ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            let text = "[" + list.map { $0.json(rule: rules[$0.rule]) }.joined(separator: ",") + "]"
            return json(Data(text.utf8), contentType: "application/json")
        }
        @Sendable func notFound(_ id: String) -> Response {
            let problem = NGSILDError(.resourceNotFound, "no alert with id \(id)", title: "Alert not found")
            return json(Data(problem.body.serialized.utf8), contentType: "application/json", status: .notFound)
        }
        router.get("/alerts") { request, _ -> Response in
            let all = request.uri.queryParameters.get("all") == "true"
            let limit = max(1, min(request.uri.queryParameters.get("limit").flatMap { Int($0) } ?? 1000, 100_000))
            return body(try store.alerts(includeCleared: all, limit: limit))
        }
        router.get("/alerts/:id") { _, context -> Response in
            let id = pathParameter(context, "id")
            guard let alert = try store.alert(id: id) else { return notFound(id) }
            return body([alert])
        }
        router.post("/alerts/:id/ack") { request, context -> Response in
            let id = pathParameter(context, "id")
            var who: String? = request.uri.queryParameters.get("by").map { String($0) }
            if who == nil {
                let buffer = try await request.body.collect(upTo: 64 * 1024)
                if buffer.readableBytes > 0, let parsed = try? JSON.parse(Array(buffer.readableBytesView)),
                   case .object(let fields) = parsed, case .string(let by)? = fields["by"] {
                    who = by
                }
            }
            guard let who, !who.isEmpty, who.utf8.count <= 200 else {
                let problem = NGSILDError(.badRequestData, "say who acknowledges: ?by=name or a JSON body {\"by\": \"name\"}",
                                          title: "Who acknowledges is missing")
                return json(Data(problem.body.serialized.utf8), contentType: "application/json", status: .badRequest)
            }
            guard let alerts, let alert = try alerts.acknowledge(id, by: who) else { return notFound(id) }
            return body([alert])
        }
    }
}
