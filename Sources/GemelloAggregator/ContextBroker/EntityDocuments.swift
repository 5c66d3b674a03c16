import GemelloCore
import GemelloNGSILD
import GemelloStorage

/// What clients wrote to the twin, durably: one row per entity in `ngsi_entities` of the twin
/// store, holding the client-owned part of the entity (for a telemetry entity: only the
/// attributes clients added). Telemetry itself is in the twin store and never written here.
///
/// It writes through the twin store's backend: ingest, client writes and the notification outbox
/// queue on its one writer lock in this process instead of meeting in SQLite's busy handler
/// (which sleeps in steps of up to 100 ms and would show in every notification's latency).
final class EntityDocuments: Sendable {
    private let store: TwinStore
    /// One of a share group: every write is also logged in `ngsi_changes` (with the store's
    /// wall-clock time) for the other members to read the entities again.
    let shared: Bool
    private let clock: any WallClock

    static let schema = """
        CREATE TABLE IF NOT EXISTS ngsi_entities (id TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS ngsi_temporal (seq INTEGER PRIMARY KEY, entity_id TEXT NOT NULL, attribute TEXT NOT NULL,
            observed_at INTEGER NOT NULL, instance_id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS ngsi_temporal_by_attribute ON ngsi_temporal (entity_id, attribute, observed_at);
        CREATE TABLE IF NOT EXISTS ngsi_changes (at INTEGER NOT NULL, entity_id TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS ngsi_changes_by_time ON ngsi_changes (at);
        """ + SubscriptionManager.schema

    init(store: TwinStore, shared: Bool = false, clock: any WallClock = SystemWallClock()) throws(AggregatorError) {
        self.store = store
        self.shared = shared
        self.clock = clock
        do {
            try store.write { db in try db.executeSchema(Self.schema) }
        } catch {
            throw AggregatorError(.store, "cannot create the NGSI-LD tables in \(store.path): \(error.message). Fix: check store.path is writable")
        }
    }

    /// Every stored document.
    func all() throws(AggregatorError) -> [Entity] {
        do {
            return try store.writing { db -> [Entity] in
                let rows = try db.query("SELECT doc FROM ngsi_entities")
                var out: [Entity] = []
                while try rows.step() {
                    if let entity = Self.decode(try JSON.parse(rows.text(0))) { out.append(entity) }
                }
                return out
            }
        } catch {
            throw AggregatorError(.store, "cannot read the entity table: \(error)")
        }
    }

    /// The entities written or deleted (by any member of a share group) at or after `since`, with
    /// their stored documents (nil: deleted).
    func changed(since: Int64) throws(AggregatorError) -> [(id: String, entity: Entity?)] {
        try store.read { db -> [(id: String, entity: Entity?)] in
            let ids = try db.query("SELECT DISTINCT entity_id FROM ngsi_changes WHERE at >= ?", [.integer(since)])
            var list: [String] = []
            while try ids.step() { list.append(ids.text(0)) }
            var out: [(id: String, entity: Entity?)] = []
            for id in list.sorted() {
                let doc = try db.query("SELECT doc FROM ngsi_entities WHERE id = ?", [.text(id)])
                out.append((id, try doc.step() ? Self.decode(try JSON.parse(doc.text(0))) : nil))
            }
            return out
        }
    }

    /// Runs `body` in one transaction on the twin store's writer connection (subscriptions, the outbox).
    func transaction<T: Sendable>(_ body: (any StoreConnection) throws -> T) throws(AggregatorError) -> T {
        try store.writing(body)
    }

    /// One instance of a client entity's attribute history (`POST /temporal/entities`).
    struct TemporalInstance: Sendable {
        var entity: String
        /// Expanded name.
        var attribute: String
        var id: String
        var instance: Attribute
        /// The instant it is kept under: its observedAt, or when it was written.
        var time: Int64 { instance.observedAt ?? instance.createdAt }
    }

