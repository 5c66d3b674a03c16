import GemelloCore
import GemelloNGSILD
import GemelloStorage
import Synchronization

/// The subscriptions (clause 5.8) and their notification outbox: which changes notify whom.
///
/// A change's notifications are written to `ngsi_outbox` in the same store transaction as the
/// change itself (a client write, or an ingested batch), so a notification is never lost between
/// a commit and its delivery; ``NotificationDispatcher`` delivers them in order per subscription
/// and deletes each once its endpoint took it. The outbox is bounded (`subscriptions.outbox-limit`):
/// past it the oldest notifications are dropped, counted per subscription and in `/metrics`.
public final class SubscriptionManager: Sendable {
    static let schema = """
        CREATE TABLE IF NOT EXISTS ngsi_subscriptions (id TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS ngsi_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, subscription TEXT NOT NULL,
            created INTEGER NOT NULL, data TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX IF NOT EXISTS ngsi_outbox_by_subscription ON ngsi_outbox (subscription, seq);
        CREATE TABLE IF NOT EXISTS ngsi_leases (subscription TEXT PRIMARY KEY, owner TEXT NOT NULL, until INTEGER NOT NULL) WITHOUT ROWID;
        """

    struct Entry {
        var subscription: Subscription
        var matcher: SubscriptionMatcher
        /// Status counters changed since they were last written.
        var dirty = false
    }

    /// One notification waiting in the outbox.
    struct Pending: Sendable {
        var subscription: String
        var created: Int64
        /// The rendered entity (one change).
        var data: String
    }

    private let entries = Mutex<[String: Entry]>([:])
    /// Each subscription's document as last read from or written to the store (what
    /// ``reload()`` compares with to find the changes other aggregators made).
    private let storedDocs = Mutex<[String: String]>([:])
    /// Expanded entity type → subscriptions that select it; `anyType`: those that may select any.
    private let byType = Mutex<(types: [String: Set<String>], anyType: Set<String>)>(([:], []))
    /// Rows in the outbox (kept in step with inserts and deletes).
    let outboxCount = Atomic<Int>(0)
    let outboxLimit: Int
    let documents: EntityDocuments
    let contexts: ContextResolver
    let metrics: AggregatorMetrics?
    let dropped = Atomic<Int>(0)
    /// What the dispatcher waits on between rounds.
    let signal = WakeSignal()

    init(documents: EntityDocuments, contexts: ContextResolver, outboxLimit: Int, metrics: AggregatorMetrics?) async throws(AggregatorError) {
        self.documents = documents
        self.contexts = contexts
        self.outboxLimit = outboxLimit
        self.metrics = metrics
        let (docs, count) = try documents.transaction { db -> ([String], Int) in
            let rows = try db.query("SELECT doc FROM ngsi_subscriptions")
            var docs: [String] = []
            while try rows.step() { docs.append(rows.text(0)) }
            return (docs, Int(try db.scalarInt("SELECT count(*) FROM ngsi_outbox") ?? 0))
        }
        outboxCount.store(count, ordering: .relaxed)
        var loaded: [String: Entry] = [:]
        var texts: [String: String] = [:]
        for doc in docs {
            guard let entry = await Self.entry(doc, contexts: contexts) else { continue }
            loaded[entry.subscription.id] = entry
            texts[entry.subscription.id] = doc
        }
        entries.withLock { $0 = loaded }
        storedDocs.withLock { $0 = texts }
        for (id, entry) in loaded { index(id, entry.matcher) }
    }

    /// A stored subscription document as an entry (nil: unreadable, or its context cannot be had).
    private static func entry(_ doc: String, contexts: ContextResolver) async -> Entry? {
        guard let json = try? JSON.parse(doc), let subscription = Subscription(stored: json) else { return nil }
        guard let context = try? await contexts.resolve(subscription.context),
              let matcher = try? SubscriptionMatcher(subscription, context: context) else { return nil }
        return Entry(subscription: subscription, matcher: matcher)
    }

    /// Takes in what other aggregators sharing the store changed: subscriptions created, replaced
    /// or deleted there, and the status counters of those they deliver. This aggregator's own
    /// unsaved counters are written first.
    ///
    /// What this aggregator knew is taken *before* the store is read: a subscription created here
    /// while the read runs is then neither in `known` nor in the read, and is left alone. (Taken
    /// after, it was in `known` but not in the read, and was dropped from memory until the next
    /// reload: the changes in between notified nobody.)
    func reload() async {
        flushStatus()
        let known = storedDocs.withLock { $0 }
        guard let docs = try? documents.transaction({ db -> [String: String] in
            let rows = try db.query("SELECT id, doc FROM ngsi_subscriptions")
            var out: [String: String] = [:]
            while try rows.step() { out[rows.text(0)] = rows.text(1) }
            return out
        }) else { return }
        for (id, doc) in docs where known[id] != doc {
            guard let entry = await Self.entry(doc, contexts: contexts) else { continue }
            entries.withLock { $0[id] = entry }
            index(id, entry.matcher)
        }
        for id in known.keys where docs[id] == nil {
            entries.withLock { $0[id] = nil }
            index(id, nil)
        }
        storedDocs.withLock { $0 = docs }
    }

