import GemelloNGSILD
import Synchronization

/// Every entity of the twin in memory, in creation order, with an index by type: what queries
/// scan. Writes go through ``ContextBroker`` (which persists first); this type only indexes.
///
/// Creation order is the order of slots, so pagination with `offset`/`limit` is stable and a
/// query that needs no count stops after `offset + limit` matches.
final class EntityIndex: Sendable {
    struct State {
        var slots: [Entity?] = []
        var slotOf: [String: Int] = [:]
        /// Expanded type → slots holding it, ascending (may point at removed or retyped slots).
        var byType: [String: [Int]] = [:]
        var removed = 0
    }

    private let state = Mutex(State())

    var count: Int { state.withLock { $0.slotOf.count } }

    func entity(_ id: String) -> Entity? {
        state.withLock { s in s.slotOf[id].flatMap { s.slots[$0] } }
    }

    func entities(_ ids: [String]) -> [Entity] {
        state.withLock { s in ids.compactMap { s.slotOf[$0].flatMap { s.slots[$0] } } }
    }

    /// Adds or replaces entities (a replaced entity keeps its place in the order).
    func put(_ entities: [Entity]) {
        state.withLock { s in
            for entity in entities {
                if let slot = s.slotOf[entity.id] {
                    let old = s.slots[slot]?.types ?? []
                    s.slots[slot] = entity
                    for type in entity.types where !old.contains(type) { Self.addType(type, slot: slot, in: &s) }
                } else {
                    let slot = s.slots.count
                    s.slots.append(entity)
                    s.slotOf[entity.id] = slot
                    for type in entity.types { s.byType[type, default: []].append(slot) }
                }
            }
        }
    }

    /// Changes one entity in place under the lock; `change` returns nil to leave it as it was.
    func update(_ id: String, _ change: (Entity?) -> Entity?) {
        state.withLock { s in
            let current = s.slotOf[id].flatMap { s.slots[$0] }
            guard let next = change(current) else { return }
            if let slot = s.slotOf[id] {
                for type in next.types where !(current?.types.contains(type) ?? false) { Self.addType(type, slot: slot, in: &s) }
                s.slots[slot] = next
            } else {
                let slot = s.slots.count
                s.slots.append(next)
                s.slotOf[id] = slot
                for type in next.types { s.byType[type, default: []].append(slot) }
            }
        }
    }

    private static func addType(_ type: String, slot: Int, in s: inout State) {
        var list = s.byType[type, default: []]
        if let i = list.firstIndex(where: { $0 >= slot }) {
            if list[i] != slot { list.insert(slot, at: i) }
        } else {
            list.append(slot)
        }
        s.byType[type] = list
    }

    func remove(_ ids: [String]) {
        state.withLock { s in
            for id in ids {
                guard let slot = s.slotOf.removeValue(forKey: id) else { continue }
                s.slots[slot] = nil
                s.removed += 1
            }
            if s.removed > 1024 && s.removed > s.slots.count / 2 { Self.compact(&s) }
        }
    }

    /// Drops the holes left by deletions (keeps the order).
    private static func compact(_ s: inout State) {
        var fresh = State()
        for case let entity? in s.slots {
            let slot = fresh.slots.count
            fresh.slots.append(entity)
            fresh.slotOf[entity.id] = slot
            for type in entity.types { fresh.byType[type, default: []].append(slot) }
        }
        s = fresh
    }

    /// Entities matching `filter`, in creation order: the page `offset..<offset+limit` and, when
    /// `count`, how many matched in all.
    func query(_ filter: EntityFilter, offset: Int, limit: Int, count: Bool) -> (page: [Entity], total: Int?) {
        state.withLock { s in
            var page: [Entity] = []
            var matched = 0
            let end = offset + limit
            func visit(_ entity: Entity) -> Bool {
                guard filter.matches(entity) else { return true }
                if matched >= offset && matched < end { page.append(entity) }
                matched += 1
                return count || matched < end
            }
            if let ids = filter.ids {
                for id in ids {
                    guard let entity = s.slotOf[id].flatMap({ s.slots[$0] }) else { continue }
                    if !visit(entity) { break }
                }
            } else if let types = filter.types?.alternatives {
                // Merge the slot lists of the named types, in slot order, each slot once.
                var slots = Set<Int>()
                for type in types { slots.formUnion(s.byType[type] ?? []) }
                for slot in slots.sorted() {
                    guard let entity = s.slots[slot] else { continue }
                    if !visit(entity) { break }
                }
            } else {
                for case let entity? in s.slots where !visit(entity) { break }
            }
            return (page, count ? matched : nil)
        }
    }

    /// Calls `body` with every entity (discovery of types and attributes).
    func forEach(_ body: (Entity) -> Void) {
        state.withLock { s in for case let entity? in s.slots { body(entity) } }
    }
}

/// What a query selects (clause 5.7.2): ids, id pattern, type selector, attributes present, `q`, geo-query.
struct EntityFilter {
    var ids: [String]?
    var idPattern: Regex<AnyRegexOutput>?
    var types: TypeExpression?
    /// Expanded names: entities with at least one of them.
    var attributes: Set<String>?
    var q: Query?
    var geo: GeoQuery?

    func matches(_ entity: Entity) -> Bool {
        if let ids, !ids.contains(entity.id) { return false }
        if let types, !types.matches(entity.types) { return false }
        if let idPattern, (try? idPattern.firstMatch(in: entity.id)) == nil { return false }
        if let attributes, !attributes.contains(where: { entity.attributes[$0] != nil }) { return false }
        if let q, !q.matches(entity) { return false }
        if let geo {
            guard let instances = entity.attributes[geo.property],
                  instances.contains(where: { $0.geometry.map(geo.matches) ?? false }) else { return false }
        }
        return true
    }
}