    /// Writes and deletes in one transaction with `alongside` (the notifications they cause):
    /// when this returns all of it is durable. Deleting an entity deletes its kept instances.
    func commit(put: [Entity], delete: [String], instances: [TemporalInstance] = [],
                alongside: (any StoreConnection) throws -> Void = { _ in }) throws(AggregatorError) {
        guard !put.isEmpty || !delete.isEmpty || !instances.isEmpty else { return }
        do {
            try store.writing { db in
                try alongside(db)
                for entity in put {
                    try db.run("INSERT INTO ngsi_entities (id, doc) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                               [.text(entity.id), .text(Self.encode(entity).serialized)])
                }
                for id in delete {
                    try db.run("DELETE FROM ngsi_entities WHERE id = ?", [.text(id)])
                    try db.run("DELETE FROM ngsi_temporal WHERE entity_id = ?", [.text(id)])
                }
                if shared {
                    let now = clock.nowMilliseconds()
                    for id in put.map(\.id) + delete { try db.send("INSERT INTO ngsi_changes (at, entity_id) VALUES (?, ?)", [.integer(now), .text(id)]) }
                    try db.send("DELETE FROM ngsi_changes WHERE at < ?", [.integer(now - 600_000)])
                }
                for i in instances {
                    try db.run("INSERT INTO ngsi_temporal (entity_id, attribute, observed_at, instance_id, doc) VALUES (?, ?, ?, ?, ?)", [.text(i.entity), .text(i.attribute), .integer(i.time), .text(i.id), .text(Self.encode(i.instance).serialized)])
                }
            }
        } catch {
            throw AggregatorError(.store, "cannot write entities to the twin store: \(error)")
        }
    }

    /// The kept instances of a client attribute within `range` (by their time), oldest first; with
    /// `lastN` the newest N. Empty when the attribute has none.
    func instances(entity: String, attribute: String, in range: ClosedRange<Int64>, lastN: Int?, limit: Int) throws(AggregatorError) -> [(id: String, instance: Attribute)] {
        do {
            return try store.read { db -> [(id: String, instance: Attribute)] in
                let order = lastN == nil ? "ASC" : "DESC"
                let rows = try db.query("""
                    SELECT instance_id, doc FROM ngsi_temporal WHERE entity_id = ? AND attribute = ? AND observed_at BETWEEN ? AND ?
                    ORDER BY observed_at \(order), seq \(order) LIMIT ?
                    """, [.text(entity), .text(attribute), .integer(range.lowerBound), .integer(range.upperBound),
                          .integer(Int64(min(lastN ?? limit, limit)))])
                var out: [(id: String, instance: Attribute)] = []
                while try rows.step() {
                    if let a = Self.decodeAttribute(try JSON.parse(rows.text(1))) { out.append((rows.text(0), a)) }
                }
                return lastN == nil ? out : out.reversed()
            }
        } catch {
            throw AggregatorError(.store, "cannot read the kept instances of \(attribute) of \(entity): \(error)")
        }
    }

    /// Deletes one kept instance; whether it existed.
    func deleteInstance(entity: String, attribute: String, id: String) throws(AggregatorError) -> Bool {
        try store.writing { db -> Bool in
            try db.run("DELETE FROM ngsi_temporal WHERE entity_id = ? AND attribute = ? AND instance_id = ?",
                       [.text(entity), .text(attribute), .text(id)]) > 0
        }
    }

    /// Deletes an attribute's kept instances; how many.
    func deleteInstances(entity: String, attribute: String) throws(AggregatorError) -> Int {
        try store.writing { db -> Int in
            try db.run("DELETE FROM ngsi_temporal WHERE entity_id = ? AND attribute = ?", [.text(entity), .text(attribute)])
        }
    }

    // MARK: - The stored form (internal: every name expanded, times in Unix milliseconds)

    static func encode(_ a: Attribute) -> JSON {
        var o: [String: JSON] = ["kind": .string(a.kind.rawValue), "value": a.value,
                                 "createdAt": .number(Double(a.createdAt)), "modifiedAt": .number(Double(a.modifiedAt))]
        if let d = a.datasetId { o["datasetId"] = .string(d) }
        if let t = a.observedAt { o["observedAt"] = .number(Double(t)) }
        if let u = a.unitCode { o["unitCode"] = .string(u) }
        if !a.sub.isEmpty { o["sub"] = .object(a.sub) }
        return .object(o)
    }

    static func decodeAttribute(_ a: JSON) -> Attribute? {
        guard let kind = a["kind"]?.stringValue.flatMap(Attribute.Kind.init(rawValue:)), let value = a["value"] else { return nil }
        return Attribute(kind: kind, value: value, datasetId: a["datasetId"]?.stringValue,
                         observedAt: a["observedAt"]?.numberValue.map { Int64($0) }, unitCode: a["unitCode"]?.stringValue,
                         sub: a["sub"]?.objectValue ?? [:], createdAt: Int64(a["createdAt"]?.numberValue ?? 0),
                         modifiedAt: Int64(a["modifiedAt"]?.numberValue ?? 0))
    }

    static func encode(_ entity: Entity) -> JSON {
        var attributes: [String: JSON] = [:]
        for (name, instances) in entity.attributes {
            attributes[name] = .array(instances.map { encode($0) })
        }
        return ["types": .array(entity.types.map { .string($0) }), "id": .string(entity.id),
                "createdAt": .number(Double(entity.createdAt)), "modifiedAt": .number(Double(entity.modifiedAt)),
                "attributes": .object(attributes)]
    }

    static func decode(_ json: JSON) -> Entity? {
        guard let id = json["id"]?.stringValue, let types = json["types"]?.arrayValue?.compactMap(\.stringValue),
              let created = json["createdAt"]?.numberValue, let modified = json["modifiedAt"]?.numberValue else { return nil }
        var entity = Entity(id: id, types: types, createdAt: Int64(created), modifiedAt: Int64(modified))
        for (name, list) in json["attributes"]?.objectValue ?? [:] {
            entity.attributes[name] = (list.arrayValue ?? []).compactMap(decodeAttribute)
        }
        return entity
    }
}
