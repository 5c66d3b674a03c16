import GemelloCore
extension Query {
    /// Whether `entity` satisfies the query.
    public func matches(_ entity: Entity) -> Bool {
        switch self {
        case .and(let qs): return qs.allSatisfy { $0.matches(entity) }
        case .or(let qs): return qs.contains { $0.matches(entity) }
        case .term(let t): return t.matches(entity)
        }
    }
}

extension Query.Term {
    enum Target {
        case json(JSON)
        case time(Int64)
    }

    func matches(_ entity: Entity) -> Bool {
        guard let instances = entity.attributes[path.attribute] else { return false }
        for instance in instances {
            guard let target = target(in: instance) else { continue }
            if Self.test(operation, target) { return true }
        }
        return false
    }

    /// The value the path designates in one attribute instance, if present.
    func target(in attribute: Attribute) -> Target? {
        var current: Target
        if let first = path.subAttributes.first {
            switch first {
            case "observedAt": guard let t = attribute.observedAt else { return nil }; current = .time(t)
            case "createdAt": current = .time(attribute.createdAt)
            case "modifiedAt": current = .time(attribute.modifiedAt)
            case "unitCode": guard let u = attribute.unitCode else { return nil }; current = .json(.string(u))
            case "datasetId": guard let d = attribute.datasetId else { return nil }; current = .json(.string(d))
            default:
                guard var node = attribute.sub[first] else { return nil }
                for name in path.subAttributes.dropFirst() {
                    if QueryParser.members.contains(name) {
                        guard let member = node[name] else { return nil }
                        node = .object(["value": member])
                        continue
                    }
                    guard let next = node[name] else { return nil }
                    node = next
                }
                guard let value = node["value"] ?? node["object"] ?? node["languageMap"] else { return nil }
                current = .json(value)
            }
        } else {
            current = .json(attribute.value)
        }
        for member in path.members {
            guard case .json(let json) = current, let next = json[member] else { return nil }
            current = .json(next)
        }
        return current
    }

    static func test(_ operation: Query.Operation, _ target: Target) -> Bool {
        switch operation {
        case .exists: return true
        case .equal(let values): return anyElement(target) { t in values.contains { compare(t, $0) == 0 } }
        case .unequal(let values): return !anyElement(target) { t in values.contains { compare(t, $0) == 0 } }
        case .range(let low, let high, let negated):
            let inside = anyElement(target) { t in
                guard let a = compare(t, low), let b = compare(t, high) else { return false }
                return a >= 0 && b <= 0
            }
            return inside != negated
        case .greater(let v): return anyElement(target) { (compare($0, v) ?? -2) > 0 }
        case .greaterOrEqual(let v): return anyElement(target) { (compare($0, v) ?? -2) >= 0 }
        case .less(let v): return anyElement(target) { (compare($0, v) ?? 2) < 0 }
        case .lessOrEqual(let v): return anyElement(target) { (compare($0, v) ?? 2) <= 0 }
        case .matches(let regex, let negated):
            let hit = anyElement(target) { t in
                guard case .json(.string(let s)) = t else { return false }
                return (try? regex.firstMatch(in: s)) != nil
            }
            return hit != negated
        }
    }

    /// A target that is an array matches when one of its elements does (Orion-LD's rule).
    static func anyElement(_ target: Target, _ test: (Target) -> Bool) -> Bool {
        if case .json(.array(let items)) = target { return items.contains { test(.json($0)) } }
        return test(target)
    }

    /// -1, 0, 1, or nil when the two cannot be compared.
    static func compare(_ target: Target, _ value: Query.Value) -> Int? {
        func order<T: Comparable>(_ a: T, _ b: T) -> Int { a < b ? -1 : (a == b ? 0 : 1) }
        switch (target, value) {
        case (.time(let t), .dateTime(let v)): return order(t, v)
        case (.time(let t), .string(let s)), (.time(let t), .uri(let s)):
            guard let v = DateTime.milliseconds(s) else { return nil }
            return order(t, v)
        case (.time, _): return nil
        case (.json(let json), _):
            switch (json, value) {
            case (.number(let a), .number(let b)): return order(a, b)
            case (.bool(let a), .bool(let b)): return a == b ? 0 : nil
            case (.string(let a), .string(let b)), (.string(let a), .uri(let b)): return order(a, b)
            case (.string(let a), .dateTime(let b)):
                guard let t = DateTime.milliseconds(a) else { return nil }
                return order(t, b)
            case (.object(let o), .dateTime):
                // A typed literal {"@type": "DateTime", "@value": "..."}.
                guard let s = o["@value"]?.stringValue, let t = DateTime.milliseconds(s) else { return nil }
                return compare(.time(t), value)
            default: return nil
            }
        }
    }
}
