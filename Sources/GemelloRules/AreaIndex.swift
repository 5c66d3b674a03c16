import Foundation
import GemelloCore

/// Named areas for alerts: the comuni of the Città Metropolitana di Milano from
/// `../shared/geodata/milano-comuni.geojson` (ISTAT codes, CC BY 4.0, credit "ISTAT, openpolis"),
/// or any GeoJSON FeatureCollection of Polygons with `name` and `com_istat_code` properties.
///
/// Rules name an area by comune (`area: {comune: Milano}` or its ISTAT code); every alert whose
/// location lies in a comune gets its ISTAT code as a CAP `geocode` and its name in `areaDesc`.
/// Outlines are simplified (Douglas–Peucker, about 50 m) so a CAP polygon stays a few dozen points.
public struct AreaIndex: Sendable {
    public struct Area: Sendable, Equatable {
        public var name: String
        /// ISTAT code (`015146` for Milano).
        public var code: String
        /// The outline as it is in the file (for containment), and simplified (for CAP).
        public var ring: [AlertRule.Point]
        public var simplified: [AlertRule.Point]
        let box: (minLat: Double, maxLat: Double, minLon: Double, maxLon: Double)

        public static func == (a: Area, b: Area) -> Bool { a.code == b.code }
    }

    public let areas: [Area]
    public let path: String

    public init(areas: [Area], path: String = "") {
        self.areas = areas
        self.path = path
    }

    /// Reads a GeoJSON FeatureCollection of (Multi)Polygons; the outer ring of each polygon counts.
    public static func load(path: String) throws(CoreError) -> AreaIndex {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CoreError(.invalidConfiguration, "cannot read the area file", file: path,
                            fix: "point alerts.geodata at the comuni GeoJSON (../shared/geodata/milano-comuni.geojson)")
        }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let features = root["features"] as? [[String: Any]] else {
            throw CoreError(.invalidConfiguration, "not a GeoJSON FeatureCollection", file: path, fix: "use a GeoJSON file of polygons")
        }
        var areas: [Area] = []
        for feature in features {
            let properties = feature["properties"] as? [String: Any] ?? [:]
            guard let name = properties["name"] as? String, let geometry = feature["geometry"] as? [String: Any],
                  let type = geometry["type"] as? String else { continue }
            let code = properties["com_istat_code"] as? String ?? name
            var rings: [[Any]] = []
            if type == "Polygon", let coordinates = geometry["coordinates"] as? [[Any]], let outer = coordinates.first {
                rings = [outer]
            } else if type == "MultiPolygon", let polygons = geometry["coordinates"] as? [[[Any]]] {
                rings = polygons.compactMap(\.first)
            }
            for ring in rings {
                let points = ring.compactMap { pair -> AlertRule.Point? in
                    guard let p = pair as? [Double], p.count >= 2 else { return nil }
                    return AlertRule.Point(latitude: p[1], longitude: p[0])
                }
                guard points.count >= 4 else { continue }
                areas.append(Self.area(name: name, code: code, ring: points))
            }
        }
        guard !areas.isEmpty else {
            throw CoreError(.invalidConfiguration, "no polygon with a name in it", file: path, fix: "use a GeoJSON file of named polygons")
        }
        return AreaIndex(areas: areas, path: path)
    }

    static func area(name: String, code: String, ring: [AlertRule.Point]) -> Area {
        var simplified = simplify(ring, tolerance: 0.0005)
        if simplified.first != simplified.last, let first = simplified.first { simplified.append(first) }
        let lats = ring.map(\.latitude), lons = ring.map(\.longitude)
        return Area(name: name, code: code, ring: ring, simplified: simplified,
                    box: (lats.min()!, lats.max()!, lons.min()!, lons.max()!))
    }

    /// The area named `name` (case-insensitive) or with that ISTAT code.
    public func named(_ text: String) -> Area? {
        areas.first { $0.code == text } ?? areas.first { $0.name.caseInsensitiveCompare(text) == .orderedSame }
    }

    /// The area a point lies in.
    public func containing(_ p: AlertRule.Point) -> Area? {
        areas.first { a in
            p.latitude >= a.box.minLat && p.latitude <= a.box.maxLat && p.longitude >= a.box.minLon && p.longitude <= a.box.maxLon
                && Geometry.contains(a.ring, p)
        }
    }

    /// Douglas–Peucker in degrees (planar: fine at a city's scale).
    static func simplify(_ points: [AlertRule.Point], tolerance: Double) -> [AlertRule.Point] {
        guard points.count > 3 else { return points }
        var keep = Array(repeating: false, count: points.count)
        keep[0] = true
        keep[points.count - 1] = true
        var stack = [(0, points.count - 1)]
        while let (a, b) = stack.popLast() {
            guard b > a + 1 else { continue }
            var worst = 0.0, index = a
            for i in (a + 1)..<b {
                let d = distance(points[i], points[a], points[b])
                if d > worst { (worst, index) = (d, i) }
            }
            if worst > tolerance {
                keep[index] = true
                stack.append((a, index))
                stack.append((index, b))
            }
        }
        return points.indices.filter { keep[$0] }.map { points[$0] }
    }

    static func distance(_ p: AlertRule.Point, _ a: AlertRule.Point, _ b: AlertRule.Point) -> Double {
        let (x, y) = (p.longitude, p.latitude), (x1, y1) = (a.longitude, a.latitude), (x2, y2) = (b.longitude, b.latitude)
        let dx = x2 - x1, dy = y2 - y1
        let length = dx * dx + dy * dy
        guard length > 0 else { return ((x - x1) * (x - x1) + (y - y1) * (y - y1)).squareRoot() }
        let t = max(0, min(1, ((x - x1) * dx + (y - y1) * dy) / length))
        let (px, py) = (x1 + t * dx, y1 + t * dy)
        return ((x - px) * (x - px) + (y - py) * (y - py)).squareRoot()
    }
}
