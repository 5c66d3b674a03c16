import GemelloCore
import GemelloNGSILD
import Synchronization

/// The twin as an NGSI-LD context broker: entities from telemetry (owned by ingest) and entities
/// and attributes written by clients, side by side, with the operations of ETSI GS CIM 009 clause
/// 5.6 (writes) and 5.7 (queries) on expanded entities. The HTTP layer parses and renders; this
/// type decides, persists (client data in `ngsi_entities`) and indexes.
///
/// Telemetry attributes are owned by the agent whose batches feed them: a client may add its own
/// attributes to a telemetry entity, but not overwrite or delete an agent's series
/// (`OperationNotSupported`, 422).
public final class ContextBroker: Sendable {
    public struct Limits: Sendable {
        /// `limit` when a query names none.
        public var defaultLimit = 20
        /// The largest `limit` accepted (`TooManyResults` above it).
        public var maxLimit = 1000
        /// Entities in one batch operation at most.
        public var maxBatch = 10_000
        /// Instances per attribute in one temporal reply at most (longer histories are paged).
        public var maxInstances = 10_000
        public init() {}
    }

    let index = EntityIndex()
    let documents: EntityDocuments
    /// The telemetry history behind the temporal API.
    let history: any TwinHistory
    /// Subscriptions and their outbox (nil only before ``attach(_:)``).
    var subscriptions: SubscriptionManager? { subscriptionsBox.withLock { $0 } }
    private let subscriptionsBox = Mutex<SubscriptionManager?>(nil)
    /// Serializes writers: compute, persist, then index, as one step.
    private let writeLock = Mutex(())
    let clock: any WallClock
    public let contexts: ContextResolver
    public let limits: Limits

    public init(store: TwinStore, contexts: ContextResolver, limits: Limits = Limits(),
                clock: any WallClock = SystemWallClock(), shared: Bool = false) throws(AggregatorError) {
        self.documents = try EntityDocuments(store: store, shared: shared, clock: clock)
        self.history = store.history
        self.contexts = contexts
        self.limits = limits
        self.clock = clock
        index.put(try documents.all())
    }

    /// In a share group: takes in the client writes other members committed at or after `since`
    /// (their entities read again from the store, with this member's telemetry kept).
    func refreshClientEntities(since: Int64) throws(AggregatorError) {
        let changed = try documents.changed(since: since)
        guard !changed.isEmpty else { return }
        writeLock.withLock { _ in
            var put: [Entity] = []
            var gone: [String] = []
            for (id, stored) in changed {
                let telemetry = index.entity(id).map(Self.telemetryPart)
                switch (stored, telemetry) {
                case (let client?, let telemetry?): put.append(Self.merge(client, telemetry))
                case (let client?, nil): put.append(client)
                case (nil, let telemetry?) where !telemetry.attributes.isEmpty: put.append(telemetry)
                case (nil, _): gone.append(id)
                }
            }
            index.remove(gone)
            index.put(put)
        }
    }

    /// The ingest-owned part of an entity (its agents' attributes).
    static func telemetryPart(_ entity: Entity) -> Entity {
        var e = entity
        for (name, instances) in e.attributes {
            let owned = instances.filter { $0.owner != nil }
            e.attributes[name] = owned.isEmpty ? nil : owned
        }
        return e
    }

    /// Connects the subscription manager (made after the broker: it shares its connection).
    func attach(_ manager: SubscriptionManager) { subscriptionsBox.withLock { $0 = manager } }

    /// Runs `body` holding the write lock (client writes and telemetry never interleave).
    func writeLockForWrites<T>(_ body: () -> T) -> T {
        writeLock.withLock { _ in body() }
    }

    /// Entities in the twin.
    public var entityCount: Int { index.count }

    // MARK: - Telemetry (called by the projection)

    /// `current` with its ingest-owned attributes replaced by those of `fresh` (what clients
    /// added is kept).
    static func merge(_ current: Entity?, _ fresh: Entity) -> Entity {
        guard var merged = current else { return fresh }
        for (name, instances) in merged.attributes where instances.contains(where: { $0.owner != nil }) {
            let kept = instances.filter { $0.owner == nil }
            merged.attributes[name] = kept.isEmpty ? nil : kept
        }
        var changed = false
        for (name, instances) in fresh.attributes {
            var list = merged.attributes[name] ?? []
            for var instance in instances {
                if let old = current?.attribute(name, datasetId: instance.datasetId), old.owner != nil {
                    instance.createdAt = min(old.createdAt, instance.createdAt)
                    if old.value == instance.value && old.observedAt == instance.observedAt && old.unitCode == instance.unitCode {
                        instance.modifiedAt = old.modifiedAt  // unchanged: keeps when it last changed
                    } else {
                        changed = true
                    }
                } else {
                    changed = true
                }
                if let i = list.firstIndex(where: { $0.datasetId == instance.datasetId }) { list[i] = instance } else { list.append(instance) }
            }
            merged.attributes[name] = list
        }
        for type in fresh.types where !merged.types.contains(type) { merged.types.append(type) }
        merged.createdAt = min(merged.createdAt, fresh.createdAt)
        if changed { merged.modifiedAt = max(merged.modifiedAt, fresh.modifiedAt) }
        return merged
    }

