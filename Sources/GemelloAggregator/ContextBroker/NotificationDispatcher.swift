import Foundation
import GemelloCore
import GemelloNGSILD
import GemelloSQLite
import Logging
import ServiceLifecycle

/// Delivers the notification outbox: per subscription in order, oldest first, up to
/// `batch` queued changes in one notification (its `data` array, in order), retried with
/// exponential backoff (0.5 s doubling to 30 s) while the endpoint fails; a notification leaves
/// the outbox only when its endpoint took it (HTTP 2xx, or the MQTT broker's PUBACK).
public final class NotificationDispatcher: Service {
    let manager: SubscriptionManager
    let broker: ContextBroker
    let clock: any WallClock
    let logger: Logger
    let http: HTTPNotifier
    let mqtt: MQTTNotifiers
    /// Changes in one notification at most.
    let batch: Int
    /// Subscriptions delivered to at once.
    let parallel: Int

    init(manager: SubscriptionManager, broker: ContextBroker, clock: any WallClock, logger: Logger, batch: Int = 100, parallel: Int = 32) {
        self.manager = manager
        self.broker = broker
        self.clock = clock
        self.logger = logger
        self.batch = batch
        self.parallel = parallel
        http = HTTPNotifier(timeout: 10)
        mqtt = MQTTNotifiers(logger: logger)
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [manager] in
                // Turns wake-ups into a flag the loop polls (AsyncStream has no timed wait).
                for await _ in manager.wakeups { if Task.isCancelled { break } }
            }
            var idle = 0
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let now = clock.nowMilliseconds()
                enqueuePeriodic(now: now)
                let delivered = await pass(now: now)
                manager.flushStatus()
                manager.metrics?.outboxPending.record(manager.outboxCount.load(ordering: .relaxed))
                if delivered == 0 {
                    idle += 1
                    try? await Task.sleep(for: .milliseconds(idle > 10 ? 50 : 5))
                } else {
                    idle = 0
                }
            }
            group.cancelAll()
            manager.wake.finish()
        }
        mqtt.stop()
        manager.flushStatus()
    }

    func enqueuePeriodic(now: Int64) {
        let pending = manager.periodic(now: now) { matcher in
            var query = EntityQuery()
            query.limit = broker.limits.maxLimit
            let found = (try? broker.query(query, unbounded: true).entities) ?? []
            return found.filter { matcher.selects($0) && matcher.filters($0) }
        }
        guard !pending.isEmpty else { return }
        do { try manager.documents.transaction { db in try manager.enqueue(pending, in: db) } } catch {
            logger.warning("could not queue periodic notifications", metadata: ["error": "\(error)"])
        }
    }

    struct Head: Sendable {
        var subscription: String
        var rows: [(seq: Int64, data: String)]
        var attempts: Int64
    }

    /// One pass over the subscriptions with due notifications; returns how many were delivered.
    func pass(now: Int64) async -> Int {
        let heads: [Head]
        do {
            heads = try manager.documents.transaction { db -> [Head] in
                let due = try db.statement("""
                    SELECT subscription, attempts FROM ngsi_outbox
                    WHERE seq IN (SELECT min(seq) FROM ngsi_outbox GROUP BY subscription) AND next_attempt <= ?
                    """)
                try due.bind([.integer(now)])
                var list: [(String, Int64)] = []
                while try due.step() { list.append((due.text(0), due.int64(1))) }
                let rows = try db.statement("SELECT seq, data FROM ngsi_outbox WHERE subscription = ? ORDER BY seq LIMIT ?")
                var out: [Head] = []
                for (id, attempts) in list {
                    try rows.bind([.text(id), .integer(Int64(batch))])
                    var taken: [(seq: Int64, data: String)] = []
                    while try rows.step() { taken.append((rows.int64(0), rows.text(1))) }
                    rows.reset()
                    out.append(Head(subscription: id, rows: taken, attempts: attempts))
                }
                return out
            }
        } catch {
            logger.error("cannot read the notification outbox", metadata: ["error": "\(error)"])
            return 0
        }
        guard !heads.isEmpty else { return 0 }
        var delivered = 0
        for start in stride(from: 0, to: heads.count, by: parallel) {
            let slice = Array(heads[start..<min(heads.count, start + parallel)])
            let results = await withTaskGroup(of: (Head, Bool).self) { group -> [(Head, Bool)] in
                for head in slice { group.addTask { (head, await self.deliver(head)) } }
                var out: [(Head, Bool)] = []
                for await r in group { out.append(r) }
                return out
            }
            delivered += settle(results)
        }
        return delivered
    }

    /// Deletes what was delivered, reschedules what failed.
    func settle(_ results: [(Head, Bool)]) -> Int {
        let now = clock.nowMilliseconds()
        var delivered = 0
        do {
            try manager.documents.transaction { db in
                for (head, ok) in results {
                    guard let last = head.rows.last?.seq, let first = head.rows.first?.seq else { continue }
                    if ok {
                        try db.statement("DELETE FROM ngsi_outbox WHERE subscription = ? AND seq <= ?").run([.text(head.subscription), .integer(last)])
                    } else {
                        let backoff = min(30_000, 500 << min(Int(head.attempts), 6))
                        try db.statement("UPDATE ngsi_outbox SET attempts = attempts + 1, next_attempt = ? WHERE seq = ?")
                            .run([.integer(now + Int64(backoff)), .integer(first)])
                    }
                }
            }
        } catch {
            logger.error("cannot update the notification outbox", metadata: ["error": "\(error)"])
            return 0
        }
        for (head, ok) in results {
            manager.recordDelivery(head.subscription, count: ok ? head.rows.count : 0, success: ok, at: now)
            if ok {
                delivered += head.rows.count
                manager.outboxCount.subtract(head.rows.count, ordering: .relaxed)
                manager.metrics?.notificationsSent.increment(by: head.rows.count)
            } else {
                manager.metrics?.notificationsFailed.increment()
            }
        }
        return delivered
    }

    /// Sends one notification holding the head rows of a subscription.
    func deliver(_ head: Head) async -> Bool {
        guard let subscription = manager.subscription(head.subscription) else { return true }  // deleted meanwhile
        let now = clock.nowMilliseconds()
        var text = "{\"data\":[" + head.rows.map(\.data).joined(separator: ",") + "]"
        text += ",\"id\":" + JSON.string("urn:ngsi-ld:Notification:" + UUID().uuidString.lowercased()).serialized
        text += ",\"notifiedAt\":\"" + DateTime.string(milliseconds: now) + "\""
        text += ",\"subscriptionId\":" + JSON.string(subscription.id).serialized
        text += ",\"type\":\"Notification\""
        var headers: [(String, String)] = subscription.endpoint.receiverInfo.map { ($0.key, $0.value) }
        let contextValue = subscription.context ?? .string(ContextResolver.coreContextURL)
        if subscription.endpoint.accept == "application/ld+json" {
            text += ",\"@context\":" + contextValue.serialized
            headers.append(("Content-Type", "application/ld+json"))
        } else {
            headers.append(("Content-Type", "application/json"))
            if case .string(let url) = contextValue {
                headers.append(("Link", "<\(url)>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""))
            }
        }
        text += "}"
        let uri = subscription.endpoint.uri
        do {
            if uri.hasPrefix("mqtt://") || uri.hasPrefix("mqtts://") {
                try await mqtt.publish(text, headers: headers, endpoint: subscription.endpoint)
            } else {
                try await http.post(Array(text.utf8), headers: headers, to: uri)
            }
            return true
        } catch {
            if head.attempts == 0 || head.attempts % 10 == 0 {
                logger.warning("notification not delivered; it stays queued and is retried", metadata: [
                    "subscription": "\(subscription.id)", "endpoint": "\(uri)", "queued": "\(head.rows.count)", "error": "\(error)"])
            }
            return false
        }
    }
}
