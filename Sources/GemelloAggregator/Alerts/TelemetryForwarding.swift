import GemelloCore
import GemelloNGSILD
import Logging

/// Sinks of `type: ngsi-ld` forward chosen raw telemetry to the Control Room as NGSI-LD
/// notifications: each is a subscription the aggregator manages
/// (`urn:ngsi-ld:Subscription:gemello-forward-<sink>`, made again at every start from the
/// configuration), delivered by the notification outbox (durable, in order, retried).
extension ContextBroker {
    public func forwardTelemetry(_ sinks: [AlertsConfiguration.Sink], logger: Logger) async throws(AggregatorError) {
        for sink in sinks where sink.kind == .ngsiLD {
            let id = "urn:ngsi-ld:Subscription:gemello-forward-\(sink.name)"
            var notification: [String: JSON] = ["format": "normalized"]
            var endpoint: [String: JSON] = ["uri": .string(sink.url), "accept": "application/json"]
            if let value = sink.headerValue {
                endpoint["receiverInfo"] = [["key": .string(sink.header), "value": .string(value)]]
            }
            notification["endpoint"] = .object(endpoint)
            if !sink.attributes.isEmpty { notification["attributes"] = .array(sink.attributes.map { .string($0) }) }
            var body: [String: JSON] = ["id": .string(id), "type": "Subscription", "entities": [["type": .string(sink.entityType)]],
                                        "notification": .object(notification), "description": .string("Gemello: telemetry forwarded to sink \(sink.name)")]
            if !sink.attributes.isEmpty { body["watchedAttributes"] = .array(sink.attributes.map { .string($0) }) }
            do {
                if (try? subscription(id: id)) != nil { try deleteSubscription(id: id) }
                _ = try await createSubscription(.object(body), context: contexts.smartDataModels,
                                                 contextReference: .string(ContextResolver.smartDataModelsContextURL))
                logger.info("telemetry forwarded through a managed subscription", metadata: ["sink": "\(sink.name)", "subscription": "\(id)"])
            } catch {
                throw AggregatorError(.configuration, "alerts.sinks \(sink.name): cannot make its subscription: \(error)")
            }
        }
    }
}
