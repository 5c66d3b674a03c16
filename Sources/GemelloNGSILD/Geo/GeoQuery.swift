import GemelloCore
/// A geo-query (clause 4.10): `georel`, `geometry`, `coordinates`, `geoproperty`.
public struct GeoQuery: Sendable, Equatable {
    public enum Relation: Sendable, Equatable {
        case near(maxDistance: Double?, minDistance: Double?)
        case within, contains, intersects, equals, disjoint, overlaps
    }

    public var relation: Relation
    public var geometry: Geometry
    /// Expanded name of the GeoProperty to test (`location` by default).
    public var property: String

    public init(relation: Relation, geometry: Geometry, property: String) {
        self.relation = relation
        self.geometry = geometry
        self.property = property
    }

    /// Parses the query parameters (`georel` as in `near;maxDistance==2000`, `geometry`,
    /// `coordinates` as JSON text); `property` already expanded.
    public static func parse(georel: String, geometry: String, coordinates: JSON, property: String) throws(NGSILDError) -> GeoQuery {
        let parts = georel.split(separator: ";").map(String.init)
        guard let name = parts.first else { throw .badRequest("georel is empty; write e.g. near;maxDistance==2000 or within") }
        let relation: Relation
        switch name {
        case "near":
            var maxD: Double?, minD: Double?
            for modifier in parts.dropFirst() {
                let kv = modifier.split(separator: "=", omittingEmptySubsequences: false).map(String.init)
                guard kv.count == 3, kv[1].isEmpty, let d = Double(kv[2]), d >= 0 else {
                    throw .badRequest("georel modifier \"\(modifier)\" is not maxDistance==<metres> or minDistance==<metres>")
                }
                switch kv[0] {
                case "maxDistance": maxD = d
                case "minDistance": minD = d
                default: throw .badRequest("unknown georel modifier \"\(kv[0])\"; near takes maxDistance or minDistance")
                }
            }
            guard maxD != nil || minD != nil else { throw .badRequest("georel near needs maxDistance==<metres> or minDistance==<metres>") }
            relation = .near(maxDistance: maxD, minDistance: minD)
        case "within": relation = .within
        case "contains": relation = .contains
        case "intersects": relation = .intersects
        case "equals": relation = .equals
        case "disjoint": relation = .disjoint
        case "overlaps": relation = .overlaps
        default:
            throw .badRequest("unknown georel \"\(name)\"; use near, within, contains, intersects, equals, disjoint or overlaps")
        }
        guard let shape = Geometry(type: geometry, coordinates: coordinates) else {
            throw .badRequest("geometry \(geometry) with coordinates \(coordinates.serialized) is not a valid GeoJSON geometry "
                              + "([longitude, latitude] positions; polygons closed)")
        }
        if case .near = relation, case .point = shape {} else if case .near = relation {
            throw .badRequest("georel near takes a Point geometry")
        }
        return GeoQuery(relation: relation, geometry: shape, property: property)
    }

    /// Whether an entity's geometry satisfies the query.
    public func matches(_ target: Geometry) -> Bool {
        switch relation {
        case .near(let maxD, let minD):
            guard case .point(let p) = geometry else { return false }
            let d = target.distance(to: p)
            if let maxD, d > maxD { return false }
            if let minD, d < minD { return false }
            return true
        case .within: return target.isWithin(geometry)
        case .contains: return target.contains(geometry)
        case .intersects: return target.intersects(geometry)
        case .equals: return target == geometry
        case .disjoint: return !target.intersects(geometry)
        case .overlaps: return target.overlaps(geometry)
        }
    }
}