    /// The notifications that replacing these entities' telemetry would send; to be written in
    /// the transaction that commits the telemetry (``SubscriptionManager/enqueue(_:in:)``).
    func telemetryNotifications(_ fresh: [Entity]) -> [SubscriptionManager.Pending] {
        guard let subscriptions, subscriptions.count > 0 else { return [] }
        let changes = fresh.map { entity -> (before: Entity?, after: Entity) in
            let current = index.entity(entity.id)
            return (current, Self.merge(current, entity))
        }
        return subscriptions.notifications(for: changes, now: now)
    }

    /// Replaces the ingest-owned attributes of these entities (creating them when new), keeping
    /// what clients added. `notified`: their notifications were already queued with the commit
    /// (ingest); otherwise they are queued here.
    public func applyTelemetry(_ entities: [Entity], notified: Bool = false) {
        writeLock.withLock { _ in
            if !notified, let subscriptions {
                let pending = telemetryNotifications(entities)
                if !pending.isEmpty {
                    do { try documents.transaction { db in try subscriptions.enqueue(pending, in: db) } } catch {
                        // The telemetry itself is committed (twin store); only these notifications are lost, and counted.
                        subscriptions.countLost(pending.count)
                    }
                    subscriptions.committed(pending)
                }
            }
            index.update(entities.map(\.id)) { i, current in Self.merge(current, entities[i]) }
        }
    }

    /// Device entities: replaced whole when their facts changed (their state is the fleet view's).
    public func applyDevices(_ devices: [Entity]) {
        var changed: [Entity] = []
        for device in devices {
            guard let current = index.entity(device.id) else { changed.append(device); continue }
            let same = device.attributes.allSatisfy { name, instances in
                current.attributes[name]?.map(\.value) == instances.map(\.value)
            }
            if !same { changed.append(device) }
        }
        if !changed.isEmpty { applyTelemetry(changed) }
    }

    // MARK: - Reads

    public func entity(id: String) -> Entity? { index.entity(id) }

    /// A query (clause 5.7.2). At least one of ids, idPattern, type, attrs, q or a geo-query is
    /// required (the spec's rule against unbounded queries).
    public func query(_ q: EntityQuery, unbounded: Bool = false) throws(NGSILDError) -> (entities: [Entity], total: Int?) {
        let limit = q.limit ?? limits.defaultLimit
        guard limit >= 0 else { throw .badRequest("limit must be 0 or more") }
        guard limit <= limits.maxLimit else {
            throw NGSILDError(.tooManyResults, "limit \(limit) is above this broker's maximum of \(limits.maxLimit); page with offset")
        }
        guard q.offset >= 0 else { throw .badRequest("offset must be 0 or more") }
        guard limit > 0 || q.count else { throw .badRequest("limit=0 is only allowed with count=true") }
        let filter = q.filter
        guard unbounded || filter.ids != nil || filter.idPattern != nil || filter.types != nil || filter.attributes != nil || filter.q != nil
              || filter.geo != nil else {
            throw .badRequest("a query needs at least one of id, idPattern, type, attrs, q or a geo-query (georel, geometry, coordinates)")
        }
        let (page, total) = index.query(filter, offset: q.offset, limit: limit, count: q.count)
        return (page, total)
    }

    /// Entity types with their attributes and counts (`/types`, clause 5.7.5–5.7.6), expanded.
    public func typeSummaries() -> [String: (count: Int, attributes: Set<String>)] {
        var out: [String: (count: Int, attributes: Set<String>)] = [:]
        index.forEach { e in
            for type in e.types {
                var entry = out[type] ?? (0, [])
                entry.count += 1
                entry.attributes.formUnion(e.attributes.keys)
                out[type] = entry
            }
        }
        return out
    }

    /// Attributes with the types of entities that have them, their kinds and counts (`/attributes`).
    public func attributeSummaries() -> [String: (count: Int, types: Set<String>, kinds: Set<String>)] {
        var out: [String: (count: Int, types: Set<String>, kinds: Set<String>)] = [:]
        index.forEach { e in
            for (name, instances) in e.attributes {
                var entry = out[name] ?? (0, [], [])
                entry.count += 1
                entry.types.formUnion(e.types)
                for i in instances { entry.kinds.insert(i.kind.rawValue) }
                out[name] = entry
            }
        }
        return out
    }
}

/// A parsed entity query (GET /entities or POST /entityOperations/query).
public struct EntityQuery {
    var filter = EntityFilter()
    public var offset = 0
    public var limit: Int?
    public var count = false

    public init() {}

    public var ids: [String]? { get { filter.ids } set { filter.ids = newValue } }
    public var types: TypeExpression? { get { filter.types } set { filter.types = newValue } }
    public var attributes: Set<String>? { get { filter.attributes } set { filter.attributes = newValue } }
    public var q: Query? { get { filter.q } set { filter.q = newValue } }
    public var geo: GeoQuery? { get { filter.geo } set { filter.geo = newValue } }

    /// `idPattern`, a regular expression matched anywhere in the id (POSIX regexec, as Orion-LD).
    public mutating func setIDPattern(_ pattern: String) throws(NGSILDError) {
        filter.idPattern = try SafePattern.compile(pattern, what: "idPattern")
    }
}
