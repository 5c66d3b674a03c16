import GemelloCore
import Foundation
import GemelloNGSILD

/// Subscription operations (clause 5.8) for the HTTP layer.
extension ContextBroker {
    private var manager: SubscriptionManager {
        get throws(NGSILDError) {
            guard let subscriptions else { throw NGSILDError(.internalError, "subscriptions are not set up") }
            return subscriptions
        }
    }

    /// POST /subscriptions: returns the new subscription's id.
    public func createSubscription(_ body: JSON, context: LDContext, contextReference: JSON?) async throws(NGSILDError) -> String {
        let generated = "urn:ngsi-ld:Subscription:" + UUID().uuidString.lowercased()
        let subscription = try Subscription.parse(body, context: context, contextReference: contextReference, id: generated, now: now)
        if let expiresAt = subscription.expiresAt, expiresAt <= now {
            throw .badRequest("expiresAt \(DateTime.string(milliseconds: expiresAt)) is in the past")
        }
        try await manager.put(subscription, replace: false)
        return subscription.id
    }

    public func subscription(id: String) throws(NGSILDError) -> Subscription {
        guard let s = try manager.subscription(id) else { throw .notFound("no subscription with id \(id)") }
        return s
    }

    public func allSubscriptions() throws(NGSILDError) -> [Subscription] { try manager.all() }

    /// PATCH /subscriptions/{id} (clause 5.8.2): the members given replace those of the
    /// subscription (`notification` and its `endpoint` member by member); status counters stay.
    public func updateSubscription(id: String, patch: JSON, context: LDContext, contextReference: JSON?) async throws(NGSILDError) {
        let current = try subscription(id: id)
        guard case .object(let changes) = patch else { throw .badRequest("the body must be a JSON object") }
        if let pid = changes["id"]?.stringValue, pid != id { throw .badRequest("the body's id \(pid) is not \(id)") }
        var merged = current.rendered(context, now: now)
        for (key, value) in changes where key != "@context" {
            if key == "notification", case .object(let n) = value, case .object(var existing)? = merged["notification"] {
                for (nk, nv) in n {
                    if nk == "endpoint", case .object(let e) = nv, case .object(var ee)? = existing["endpoint"] {
                        for (ek, ev) in e { ee[ek] = ev }
                        existing["endpoint"] = .object(ee)
                    } else {
                        existing[nk] = nv
                    }
                }
                merged["notification"] = .object(existing)
            } else {
                merged[key] = value.isNull ? nil : value
            }
        }
        var next = try Subscription.parse(merged, context: context, contextReference: contextReference ?? current.context, id: id, now: now)
        next.createdAt = current.createdAt
        next.modifiedAt = now
        next.timesSent = current.timesSent
        next.timesFailed = current.timesFailed
        next.lastNotification = current.lastNotification
        next.lastSuccess = current.lastSuccess
        next.lastFailure = current.lastFailure
        next.dropped = current.dropped
        try await manager.put(next, replace: true)
    }

    public func deleteSubscription(id: String) throws(NGSILDError) { try manager.delete(id) }
}
