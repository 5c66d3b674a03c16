import GemelloNGSILD

/// Attributes that an operation did not write, and why (the spec's `UpdateResult`, clause 5.2.18).
public struct UpdateResult: Sendable, Equatable {
    /// Expanded names.
    public var updated: [String] = []
    public var notUpdated: [(name: String, reason: String)] = []

    public static func == (a: UpdateResult, b: UpdateResult) -> Bool {
        a.updated == b.updated && a.notUpdated.map(\.name) == b.notUpdated.map(\.name)
    }
}

/// The outcome of a batch operation (`BatchOperationResult`, clause 5.2.16).
public struct BatchResult: Sendable {
    public var success: [String] = []
    /// Of the successes, the entities that did not exist before (upsert: 201 vs 204).
    public var created: [String] = []
    public var errors: [(id: String, error: NGSILDError)] = []
}

extension ContextBroker {
    /// How a write changes one entity: the new client-visible entity, or deletion.
    enum Change {
        case put(Entity)
        case delete(String)
        /// Instances kept for the temporal API (client data written through it).
        case instances([EntityDocuments.TemporalInstance])
    }

    /// Runs `plan` with the current entities under the write lock, persists what it returns in
    /// one transaction, then indexes it.
    func write<T>(_ plan: () throws(NGSILDError) -> (changes: [Change], result: T)) throws(NGSILDError) -> T {
        try writeLockedRun { () throws(NGSILDError) -> T in
            let (changes, result) = try plan()
            var put: [Entity] = []
            var deleted: [String] = []
            var kept: [EntityDocuments.TemporalInstance] = []
            for change in changes {
                switch change {
                case .put(let e): put.append(e)
                case .delete(let id): deleted.append(id)
                case .instances(let list): kept += list
                }
            }
            // Notifications go into the outbox in the same transaction as the write.
            var pending: [SubscriptionManager.Pending] = []
            if let subscriptions, subscriptions.count > 0 {
                pending = subscriptions.notifications(for: put.map { (index.entity($0.id), $0) }, now: now)
            }
            do {
                // Only the client-owned part is persisted: telemetry lives in the twin store.
                try documents.commit(put: put.map(Self.clientPart), delete: deleted, instances: kept) { db in
                    try subscriptions?.enqueue(pending, in: db)
                }
            } catch let error as AggregatorError {
                throw NGSILDError(.internalError, "the twin store refused the write: \(error.message)")
            } catch {
                throw NGSILDError(.internalError, "the twin store refused the write: \(error)")
            }
            index.remove(deleted)
            index.put(put)
            subscriptions?.committed(pending)
            return result
        }
    }

    private func writeLockedRun<T>(_ body: () throws(NGSILDError) -> T) throws(NGSILDError) -> T {
        let result: Result<T, NGSILDError> = writeLockForWrites { () -> Result<T, NGSILDError> in
            do throws(NGSILDError) { return .success(try body()) } catch { return .failure(error) }
        }
        return try result.get()
    }

    static func clientPart(_ entity: Entity) -> Entity {
        var e = entity
        for (name, instances) in e.attributes {
            let mine = instances.filter { $0.owner == nil }
            e.attributes[name] = mine.isEmpty ? nil : mine
        }
        return e
    }

    /// Unix milliseconds now (the broker's clock: createdAt, modifiedAt).
    public var now: Int64 { clock.nowMilliseconds() }

    func existing(_ id: String) throws(NGSILDError) -> Entity {
        guard let entity = index.entity(id) else { throw .notFound("no entity with id \(id)") }
        return entity
    }

    static func ownedError(_ entity: Entity, _ name: String) -> NGSILDError {
        let owner = entity.attributes[name]?.first(where: { $0.owner != nil })?.owner ?? "an agent"
        return NGSILDError(.operationNotSupported, "attribute \(name) of \(entity.id) is telemetry owned by agent \(owner)'s ingest; "
                           + "clients may add their own attributes to this entity but not overwrite or delete the agent's series")
    }

    // MARK: - Entities

    /// POST /entities.
    public func create(_ entity: Entity) throws(NGSILDError) {
        try write { () throws(NGSILDError) in
            guard index.entity(entity.id) == nil else { throw NGSILDError(.alreadyExists, "entity \(entity.id) already exists") }
            return ([.put(entity)], ())
        }
    }

    /// PUT /entities/{id} (clause 5.6.18): the entity's attributes become those given.
    public func replace(_ entity: Entity) throws(NGSILDError) {
        try write { () throws(NGSILDError) in
            let current = try existing(entity.id)
            if let owned = current.attributes.first(where: { $0.value.contains { $0.owner != nil } })?.key {
                throw Self.ownedError(current, owned)
            }
            var next = entity
            next.createdAt = current.createdAt
            next.modifiedAt = now
            return ([.put(next)], ())
        }
    }

