import GemelloCore
/// Spatial relations for NGSI-LD geo-queries (clause 4.10). Distances are great-circle metres
/// (haversine, mean Earth radius); containment and intersection are computed in the plane of
/// longitude/latitude, which is exact enough at the scale of a city (docs/ngsi-ld.md).
extension Geometry {
    static let earthRadius = 6_371_008.8

    /// Great-circle distance in metres.
    public static func distance(_ a: Position, _ b: Position) -> Double {
        let rad = Double.pi / 180
        let dLat = (b.latitude - a.latitude) * rad
        let dLon = (b.longitude - a.longitude) * rad
        let h = sin2(dLat / 2) + cosine(a.latitude * rad) * cosine(b.latitude * rad) * sin2(dLon / 2)
        return 2 * earthRadius * arcsine(min(1, h.squareRoot()))
    }

    /// Shortest distance in metres from this geometry to `point` (0 inside an area).
    public func distance(to point: Position) -> Double {
        if case .point(let p) = self { return Self.distance(p, point) }
        if areas.contains(where: { Self.inside(point, polygon: $0) }) { return 0 }
        var best = positions.map { Self.distance($0, point) }.min() ?? .infinity
        for (a, b) in segments { best = min(best, Self.distance(Self.closest(on: (a, b), to: point), point)) }
        return best
    }

    /// Whether every part of `self` lies inside `other` (an area), boundary included.
    public func isWithin(_ other: Geometry) -> Bool {
        let polygons = other.areas
        guard !polygons.isEmpty else { return self == other }
        for p in positions where !polygons.contains(where: { Self.inside(p, polygon: $0) }) { return false }
        // An edge of self that crosses an edge of other leaves it.
        for s in segments { for o in other.segments where Self.segmentsCross(s, o) { return false } }
        return true
    }

    public func contains(_ other: Geometry) -> Bool { other.isWithin(self) }

    public func intersects(_ other: Geometry) -> Bool {
        for p in positions where other.covers(p) { return true }
        for p in other.positions where covers(p) { return true }
        for s in segments { for o in other.segments where Self.segmentsTouch(s, o) { return true } }
        return false
    }

    /// Same dimension, they intersect, and neither contains the other.
    public func overlaps(_ other: Geometry) -> Bool {
        dimension == other.dimension && intersects(other) && !isWithin(other) && !other.isWithin(self)
    }

    var dimension: Int {
        switch self {
        case .point, .multiPoint: 0
        case .lineString, .multiLineString: 1
        case .polygon, .multiPolygon: 2
        }
    }

    /// Whether the point lies on or in this geometry.
    func covers(_ p: Position) -> Bool {
        switch self {
        case .point(let q): return q == p
        case .multiPoint(let qs): return qs.contains(p)
        default:
            if areas.contains(where: { Self.inside(p, polygon: $0) }) { return true }
            return segments.contains { Self.onSegment(p, $0) }
        }
    }

    /// Point in polygon (outer ring minus holes), boundary counted inside.
    static func inside(_ p: Position, polygon rings: [[Position]]) -> Bool {
        guard let outer = rings.first else { return false }
        func inRing(_ ring: [Position]) -> Bool {
            var inside = false
            var j = ring.count - 1
            for i in 0..<ring.count {
                let (a, b) = (ring[i], ring[j])
                if onSegment(p, (a, b)) { return true }
                if (a.latitude > p.latitude) != (b.latitude > p.latitude) {
                    let x = (b.longitude - a.longitude) * (p.latitude - a.latitude) / (b.latitude - a.latitude) + a.longitude
                    if p.longitude < x { inside.toggle() }
                }
                j = i
            }
            return inside
        }
        guard inRing(outer) else { return false }
        for hole in rings.dropFirst() where inRing(hole) && !hole.indices.dropLast().contains(where: { onSegment(p, (hole[$0], hole[$0 + 1])) }) {
            return false
        }
        return true
    }

    static func cross(_ o: Position, _ a: Position, _ b: Position) -> Double {
        (a.longitude - o.longitude) * (b.latitude - o.latitude) - (a.latitude - o.latitude) * (b.longitude - o.longitude)
    }

    static func onSegment(_ p: Position, _ s: (Position, Position)) -> Bool {
        let (a, b) = s
        guard abs(cross(a, b, p)) <= 1e-12 else { return false }
        return p.longitude >= min(a.longitude, b.longitude) - 1e-12 && p.longitude <= max(a.longitude, b.longitude) + 1e-12
            && p.latitude >= min(a.latitude, b.latitude) - 1e-12 && p.latitude <= max(a.latitude, b.latitude) + 1e-12
    }

    /// Proper crossing (interiors meet at one point).
    static func segmentsCross(_ s: (Position, Position), _ t: (Position, Position)) -> Bool {
        let d1 = cross(t.0, t.1, s.0), d2 = cross(t.0, t.1, s.1), d3 = cross(s.0, s.1, t.0), d4 = cross(s.0, s.1, t.1)
        return ((d1 > 1e-12 && d2 < -1e-12) || (d1 < -1e-12 && d2 > 1e-12)) && ((d3 > 1e-12 && d4 < -1e-12) || (d3 < -1e-12 && d4 > 1e-12))
    }

    static func segmentsTouch(_ s: (Position, Position), _ t: (Position, Position)) -> Bool {
        segmentsCross(s, t) || onSegment(s.0, t) || onSegment(s.1, t) || onSegment(t.0, s) || onSegment(t.1, s)
    }

    /// The point of segment `s` nearest to `p` (planar, scaled by latitude).
    static func closest(on s: (Position, Position), to p: Position) -> Position {
        let k = cosine(p.latitude * Double.pi / 180)
        let (ax, ay) = (s.0.longitude * k, s.0.latitude), (bx, by) = (s.1.longitude * k, s.1.latitude)
        let (px, py) = (p.longitude * k, p.latitude)
        let (dx, dy) = (bx - ax, by - ay)
        let length = dx * dx + dy * dy
        let t = length == 0 ? 0 : max(0, min(1, ((px - ax) * dx + (py - ay) * dy) / length))
        return Position(longitude: s.0.longitude + t * (s.1.longitude - s.0.longitude), latitude: s.0.latitude + t * (s.1.latitude - s.0.latitude))
    }
}

// Foundation-free trigonometry through the C library the Swift runtime links anyway.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@inline(__always) func sin2(_ x: Double) -> Double { let s = sin(x); return s * s }
@inline(__always) func cosine(_ x: Double) -> Double { cos(x) }
@inline(__always) func arcsine(_ x: Double) -> Double { asin(x) }
