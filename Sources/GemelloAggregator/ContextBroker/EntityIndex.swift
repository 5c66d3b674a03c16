import GemelloNGSILD
import Synchronization

/// Every entity of the twin in memory, in creation order, with an index by type: what queries
/// scan. Writes go through ``ContextBroker`` (which persists first); this type only indexes.
///
/// Creation order is the order of slots, so pagination with `offset`/`limit` is stable and a
/// query that needs no count stops after `offset + limit` matches.
///
/// Queries scan a snapshot taken under the lock (the state's arrays and dictionaries are
/// copy-on-write, so taking it is O(1)): scans run in parallel and never hold up writers; a
/// writer that changes the state while a snapshot is alive pays one copy, so writes come in batches.
final class EntityIndex: Sendable {
    struct State {
        var slots: [Entity?] = []
        var slotOf: [String: Int] = [:]
        /// Expanded type → slots holding it, ascending (may point at removed or retyped slots).
        var byType: [String: [Int]] = [:]
        var removed = 0
        /// Numbers and points per type (`EntityIndex+Columns.swift`).
        var columns = Columns()
    }

    private let state = Mutex(State())

    var count: Int { state.withLock { $0.slotOf.count } }

    func entity(_ id: String) -> Entity? {
        state.withLock { s in s.slotOf[id].flatMap { s.slots[$0] } }
    }

    /// Adds or replaces entities (a replaced entity keeps its place in the order).
    func put(_ entities: [Entity]) {
        state.withLock { s in
            for entity in entities {
                if let slot = s.slotOf[entity.id] {
                    let old = s.slots[slot]?.types ?? []
                    s.slots[slot] = entity
                    for type in entity.types where !old.contains(type) { Self.addType(type, slot: slot, in: &s) }
                    Self.updateColumns(&s, slot: slot, entity: entity)
                } else {
                    Self.append(entity, in: &s)
                }
            }
        }
    }

    /// Changes entities in place under one hold of the lock: `change` gets each id's current
    /// entity (or nil) and returns the new one.
    func update(_ ids: [String], _ change: (Int, Entity?) -> Entity) {
        state.withLock { s in
            for (i, id) in ids.enumerated() {
                let current = s.slotOf[id].flatMap { s.slots[$0] }
                let next = change(i, current)
                if let slot = s.slotOf[id] {
                    for type in next.types where !(current?.types.contains(type) ?? false) { Self.addType(type, slot: slot, in: &s) }
                    s.slots[slot] = next
                    Self.updateColumns(&s, slot: slot, entity: next)
                } else {
                    Self.append(next, in: &s)
                }
            }
        }
    }

    private static func append(_ entity: Entity, in s: inout State) {
        let slot = s.slots.count
        s.slots.append(entity)
        s.slotOf[entity.id] = slot
        for type in entity.types {
            s.byType[type, default: []].append(slot)
            insertColumns(&s, type: type, position: s.byType[type]!.count - 1)
        }
        updateColumns(&s, slot: slot, entity: entity)
    }

    private static func addType(_ type: String, slot: Int, in s: inout State) {
        var list = s.byType[type, default: []]
        let position: Int
        if let i = list.firstIndex(where: { $0 >= slot }) {
            if list[i] == slot { return }
            list.insert(slot, at: i)
            position = i
        } else {
            list.append(slot)
            position = list.count - 1
        }
        s.byType[type] = list
        insertColumns(&s, type: type, position: position)
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
        let single = filter.ids == nil ? filter.types?.alternatives.flatMap { $0.count == 1 ? $0[0] : nil } : nil
        let narrowing = single.map { Self.narrowing(filter, type: $0) }
        let s = state.withLock { s in
            // Build the columns this query can use (once; writes keep them current).
            if let single, let narrowing, let list = s.byType[single] {
                if let key = narrowing.numberKey, s.columns.numbers[key] == nil {
                    let attribute = String(key.dropFirst(single.count + 1))
                    s.columns.numbers[key] = list.map { Self.number(s.slots[$0], attribute) }
                }
                if let key = narrowing.pointKey, s.columns.points[key] == nil {
                    let property = String(key.dropFirst(single.count + 1))
                    s.columns.points[key] = list.map { Self.point(s.slots[$0], property) }
                }
            }
            return s
        }
        do {
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
            } else if let single, let narrowing {
                // One type: its slot list is in slot (creation) order already; the columns skip
                // entities that cannot match.
                let list = s.byType[single] ?? []
                // Plain locals outside the loop: optional bindings inside it would retain per entity.
                let numbers: [Double] = narrowing.numberKey.flatMap { s.columns.numbers[$0] } ?? []
                let test: (Double) -> Bool = narrowing.test ?? { _ in true }
                let points: [(Double, Double)] = narrowing.pointKey.flatMap { s.columns.points[$0] } ?? []
                let box = narrowing.box ?? (west: -.infinity, south: -.infinity, east: .infinity, north: .infinity)
                let useNumbers = numbers.count == list.count, usePoints = points.count == list.count
                for i in list.indices {
                    if useNumbers {
                        let v = numbers[i]
                        if !v.isNaN && !test(v) { continue }
                    }
                    if usePoints {
                        let (x, y) = points[i]
                        if !x.isNaN && (x < box.west || x > box.east || y < box.south || y > box.north) { continue }
                    }
                    let slot = list[i]
                    guard let entity = s.slots[slot] else { continue }
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

    /// Calls `body` with every entity of a snapshot (discovery of types and attributes).
    func forEach(_ body: (Entity) -> Void) {
        let s = state.withLock { $0 }
        for case let entity? in s.slots { body(entity) }
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
