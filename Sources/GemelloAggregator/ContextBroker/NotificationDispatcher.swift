import Foundation
import GemelloCore
import GemelloNGSILD
import GemelloStorage
import Logging
import ServiceLifecycle
import Synchronization

/// Delivers the notification outbox: per subscription in order, oldest first, up to
/// `batch` queued changes in one notification (its `data` array, in order), retried with
/// exponential backoff (0.5 s doubling to 30 s) while the endpoint fails; a notification leaves
/// the outbox only when its endpoint took it (HTTP 2xx, or the MQTT broker's PUBACK).
///
/// Aggregators sharing a store (a share group) share its outbox: a subscription's queue is
/// delivered by one of them at a time, the holder of its lease (`ngsi_leases`: taken with the
/// head rows, renewed with each delivery, given up when the queue is empty or its endpoint
/// fails, and taken over by another once it expires: its holder died).
public final class NotificationDispatcher: Service {
    let manager: SubscriptionManager
    let broker: ContextBroker
    let clock: any WallClock
    let logger: Logger
    let http: HTTPNotifier
    let mqtt: MQTTNotifiers
    /// Changes in one notification at most.
    let batch: Int
    /// Notifications in flight at once (over all subscriptions).
    let limiter: Limiter
    /// Subscriptions that have a worker now.
    let workers = Workers()
    /// Who holds a lease: this aggregator's MQTT client id.
    let owner: String
    /// One of a share group: other aggregators change subscriptions in the same store.
    let shared: Bool
    /// How long a lease lasts unless renewed (longer than one delivery can take).
    static let leaseMilliseconds: Int64 = 60_000

