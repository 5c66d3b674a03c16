import GemelloNGSILD
import GemelloSQLite

/// What clients wrote to the twin, durably: one row per entity in `ngsi_entities` of the twin
/// store's file, holding the client-owned part of the entity (for a telemetry entity: only the
/// attributes clients added). Telemetry itself is in the twin store and never written here.
///
/// It writes through the twin store's one writer connection: ingest, client writes and the
/// notification outbox then queue on one lock instead of meeting in SQLite's busy handler (which
/// sleeps in steps of up to 100 ms and would show in every notification's latency).
final class EntityDocuments: Sendable {
    private let store: TwinStore

    static let schema = """
        CREATE TABLE IF NOT EXISTS ngsi_entities (id TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
        """ + SubscriptionManager.schema

    init(store: TwinStore) throws(AggregatorError) {
        self.store = store
        do {
            try store.write { db in try db.execute(Self.schema) }
        } catch {
            throw AggregatorError(.store, "cannot create the NGSI-LD tables in \(store.path): \(error.message). Fix: check store.path is writable")
        }
    }

    /// Every stored document.
    func all() throws(AggregatorError) -> [Entity] {
        do {
            return try store.writing { db -> [Entity] in
                let rows = try db.statement("SELECT doc FROM ngsi_entities")
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

    /// Runs `body` in one transaction on the twin store's writer connection (subscriptions, the outbox).
    func transaction<T: Sendable>(_ body: (SQLiteConnection) throws -> T) throws(AggregatorError) -> T {
        try store.writing(body)
    }

    /// Writes and deletes in one transaction with `alongside` (the notifications they cause):
    /// when this returns all of it is durable.
    func commit(put: [Entity], delete: [String], alongside: (SQLiteConnection) throws -> Void = { _ in }) throws(AggregatorError) {
        guard !put.isEmpty || !delete.isEmpty else { return }
        do {
            try store.writing { db in
                try alongside(db)
                let upsert = try db.statement("INSERT INTO ngsi_entities (id, doc) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc")
                for entity in put { try upsert.run([.text(entity.id), .text(Self.encode(entity).serialized)]) }
                let remove = try db.statement("DELETE FROM ngsi_entities WHERE id = ?")
                for id in delete { try remove.run([.text(id)]) }
            }
        } catch {
            throw AggregatorError(.store, "cannot write entities to the twin store: \(error)")
        }
    }

    // MARK: - The stored form (internal: every name expanded, times in Unix milliseconds)

    static func encode(_ entity: Entity) -> JSON {
        var attributes: [String: JSON] = [:]
        for (name, instances) in entity.attributes {
            attributes[name] = .array(instances.map { a in
                var o: [String: JSON] = ["kind": .string(a.kind.rawValue), "value": a.value,
                                         "createdAt": .number(Double(a.createdAt)), "modifiedAt": .number(Double(a.modifiedAt))]
                if let d = a.datasetId { o["datasetId"] = .string(d) }
                if let t = a.observedAt { o["observedAt"] = .number(Double(t)) }
                if let u = a.unitCode { o["unitCode"] = .string(u) }
                if !a.sub.isEmpty { o["sub"] = .object(a.sub) }
                return .object(o)
            })
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
            entity.attributes[name] = (list.arrayValue ?? []).compactMap { a -> Attribute? in
                guard let kind = a["kind"]?.stringValue.flatMap(Attribute.Kind.init(rawValue:)), let value = a["value"] else { return nil }
                return Attribute(kind: kind, value: value, datasetId: a["datasetId"]?.stringValue,
                                 observedAt: a["observedAt"]?.numberValue.map { Int64($0) }, unitCode: a["unitCode"]?.stringValue,
                                 sub: a["sub"]?.objectValue ?? [:], createdAt: Int64(a["createdAt"]?.numberValue ?? 0),
                                 modifiedAt: Int64(a["modifiedAt"]?.numberValue ?? 0))
            }
        }
        return entity
    }
}
