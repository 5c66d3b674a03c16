import Foundation
import GemelloNGSILD

/// Columns beside the type index, so that the common queries of a large twin do not visit every
/// entity of a type: per (type, attribute) the numeric value of each entity (for `q` terms such
/// as `temperature>30`) and per (type, GeoProperty) its point (for geo-queries). Positions follow
/// the type's slot list. A column is built on the first query that can use it and kept current
/// by every write; NaN means "not a plain number/point here: check the entity itself". A column
/// only narrows the candidates: every candidate is still checked with the full filter.
extension EntityIndex {
    struct Columns {
        /// "type \u{0} attribute" → values aligned with `byType[type]`.
        var numbers: [String: [Double]] = [:]
        /// "type \u{0} geoproperty" → (longitude, latitude) aligned with `byType[type]`.
        var points: [String: [(Double, Double)]] = [:]
    }

    static func key(_ type: String, _ attribute: String) -> String { type + "\u{0}" + attribute }

    static func number(_ entity: Entity?, _ attribute: String) -> Double {
        guard let a = entity?.attributes[attribute], a.count == 1, case .number(let v) = a[0].value else { return .nan }
        return v
    }

    static func point(_ entity: Entity?, _ property: String) -> (Double, Double) {
        guard let a = entity?.attributes[property], a.count == 1, case .point(let p)? = a[0].geometry else { return (.nan, .nan) }
        return (p.longitude, p.latitude)
    }

    /// Keeps the columns of `entity`'s types in step after it was written at `slot`; `inserted`:
    /// the slot was inserted into the type list at that position (not appended or replaced).
    static func updateColumns(_ s: inout State, slot: Int, entity: Entity) {
        guard !s.columns.numbers.isEmpty || !s.columns.points.isEmpty else { return }
        for type in entity.types {
            guard let list = s.byType[type], let position = position(of: slot, in: list) else { continue }
            for key in s.columns.numbers.keys where key.hasPrefix(type + "\u{0}") {
                let attribute = String(key.dropFirst(type.count + 1))
                s.columns.numbers[key]?[position] = number(entity, attribute)
            }
            for key in s.columns.points.keys where key.hasPrefix(type + "\u{0}") {
                let property = String(key.dropFirst(type.count + 1))
                s.columns.points[key]?[position] = point(entity, property)
            }
        }
    }

    /// Called when `slot` was added to `type`'s list at `position`.
    static func insertColumns(_ s: inout State, type: String, position: Int) {
        for key in s.columns.numbers.keys where key.hasPrefix(type + "\u{0}") { s.columns.numbers[key]?.insert(.nan, at: position) }
        for key in s.columns.points.keys where key.hasPrefix(type + "\u{0}") { s.columns.points[key]?.insert((.nan, .nan), at: position) }
    }

    static func position(of slot: Int, in list: [Int]) -> Int? {
        var low = 0, high = list.count
        while low < high {
            let mid = (low + high) / 2
            if list[mid] < slot { low = mid + 1 } else { high = mid }
        }
        return low < list.count && list[low] == slot ? low : nil
    }

    /// What a query of one type can take from the columns: a numeric test and/or a bounding box.
    struct Narrowing {
        var numberKey: String?
        var test: ((Double) -> Bool)?
        var pointKey: String?
        var box: (west: Double, south: Double, east: Double, north: Double)?
    }

    static func narrowing(_ filter: EntityFilter, type: String) -> Narrowing {
        var n = Narrowing()
        if let q = filter.q, let (attribute, test) = numericTest(q) {
            n.numberKey = key(type, attribute)
            n.test = test
        }
        if let geo = filter.geo, let box = boundingBox(geo) {
            n.pointKey = key(type, geo.property)
            n.box = box
        }
        return n
    }

    /// A top-level numeric comparison of a plain attribute (alone, or one of an `and`).
    static func numericTest(_ q: Query) -> (String, (Double) -> Bool)? {
        switch q {
        case .and(let items):
            for item in items { if let t = numericTest(item) { return t } }
            return nil
        case .or: return nil
        case .term(let term):
            guard term.path.subAttributes.isEmpty, term.path.members.isEmpty else { return nil }
            let attribute = term.path.attribute
            switch term.operation {
            case .greater(.number(let v)): return (attribute, { $0 > v })
            case .greaterOrEqual(.number(let v)): return (attribute, { $0 >= v })
            case .less(.number(let v)): return (attribute, { $0 < v })
            case .lessOrEqual(.number(let v)): return (attribute, { $0 <= v })
            case .equal(let values) where values.allSatisfy({ if case .number = $0 { true } else { false } }):
                let numbers = values.compactMap { if case .number(let n) = $0 { n } else { nil } }
                return (attribute, { numbers.contains($0) })
            case .range(.number(let low), .number(let high), negated: false): return (attribute, { $0 >= low && $0 <= high })
            default: return nil
            }
        }
    }

    /// A box that holds every point the geo-query can match (nil: no such box, e.g. disjoint).
    static func boundingBox(_ geo: GeoQuery) -> (west: Double, south: Double, east: Double, north: Double)? {
        switch geo.relation {
        case .near(let maxDistance?, _):
            guard case .point(let p) = geo.geometry else { return nil }
            let dLat = maxDistance / 111_000 * 1.01
            let cosLat = max(0.01, cos(p.latitude * Double.pi / 180))
            let dLon = dLat / cosLat
            return (p.longitude - dLon, p.latitude - dLat, p.longitude + dLon, p.latitude + dLat)
        case .within, .intersects, .equals, .overlaps, .contains:
            let b = geo.geometry.boundingBox
            return (b.west, b.south, b.east, b.north)
        default:
            return nil
        }
    }
}