    private func index(_ id: String, _ matcher: SubscriptionMatcher?) {
        byType.withLock { t in
            for key in t.types.keys { t.types[key]?.remove(id) }
            t.anyType.remove(id)
            guard let matcher else { return }
            if let types = matcher.selectedTypes {
                for type in types { t.types[type, default: []].insert(id) }
            } else {
                t.anyType.insert(id)
            }
        }
    }

    /// Subscriptions that may select an entity of these types.
    private func candidates(_ types: [String]) -> Set<String> {
        byType.withLock { t in
            var out = t.anyType
            for type in types { if let ids = t.types[type] { out.formUnion(ids) } }
            return out
        }
    }

    // MARK: - Subscriptions

    public var count: Int { entries.withLock { $0.count } }
    /// Notifications waiting in the outbox.
    public var queued: Int { outboxCount.load(ordering: .relaxed) }
    /// Notifications dropped since start (outbox full, or a failed queueing).
    public var droppedTotal: Int { dropped.load(ordering: .relaxed) }

    func all() -> [Subscription] {
        entries.withLock { e in e.values.map(\.subscription).sorted { $0.createdAt != $1.createdAt ? $0.createdAt < $1.createdAt : $0.id < $1.id } }
    }

    func subscription(_ id: String) -> Subscription? { entries.withLock { $0[id]?.subscription } }

    /// The ids of every subscription.
    func ids() -> [String] { entries.withLock { Array($0.keys) } }

    /// Creates or replaces (`replace`) a subscription, durably.
    func put(_ subscription: Subscription, replace: Bool) async throws(NGSILDError) {
        let context = try await contexts.resolve(subscription.context)
        let matcher = try SubscriptionMatcher(subscription, context: context)
        let exists = entries.withLock { $0[subscription.id] != nil }
        if exists && !replace { throw NGSILDError(.alreadyExists, "subscription \(subscription.id) already exists") }
        if !exists && replace { throw NGSILDError.notFound("no subscription with id \(subscription.id)") }
        try persist([subscription])
        entries.withLock { $0[subscription.id] = Entry(subscription: subscription, matcher: matcher) }
        index(subscription.id, matcher)
    }

    /// Deletes a subscription and the notifications it still had queued.
    func delete(_ id: String) throws(NGSILDError) {
        guard entries.withLock({ $0[id] != nil }) else { throw NGSILDError.notFound("no subscription with id \(id)") }
        do {
            let removed = try documents.transaction { db -> Int in
                try db.run("DELETE FROM ngsi_subscriptions WHERE id = ?", [.text(id)])
                return try db.run("DELETE FROM ngsi_outbox WHERE subscription = ?", [.text(id)])
            }
            outboxCount.subtract(removed, ordering: .relaxed)
        } catch {
            throw NGSILDError(.internalError, "the twin store refused the delete: \(error.message)")
        }
        storedDocs.withLock { $0[id] = nil }
        entries.withLock { $0[id] = nil }
        index(id, nil)
    }

