import GemelloCore
import GemelloNGSILD
import Testing

/// Geo-queries (clause 4.10) around Milan.
@Suite struct GeoTests {
    static let duomo = Geometry.point(.init(longitude: 9.1919, latitude: 45.4642))
    static let castello = Geometry.point(.init(longitude: 9.1794, latitude: 45.4705))
    /// A box around the city centre.
    static let centre = Geometry(type: "Polygon", coordinates: [[[9.17, 45.45], [9.21, 45.45], [9.21, 45.48], [9.17, 45.48], [9.17, 45.45]]])!
    static let navigli = Geometry(type: "LineString", coordinates: [[9.16, 45.44], [9.18, 45.452]])!

    @Test func distancesAreGreatCircleMetres() {
        guard case .point(let a) = Self.duomo, case .point(let b) = Self.castello else { return }
        let d = Geometry.distance(a, b)
        #expect(d > 1150 && d < 1250)  // ~1.2 km
    }

    @Test func nearWithMaxAndMinDistance() throws {
        let near = try GeoQuery.parse(georel: "near;maxDistance==1500", geometry: "Point", coordinates: [9.1919, 45.4642], property: "loc")
        #expect(near.matches(Self.castello))
        let far = try GeoQuery.parse(georel: "near;minDistance==1500", geometry: "Point", coordinates: [9.1919, 45.4642], property: "loc")
        #expect(!far.matches(Self.castello))
        #expect(try GeoQuery.parse(georel: "near;maxDistance==100", geometry: "Point", coordinates: [9.17, 45.4465], property: "l")
            .matches(Self.navigli))  // distance to a line, not to its vertices
    }

    @Test func relationsBetweenPointsLinesAndPolygons() throws {
        func q(_ rel: String, _ geometry: String, _ coordinates: JSON) throws -> GeoQuery {
            try GeoQuery.parse(georel: rel, geometry: geometry, coordinates: coordinates, property: "l")
        }
        let box: JSON = [[[9.17, 45.45], [9.21, 45.45], [9.21, 45.48], [9.17, 45.48], [9.17, 45.45]]]
        #expect(try q("within", "Polygon", box).matches(Self.duomo))
        #expect(try q("intersects", "Polygon", box).matches(Self.navigli))
        #expect(try !q("within", "Polygon", box).matches(Self.navigli))
        #expect(try q("disjoint", "Polygon", [[[9.0, 45.0], [9.1, 45.0], [9.1, 45.1], [9.0, 45.0]]]).matches(Self.duomo))
        #expect(try q("contains", "Point", [9.1919, 45.4642]).matches(Self.centre))
        #expect(try q("equals", "Point", [9.1919, 45.4642]).matches(Self.duomo))
        #expect(try q("overlaps", "Polygon", [[[9.2, 45.46], [9.3, 45.46], [9.3, 45.5], [9.2, 45.5], [9.2, 45.46]]]).matches(Self.centre))
        #expect(try q("intersects", "LineString", [[9.1, 45.465], [9.3, 45.465]]).matches(Self.centre))
    }

    @Test func badGeoQueriesAreRefused() {
        #expect(throws: NGSILDError.self) { try GeoQuery.parse(georel: "near", geometry: "Point", coordinates: [9, 45], property: "l") }
        #expect(throws: NGSILDError.self) { try GeoQuery.parse(georel: "around", geometry: "Point", coordinates: [9, 45], property: "l") }
        #expect(throws: NGSILDError.self) { try GeoQuery.parse(georel: "within", geometry: "Polygon", coordinates: [[[9, 45], [9.1, 45], [9, 45.1]]], property: "l") }
        #expect(throws: NGSILDError.self) { try GeoQuery.parse(georel: "near;maxDistance==10", geometry: "Polygon", coordinates: [[[9, 45], [9.1, 45], [9, 45.1], [9, 45]]], property: "l") }
        #expect(throws: NGSILDError.self) { try GeoQuery.parse(georel: "within", geometry: "Point", coordinates: [200, 45], property: "l") }
    }
}