    /// DELETE /entities/{id}.
    public func delete(id: String) throws(NGSILDError) {
        try write { () throws(NGSILDError) in
            let current = try existing(id)
            if let owned = current.attributes.first(where: { $0.value.contains { $0.owner != nil } })?.key {
                throw Self.ownedError(current, owned)
            }
            return ([.delete(id)], ())
        }
    }

    // MARK: - Attributes

    /// POST /entities/{id}/attrs (append, clause 5.6.3): adds attributes, replacing existing ones
    /// unless `noOverwrite`.
    public func append(id: String, attributes: [String: [Attribute]], noOverwrite: Bool) throws(NGSILDError) -> UpdateResult {
        try writeAttributes(id: id, attributes, create: true, overwrite: !noOverwrite,
                            refusal: "attribute exists and noOverwrite was asked")
    }

    /// PATCH /entities/{id}/attrs (update, clause 5.6.2): only attributes that exist are changed.
    public func update(id: String, attributes: [String: [Attribute]]) throws(NGSILDError) -> UpdateResult {
        try writeAttributes(id: id, attributes, create: false, overwrite: true,
                            refusal: "attribute does not exist (append creates it)")
    }

    /// Writes each instance that is new (when `create`) or exists (when `overwrite`); an
    /// attribute of which no instance was written is reported with `refusal`.
    private func writeAttributes(id: String, _ attributes: [String: [Attribute]], create: Bool, overwrite: Bool,
                                 refusal: String) throws(NGSILDError) -> UpdateResult {
        try write { () throws(NGSILDError) in
            var entity = try existing(id)
            var result = UpdateResult()
            for (name, instances) in attributes.sorted(by: { $0.key < $1.key }) {
                if entity.attributes[name]?.contains(where: { $0.owner != nil }) == true {
                    result.notUpdated.append((name, Self.ownedError(entity, name).detail))
                    continue
                }
                var changed = false
                for instance in instances {
                    var next = instance
                    if let old = entity.attribute(name, datasetId: instance.datasetId) {
                        guard overwrite else { continue }
                        next.createdAt = old.createdAt
                    } else if !create {
                        continue
                    }
                    entity.set(name, next)
                    changed = true
                }
                if changed { result.updated.append(name) } else { result.notUpdated.append((name, refusal)) }
            }
            entity.modifiedAt = now
            return (result.updated.isEmpty ? [] : [.put(entity)], result)
        }
    }

    /// PATCH /entities/{id}/attrs/{attr} (partial attribute update, clause 5.6.4): the given
    /// members replace those of the existing instance; others are kept.
    public func patchAttribute(id: String, name: String, with patch: Attribute, members: Set<String>) throws(NGSILDError) {
        try write { () throws(NGSILDError) in
            var entity = try existing(id)
            guard let old = entity.attribute(name, datasetId: patch.datasetId) else {
                throw .notFound("entity \(id) has no attribute \(name)\(patch.datasetId.map { " with datasetId \($0)" } ?? "")")
            }
            guard old.owner == nil else { throw Self.ownedError(entity, name) }
            var next = old
            if members.contains(patch.kind.valueMember) || members.contains("value") { next.value = patch.value; next.kind = patch.kind }
            if members.contains("observedAt") { next.observedAt = patch.observedAt }
            if members.contains("unitCode") { next.unitCode = patch.unitCode }
            for (k, v) in patch.sub { next.sub[k] = v }
            next.modifiedAt = now
            next = Attribute(kind: next.kind, value: next.value, datasetId: next.datasetId, observedAt: next.observedAt,
                             unitCode: next.unitCode, sub: next.sub, createdAt: next.createdAt, modifiedAt: next.modifiedAt)
            entity.set(name, next)
            entity.modifiedAt = now
            return ([.put(entity)], ())
        }
    }

    /// DELETE /entities/{id}/attrs/{attr} (clause 5.6.5), one instance or all (`deleteAll`).
    public func deleteAttribute(id: String, name: String, datasetId: String?, all: Bool) throws(NGSILDError) {
        try write { () throws(NGSILDError) in
            var entity = try existing(id)
            if entity.attributes[name]?.contains(where: { $0.owner != nil }) == true { throw Self.ownedError(entity, name) }
            guard entity.remove(name, datasetId: datasetId, all: all) else {
                throw .notFound("entity \(id) has no attribute \(name)\(datasetId.map { " with datasetId \($0)" } ?? "")")
            }
            entity.modifiedAt = now
            return ([.put(entity)], ())
        }
    }

    /// PATCH /entities/{id} (merge, clause 5.6.17): attributes given are added or replaced,
    /// those in `deletions` removed.
    public func merge(id: String, attributes: [String: [Attribute]], deletions: [String]) throws(NGSILDError) -> UpdateResult {
        try write { () throws(NGSILDError) in
            var entity = try existing(id)
            var result = UpdateResult()
            for name in deletions {
                if entity.attributes[name]?.contains(where: { $0.owner != nil }) == true {
                    result.notUpdated.append((name, Self.ownedError(entity, name).detail))
                } else if entity.remove(name, all: true) {
                    result.updated.append(name)
                }
            }
            for (name, instances) in attributes.sorted(by: { $0.key < $1.key }) {
                if entity.attributes[name]?.contains(where: { $0.owner != nil }) == true {
                    result.notUpdated.append((name, Self.ownedError(entity, name).detail))
                    continue
                }
                for instance in instances {
                    var next = instance
                    if let old = entity.attribute(name, datasetId: instance.datasetId) { next.createdAt = old.createdAt }
                    entity.set(name, next)
                }
                result.updated.append(name)
            }
            entity.modifiedAt = now
            return ([.put(entity)], result)
        }
    }