    func persist(_ subscriptions: [Subscription]) throws(NGSILDError) {
        do {
            try documents.transaction { db in
                for s in subscriptions {
                    try db.run("INSERT INTO ngsi_subscriptions (id, doc) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                               [.text(s.id), .text(s.stored.serialized)])
                }
            }
            storedDocs.withLock { docs in for s in subscriptions { docs[s.id] = s.stored.serialized } }
        } catch {
            throw NGSILDError(.internalError, "the twin store refused the subscription: \(error.message)")
        }
    }

    // MARK: - Changes → notifications

    /// The notifications that these changes cause (matching, throttling, rendering). Call inside
    /// the transaction that commits the changes and write them with ``enqueue(_:in:)``.
    func notifications(for changes: [(before: Entity?, after: Entity)], now: Int64) -> [Pending] {
        guard !changes.isEmpty else { return [] }
        // Only the subscriptions that select the changed entities' types are matched.
        var perSubscription: [String: [(before: Entity?, after: Entity)]] = [:]
        for change in changes {
            for id in candidates(change.after.types) { perSubscription[id, default: []].append(change) }
        }
        guard !perSubscription.isEmpty else { return [] }
        return entries.withLock { entries in
            var out: [Pending] = []
            // Subscriptions asking for the same form of the same change share one rendering
            // (a hundred dashboards watching one type cost one render per change, not a hundred).
            var rendered: [String: String] = [:]
            for (id, changes) in perSubscription.sorted(by: { $0.key < $1.key }) {
                guard let entry = entries[id] else { continue }
                let s = entry.subscription
                guard s.status(now: now) == .active, s.timeInterval == 0 else { continue }
                for change in changes where entry.matcher.triggers(before: change.before, after: change.after) {
                    if s.throttling > 0, let last = entries[id]?.subscription.lastNotification,
                       Double(now - last) < s.throttling * 1000 { continue }
                    let key = entry.matcher.renderSignature + "\u{0}" + change.after.id + "\u{0}" + String(change.after.modifiedAt)
                    let data: String
                    if let known = rendered[key] {
                        data = known
                    } else {
                        data = entry.matcher.render(before: change.before, after: change.after).serialized
                        rendered[key] = data
                    }
                    out.append(Pending(subscription: id, created: now, data: data))
                    if s.throttling > 0 { entries[id]?.subscription.lastNotification = now }
                }
            }
            return out
        }
    }

    /// Writes notifications to the outbox on `db` (inside the caller's transaction), dropping the
    /// oldest past the limit (counted).
    func enqueue(_ pending: [Pending], in db: any StoreConnection) throws {
        guard !pending.isEmpty else { return }
        for p in pending {
            try db.send("INSERT INTO ngsi_outbox (subscription, created, data) VALUES (?, ?, ?)", [.text(p.subscription), .integer(p.created), .text(p.data)])
        }
        let total = outboxCount.add(pending.count, ordering: .relaxed).newValue
        metrics?.notificationsQueued.increment(by: pending.count)
        if total > outboxLimit {
            let excess = total - outboxLimit
            let victims = try db.query("SELECT subscription, count(*) FROM (SELECT subscription FROM ngsi_outbox ORDER BY seq LIMIT ?) AS oldest GROUP BY subscription", [.integer(Int64(excess))])
            var lost: [(String, Int64)] = []
            while try victims.step() { lost.append((victims.text(0), victims.int64(1))) }
            try db.run("DELETE FROM ngsi_outbox WHERE seq IN (SELECT seq FROM ngsi_outbox ORDER BY seq LIMIT ?)", [.integer(Int64(excess))])
            outboxCount.subtract(excess, ordering: .relaxed)
            dropped.add(excess, ordering: .relaxed)
            metrics?.notificationsDropped.increment(by: excess)
            entries.withLock { e in
                for (id, n) in lost {
                    e[id]?.subscription.dropped += n
                    e[id]?.dirty = true
                }
            }
        }
    }

    /// Notifications that could not be queued (their commit failed after the data's own commit).
    func countLost(_ n: Int) {
        dropped.add(n, ordering: .relaxed)
        metrics?.notificationsDropped.increment(by: n)
    }

    /// After the transaction committed: let the dispatcher know.
    func committed(_ pending: [Pending]) {
        if !pending.isEmpty { signal.notify() }
    }

    // MARK: - Delivery status

    func recordDelivery(_ id: String, count: Int, success: Bool, at now: Int64) {
        entries.withLock { e in
            guard var entry = e[id] else { return }
            entry.subscription.lastNotification = now
            if success {
                entry.subscription.timesSent += Int64(count)
                entry.subscription.lastSuccess = now
            } else {
                entry.subscription.timesFailed += 1
                entry.subscription.lastFailure = now
            }
            entry.dirty = true
            e[id] = entry
        }
    }

    /// Writes the status counters that changed (the dispatcher calls this after each pass).
    func flushStatus() {
        let changed: [Subscription] = entries.withLock { e in
            var out: [Subscription] = []
            for (id, entry) in e where entry.dirty {
                out.append(entry.subscription)
                e[id]?.dirty = false
            }
            return out
        }
        if !changed.isEmpty { try? persist(changed) }
    }

    /// Subscriptions with a `timeInterval` due now, with what to send (every matching entity).
    func periodic(now: Int64, entities: (SubscriptionMatcher) -> [Entity]) -> [Pending] {
        entries.withLock { e in
            var out: [Pending] = []
            for (id, entry) in e where entry.subscription.timeInterval > 0 && entry.subscription.status(now: now) == .active {
                let last = entry.subscription.lastNotification ?? 0
                guard Double(now - last) >= entry.subscription.timeInterval * 1000 else { continue }
                e[id]?.subscription.lastNotification = now
                for entity in entities(entry.matcher) {
                    out.append(Pending(subscription: id, created: now, data: entry.matcher.render(before: nil, after: entity).serialized))
                }
            }
            return out
        }
    }
}