    init(manager: SubscriptionManager, broker: ContextBroker, clock: any WallClock, logger: Logger, owner: String,
         shared: Bool = false, batch: Int = 100, parallel: Int = 32, mqttCAFile: String? = nil) {
        self.owner = owner
        self.shared = shared
        self.manager = manager
        self.broker = broker
        self.clock = clock
        self.logger = logger
        self.batch = batch
        self.limiter = Limiter(parallel)
        http = HTTPNotifier(timeout: 10)
        mqtt = MQTTNotifiers(logger: logger, caFile: mqttCAFile)
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            var lastPeriodic: Int64 = 0, lastFlush: Int64 = 0
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let now = clock.nowMilliseconds()
                if now - lastPeriodic >= 200 {
                    enqueuePeriodic(now: now)
                    manager.metrics?.outboxPending.record(manager.outboxCount.load(ordering: .relaxed))
                    lastPeriodic = now
                }
                // Status counters are written once a second, not per delivery; in a share group the
                // subscriptions the other members changed are read then too.
                if now - lastFlush >= 1000 {
                    if shared { await manager.reload() } else { manager.flushStatus() }
                    lastFlush = now
                }
                // One worker per subscription with due notifications: a slow endpoint never holds up another.
                for id in dueSubscriptions(now: now) where workers.start(id) {
                    group.addTask { await self.work(id) }
                }
                await manager.signal.wait(upTo: .milliseconds(100))
            }
            manager.signal.notify()
            await group.waitForAll()
        }
        mqtt.stop()
        manager.flushStatus()
    }

    /// Subscriptions without a worker whose oldest queued notification is due: one index seek
    /// each (a GROUP BY over the whole outbox would grow with every backlog).
    func dueSubscriptions(now: Int64) -> [String] {
        let idle = manager.ids().filter { !workers.isActive($0) }
        guard !idle.isEmpty, manager.outboxCount.load(ordering: .relaxed) > 0 else { return [] }
        do {
            return try manager.documents.transaction { [owner] db -> [String] in
                var due: [String] = []
                for id in idle {
                    // Not while another aggregator of the share group holds its lease.
                    let head = try db.query("""
                        SELECT next_attempt FROM ngsi_outbox WHERE subscription = ?1 AND NOT EXISTS (
                            SELECT 1 FROM ngsi_leases WHERE subscription = ?1 AND owner <> ?2 AND until >= ?3)
                        ORDER BY seq LIMIT 1
                        """, [.text(id), .text(owner), .integer(now)])
                    if try head.step(), head.int64(0) <= now { due.append(id) }
                }
                return due
            }
        } catch {
            logger.error("cannot read the notification outbox", metadata: ["error": "\(error)"])
            return []
        }
    }

    /// Delivers one subscription's queue until it is empty or its endpoint fails.
    func work(_ id: String) async {
        defer { workers.finish(id) }
        var next = takeHead(id, now: clock.nowMilliseconds())
        while let head = next, !Task.isCancelled, !Task.isShuttingDownGracefully {
            await limiter.acquire()
            let ok = await deliver(head)
            limiter.release()
            // Settling this notification and taking the next one share one transaction.
            next = settle(head, ok, thenTake: ok ? id : nil)
            if !ok { return }  // retried by the main loop when due
        }
    }

    /// The oldest queued notifications of one subscription (up to `batch`), if the oldest is due.
    func takeHead(_ id: String, now: Int64) -> Head? {
        try? manager.documents.transaction { [owner, batch] db -> Head? in try Self.head(id, now: now, batch: batch, owner: owner, in: db) }
    }

    /// Takes (or renews) the lease of subscription `id` for `owner`; false when another
    /// aggregator holds it.
    /// `table`: `ngsi_leases` (subscriptions) or `alert_leases` (alert sinks), both `(subscription, owner, until)`.
    static func lease(_ id: String, owner: String, now: Int64, in db: any StoreConnection, table: String = "ngsi_leases") throws -> Bool {
        try db.run("""
            INSERT INTO \(table) (subscription, owner, until) VALUES (?, ?, ?)
            ON CONFLICT (subscription) DO UPDATE SET owner = excluded.owner, until = excluded.until
            WHERE \(table).owner = excluded.owner OR \(table).until < ?
            """, [.text(id), .text(owner), .integer(now + leaseMilliseconds), .integer(now)]) > 0
    }

    static func release(_ id: String, owner: String, in db: any StoreConnection, table: String = "ngsi_leases") throws {
        try db.send("DELETE FROM \(table) WHERE subscription = ? AND owner = ?", [.text(id), .text(owner)])
    }

    /// The head rows of subscription `id` if they are due and this aggregator holds (or now
    /// takes) its lease; otherwise nil (and no lease kept).
    static func head(_ id: String, now: Int64, batch: Int, owner: String, in db: any StoreConnection) throws -> Head? {
        guard try lease(id, owner: owner, now: now, in: db) else { return nil }
        guard let head = try head(id, now: now, batch: batch, in: db) else {
            try release(id, owner: owner, in: db)
            return nil
        }
        return head
    }

    static func head(_ id: String, now: Int64, batch: Int, in db: any StoreConnection) throws -> Head? {
            let rows = try db.query("SELECT seq, data, attempts, next_attempt FROM ngsi_outbox WHERE subscription = ? ORDER BY seq LIMIT ?", [.text(id), .integer(Int64(batch))])
            var taken: [(seq: Int64, data: String)] = []
            var attempts: Int64 = 0
            while try rows.step() {
                if taken.isEmpty {
                    guard rows.int64(3) <= now else { return nil }
                    attempts = rows.int64(2)
                }
                taken.append((rows.int64(0), rows.text(1)))
            }
            return taken.isEmpty ? nil : Head(subscription: id, rows: taken, attempts: attempts)
    }

    /// Deletes a delivered notification's rows (or reschedules a failed one) and, in the same
    /// transaction, takes the subscription's next due rows.
    func settle(_ head: Head, _ ok: Bool, thenTake id: String?) -> Head? {
        let now = clock.nowMilliseconds()
        var next: Head?
        do {
            next = try manager.documents.transaction { [owner, batch] db -> Head? in
                try Self.record(head, ok, now: now, in: db)
                guard let id else {  // failed: the retry waits its backoff, the lease is given up
                    try Self.release(head.subscription, owner: owner, in: db)
                    return nil
                }
                return try Self.head(id, now: now, batch: batch, owner: owner, in: db)
            }
        } catch {
            logger.error("cannot update the notification outbox", metadata: ["error": "\(error)"])
            return nil
        }
        account(head, ok, now: now)
        return next
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

    static func record(_ head: Head, _ ok: Bool, now: Int64, in db: any StoreConnection) throws {
        guard let last = head.rows.last?.seq, let first = head.rows.first?.seq else { return }
        if ok {
            try db.run("DELETE FROM ngsi_outbox WHERE subscription = ? AND seq <= ?", [.text(head.subscription), .integer(last)])
        } else {
            let backoff = min(30_000, 500 << min(Int(head.attempts), 6))
            try db.run("UPDATE ngsi_outbox SET attempts = attempts + 1, next_attempt = ? WHERE seq = ?", [.integer(now + Int64(backoff)), .integer(first)])
        }
    }

    func account(_ head: Head, _ ok: Bool, now: Int64) {
        manager.recordDelivery(head.subscription, count: ok ? head.rows.count : 0, success: ok, at: now)
        if ok {
            manager.outboxCount.subtract(head.rows.count, ordering: .relaxed)
            manager.metrics?.notificationsSent.increment(by: head.rows.count)
        } else {
            manager.metrics?.notificationsFailed.increment()
        }
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

/// At most N holders at once (notifications in flight).
final class Limiter: Sendable {
    private let state: Mutex<(free: Int, waiting: [CheckedContinuation<Void, Never>])>
    init(_ n: Int) { state = Mutex((n, [])) }

    func acquire() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.free > 0 { s.free -= 1; return true }
                s.waiting.append(c)
                return false
            }
            if resumeNow { c.resume() }
        }
    }

    func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiting.isEmpty { s.free += 1; return nil }
            return s.waiting.removeFirst()
        }
        next?.resume()
    }
}

/// The subscriptions that have a delivery worker.
final class Workers: Sendable {
    private let active = Mutex<Set<String>>([])
    /// Claims `id`; false when it already has a worker.
    func start(_ id: String) -> Bool { active.withLock { $0.insert(id).inserted } }
    func finish(_ id: String) { active.withLock { _ = $0.remove(id) } }
    func isActive(_ id: String) -> Bool { active.withLock { $0.contains(id) } }
}

/// A wake-up that can be waited for with a time limit (the dispatcher sleeps on it between rounds).
final class WakeSignal: Sendable {
    private let state = Mutex<(pending: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func notify() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            defer { s.waiter = nil }
            if s.waiter == nil { s.pending = true }
            return s.waiter
        }
        waiter?.resume()
    }

    /// Returns when notified (or already notified since the last wait), or after `limit`.
    func wait(upTo limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await Task.sleep(for: limit)
                    self.notify()
                } catch {}  // cancelled: woken already
            }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.pending { s.pending = false; return true }
                    s.waiter = c
                    return false
                }
                if resumeNow { c.resume() }
            }
            group.cancelAll()
        }
    }
}