    // MARK: - Batch operations (clause 5.6.7–5.6.10)

    public enum UpsertMode: Sendable { case replace, update }

    public func batchCreate(_ entities: [Entity]) throws(NGSILDError) -> BatchResult {
        try checkBatchSize(entities.count)
        return try write { () throws(NGSILDError) in
            var result = BatchResult()
            var changes: [Change] = []
            var seen = Set<String>()
            for entity in entities {
                guard index.entity(entity.id) == nil, seen.insert(entity.id).inserted else {
                    result.errors.append((entity.id, NGSILDError(.alreadyExists, "entity \(entity.id) already exists")))
                    continue
                }
                changes.append(.put(entity))
                result.success.append(entity.id)
                result.created.append(entity.id)
            }
            return (changes, result)
        }
    }

    public func batchUpsert(_ entities: [Entity], mode: UpsertMode) throws(NGSILDError) -> BatchResult {
        try checkBatchSize(entities.count)
        return try write { () throws(NGSILDError) in
            var result = BatchResult()
            var pending: [String: Entity] = [:]
            var order: [String] = []
            let time = now
            for entity in entities {
                guard let current = pending[entity.id] ?? index.entity(entity.id) else {
                    if pending[entity.id] == nil { order.append(entity.id) }
                    pending[entity.id] = entity
                    result.created.append(entity.id)
                    result.success.append(entity.id)
                    continue
                }
                var next = current
                switch mode {
                case .replace:
                    if let owned = current.attributes.first(where: { $0.value.contains { $0.owner != nil } })?.key {
                        result.errors.append((entity.id, Self.ownedError(current, owned)))
                        continue
                    }
                    next = entity
                    next.createdAt = current.createdAt
                case .update:
                    if let owned = entity.attributes.keys.first(where: { current.attributes[$0]?.contains { $0.owner != nil } == true }) {
                        result.errors.append((entity.id, Self.ownedError(current, owned)))
                        continue
                    }
                    for (name, instances) in entity.attributes { for i in instances { next.set(name, i) } }
                    for type in entity.types where !next.types.contains(type) { next.types.append(type) }
                }
                next.modifiedAt = time
                if pending[entity.id] == nil { order.append(entity.id) }
                pending[entity.id] = next
                result.success.append(entity.id)
            }
            return (order.compactMap { pending[$0].map(Change.put) }, result)
        }
    }

    public func batchUpdate(_ entities: [Entity], noOverwrite: Bool) throws(NGSILDError) -> BatchResult {
        try checkBatchSize(entities.count)
        return try write { () throws(NGSILDError) in
            var result = BatchResult()
            var pending: [String: Entity] = [:]
            for entity in entities {
                guard var next = pending[entity.id] ?? index.entity(entity.id) else {
                    result.errors.append((entity.id, .notFound("no entity with id \(entity.id)")))
                    continue
                }
                if let owned = entity.attributes.keys.first(where: { next.attributes[$0]?.contains { $0.owner != nil } == true }) {
                    result.errors.append((entity.id, Self.ownedError(next, owned)))
                    continue
                }
                for (name, instances) in entity.attributes {
                    for i in instances where !(noOverwrite && next.attribute(name, datasetId: i.datasetId) != nil) { next.set(name, i) }
                }
                next.modifiedAt = now
                pending[entity.id] = next
                result.success.append(entity.id)
            }
            return (pending.values.map(Change.put), result)
        }
    }

    public func batchDelete(_ ids: [String]) throws(NGSILDError) -> BatchResult {
        try checkBatchSize(ids.count)
        return try write { () throws(NGSILDError) in
            var result = BatchResult()
            var changes: [Change] = []
            for id in ids {
                guard let current = index.entity(id), !result.success.contains(id) else {
                    result.errors.append((id, .notFound("no entity with id \(id)")))
                    continue
                }
                if let owned = current.attributes.first(where: { $0.value.contains { $0.owner != nil } })?.key {
                    result.errors.append((id, Self.ownedError(current, owned)))
                    continue
                }
                changes.append(.delete(id))
                result.success.append(id)
            }
            return (changes, result)
        }
    }

    private func checkBatchSize(_ count: Int) throws(NGSILDError) {
        guard count <= limits.maxBatch else {
            throw NGSILDError(.tooManyResults, "a batch of \(count) entities is above the limit of \(limits.maxBatch); split it")
        }
    }
}
