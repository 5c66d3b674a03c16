import GemelloCore
/// A GeoJSON geometry (RFC 7946) in WGS84 `[longitude, latitude]`, as GeoProperties and
/// geo-queries carry it.
public enum Geometry: Sendable, Equatable {
    public struct Position: Sendable, Equatable {
        public var longitude: Double
        public var latitude: Double
        public init(longitude: Double, latitude: Double) {
            self.longitude = longitude
            self.latitude = latitude
        }
    }

    case point(Position)
    case multiPoint([Position])
    case lineString([Position])
    case multiLineString([[Position]])
    /// Outer ring first, then holes; each ring closed (first == last).
    case polygon([[Position]])
    case multiPolygon([[[Position]]])

    /// Parses a GeoJSON geometry object; nil when it is not one (wrong type, bad coordinates,
    /// latitude out of range, unclosed ring, too few positions).
    public init?(geoJSON: JSON) {
        guard let type = geoJSON["type"]?.stringValue, let coordinates = geoJSON["coordinates"] else { return nil }
        self.init(type: type, coordinates: coordinates)
    }

    public init?(type: String, coordinates: JSON) {
        func position(_ j: JSON) -> Position? {
            guard let a = j.arrayValue, a.count == 2 || a.count == 3, let lon = a[0].numberValue, let lat = a[1].numberValue,
                  (-180...180).contains(lon), (-90...90).contains(lat) else { return nil }
            return Position(longitude: lon, latitude: lat)
        }
        func positions(_ j: JSON, min: Int) -> [Position]? {
            guard let a = j.arrayValue, a.count >= min else { return nil }
            var out: [Position] = []
            for p in a { guard let q = position(p) else { return nil }; out.append(q) }
            return out
        }
        func rings(_ j: JSON) -> [[Position]]? {
            guard let a = j.arrayValue, !a.isEmpty else { return nil }
            var out: [[Position]] = []
            for r in a {
                guard let ring = positions(r, min: 4), ring.first == ring.last else { return nil }
                out.append(ring)
            }
            return out
        }
        switch type {
        case "Point": guard let p = position(coordinates) else { return nil }; self = .point(p)
        case "MultiPoint": guard let p = positions(coordinates, min: 1) else { return nil }; self = .multiPoint(p)
        case "LineString": guard let p = positions(coordinates, min: 2) else { return nil }; self = .lineString(p)
        case "MultiLineString":
            guard let a = coordinates.arrayValue, !a.isEmpty else { return nil }
            var lines: [[Position]] = []
            for l in a { guard let p = positions(l, min: 2) else { return nil }; lines.append(p) }
            self = .multiLineString(lines)
        case "Polygon": guard let r = rings(coordinates) else { return nil }; self = .polygon(r)
        case "MultiPolygon":
            guard let a = coordinates.arrayValue, !a.isEmpty else { return nil }
            var polygons: [[[Position]]] = []
            for p in a { guard let r = rings(p) else { return nil }; polygons.append(r) }
            self = .multiPolygon(polygons)
        default: return nil
        }
    }

    /// Every vertex.
    var positions: [Position] {
        switch self {
        case .point(let p): [p]
        case .multiPoint(let ps), .lineString(let ps): ps
        case .multiLineString(let ls): ls.flatMap { $0 }
        case .polygon(let rs): rs.flatMap { $0 }
        case .multiPolygon(let ps): ps.flatMap { $0.flatMap { $0 } }
        }
    }

    /// Every segment (lines and polygon rings).
    var segments: [(Position, Position)] {
        func pairs(_ ps: [Position]) -> [(Position, Position)] {
            ps.count < 2 ? [] : (0..<(ps.count - 1)).map { (ps[$0], ps[$0 + 1]) }
        }
        switch self {
        case .point, .multiPoint: return []
        case .lineString(let ps): return pairs(ps)
        case .multiLineString(let ls): return ls.flatMap(pairs)
        case .polygon(let rs): return rs.flatMap(pairs)
        case .multiPolygon(let ps): return ps.flatMap { $0.flatMap(pairs) }
        }
    }

    /// Polygons as lists of rings (outer first).
    var areas: [[[Position]]] {
        switch self {
        case .polygon(let rs): [rs]
        case .multiPolygon(let ps): ps
        default: []
        }
    }

    /// Bounding box (west, south, east, north).
    public var boundingBox: (west: Double, south: Double, east: Double, north: Double) {
        let ps = positions
        var box = (west: Double.infinity, south: Double.infinity, east: -Double.infinity, north: -Double.infinity)
        for p in ps {
            box.west = min(box.west, p.longitude); box.east = max(box.east, p.longitude)
            box.south = min(box.south, p.latitude); box.north = max(box.north, p.latitude)
        }
        return box
    }
}
