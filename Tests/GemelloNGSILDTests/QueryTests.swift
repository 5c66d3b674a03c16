import GemelloCore
import GemelloNGSILD
import Testing

/// The query language (clause 4.9) on entities built from spec-style examples.
@Suite struct QueryTests {
    static let context = try! ContextResolver(loader: nil, now: { 0 }).core

    static func entity(_ body: JSON) throws -> Entity {
        try EntityParser(context: context, now: 0).entity(body)
    }

    static let car = try! entity([
        "id": "urn:ngsi-ld:Vehicle:A4567", "type": "Vehicle",
        "brandName": ["type": "Property", "value": "Mercedes"],
        "speed": ["type": "Property", "value": 55, "observedAt": "2017-07-29T12:05:02Z",
                  "reliability": ["type": "Property", "value": 0.7]],
        "isParked": ["type": "Relationship", "object": "urn:ngsi-ld:OffStreetParking:Downtown1",
                     "observedAt": "2017-07-29T12:00:04Z"],
        "address": ["type": "Property", "value": ["addressLocality": "Milano", "postalCode": "20121"]],
        "colors": ["type": "Property", "value": ["red", "white"]],
        "electric": ["type": "Property", "value": false],
        "inspected": ["type": "Property", "value": "2017-06-01T10:00:00Z"],
    ])

    static func matches(_ q: String) throws -> Bool {
        try Query.parse(q, expand: { context.expand($0) }).matches(car)
    }

    @Test(arguments: [
        ("speed>50", true), ("speed>55", false), ("speed>=55", true), ("speed<56;speed>54", true),
        ("speed==55", true), ("speed!=55", false), ("speed==50..60", true), ("speed==56..60", false), ("speed!=56..60", true),
        ("brandName==\"Mercedes\"", true), ("brandName!=\"Mercedes\"", false), ("brandName==\"Audi\",\"Mercedes\"", true),
        ("brandName~=(?i)merc", true), ("brandName!~=^Merc", false),
        ("isParked==urn:ngsi-ld:OffStreetParking:Downtown1", true), ("isParked==urn:ngsi-ld:OffStreetParking:Other", false),
        ("address[addressLocality]==\"Milano\"", true), ("address[postalCode]==\"20100\"", false),
        ("isParked.observedAt<2017-12-24T12:00:00Z", true), ("speed.observedAt>2017-07-29T12:05:03Z", false),
        ("speed.reliability>0.5", true), ("speed.reliability>0.9", false),
        ("colors==\"white\"", true), ("colors==\"blue\"", false),
        ("electric==false", true), ("electric==true", false),
        ("inspected>2017-01-01T00:00:00Z", true), ("inspected<2017-01-01T00:00:00Z", false),
        ("speed", true), ("fuel", false), ("fuel!=1", false),
        ("(speed>100|brandName==\"Mercedes\");electric==false", true),
        ("speed>100|brandName==\"Mercedes\";electric==true", false),
        ("speed>100|(brandName==\"Mercedes\";electric==false)", true),
    ])
    func evaluates(_ q: String, _ expected: Bool) throws {
        #expect(try Self.matches(q) == expected, "q=\(q)")
    }

    @Test(arguments: ["speed>", "(speed>1", "speed>1)", "speed>>1", "speed==\"open", "speed~=(", "brandName>true", ";", "a[b==1"])
    func refusesMalformedQueries(_ q: String) {
        do {
            _ = try Query.parse(q, expand: { Self.context.expand($0) })
            Issue.record("q=\(q) was accepted")
        } catch {
            #expect(error.kind == .badRequestData, "q=\(q)")
        }
    }

    @Test func typeSelectorsFollowClause4_17() throws {
        let expand = { (t: String) in "https://ex.org/" + t }
        let types = ["https://ex.org/Building", "https://ex.org/Home"]
        #expect(try TypeExpression.parse("Building", expand: expand).matches(types))
        #expect(try TypeExpression.parse("Vehicle,Home", expand: expand).matches(types))
        #expect(try TypeExpression.parse("(Building;Home)|Vehicle", expand: expand).matches(types))
        #expect(try !TypeExpression.parse("Building;Vehicle", expand: expand).matches(types))
        #expect(try TypeExpression.parse("Vehicle|Home", expand: expand).alternatives == ["https://ex.org/Vehicle", "https://ex.org/Home"])
        #expect(throws: NGSILDError.self) { try TypeExpression.parse("(Building", expand: expand) }
    }
}
