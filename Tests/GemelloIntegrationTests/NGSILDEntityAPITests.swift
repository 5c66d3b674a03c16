import GemelloCore
import Foundation
import GemelloAggregator
import GemelloNGSILD
import GemelloTesting
import Testing

/// The entity API over HTTP, written from ETSI GS CIM 009 v1.8 clauses 5.6 and 5.7 (request,
/// exact expected reply), every reply shape validated with the ETSI JSON Schemas.
@Suite struct NGSILDEntityAPITests {
    static let building: JSON = [
        "id": "urn:ngsi-ld:Building:pirelli", "type": "Building",
        "name": ["type": "Property", "value": "Grattacielo Pirelli"],
        "height": ["type": "Property", "value": 127, "unitCode": "MTR", "observedAt": "2024-05-01T10:00:00Z"],
        "owner": ["type": "Relationship", "object": "urn:ngsi-ld:Organization:lombardia"],
        "location": ["type": "GeoProperty", "value": ["type": "Point", "coordinates": [9.2013, 45.4850]]],
    ]

    /// Clause 5.6.1 create and 5.7.1 retrieve: 201 with Location; the entity comes back as sent
    /// (normalized, times in UTC with milliseconds), with a Link header naming the core context.
    @Test func createThenRetrieve() async throws {
        try await TwinAPI.with { api in
            let created = try await api.call("POST", "/entities", Self.building)
            #expect(created.status == 201)
            #expect(created.header("Location") == "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:pirelli")
            let got = try await api.get("/entities/urn:ngsi-ld:Building:pirelli")
            #expect(got.status == 200)
            #expect(got.header("Content-Type") == "application/json")
            #expect(got.header("Link")?.contains("ngsi-ld-core-context-v1.8.jsonld") == true)
            var expected = Self.building
            expected["height"]?["observedAt"] = "2024-05-01T10:00:00.000Z"
            #expect(got.body == expected)
            try TwinAPI.expectValid("Entity", [got.body!])

            let again = try await api.call("POST", "/entities", Self.building)
            #expect(again.status == 409)
            #expect(again.body?["type"] == "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists")
            let missing = try await api.get("/entities/urn:ngsi-ld:Building:none")
            #expect(missing.status == 404)
            #expect(missing.body?["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound")
            #expect(missing.header("Content-Type") == "application/json")
        }
    }

    /// Clause 6.3.5/6.3.6: media types and the @context in a JSON-LD body.
    @Test func mediaTypesAndContexts() async throws {
        try await TwinAPI.with { api in
            var ld = Self.building
            ld["@context"] = [["ex": "https://example.org/ns#", "name": "ex:name"], "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"]
            #expect(try await api.call("POST", "/entities", ld, contentType: "application/ld+json").status == 201)
            // Without that context, "name" is another attribute (default-context), and comes back as its full IRI.
            let plain = try await api.get("/entities/urn:ngsi-ld:Building:pirelli")
            #expect(plain.body?["https://example.org/ns#name"]?["value"] == "Grattacielo Pirelli")
            #expect(plain.body?["name"] == nil)
            // Asked as JSON-LD with an inline-context-free request: the core context is in the body.
            let asLD = try await api.get("/entities/urn:ngsi-ld:Building:pirelli", accept: "application/ld+json")
            #expect(asLD.header("Content-Type") == "application/ld+json")
            #expect(asLD.body?["@context"] == "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld")
            // (The 2020 schema refuses full-IRI member names, which the spec itself returns; validate the rest.)
            let compactOnly = try await api.get("/entities/urn:ngsi-ld:Building:pirelli?attrs=height,owner,location", accept: "application/ld+json")
            try TwinAPI.expectValid("Entity", [compactOnly.body!])

            let wrongType = try await api.call("POST", "/entities", Self.building, contentType: "text/plain")
            #expect(wrongType.status == 415)
            let notAcceptable = try await api.get("/entities/urn:ngsi-ld:Building:pirelli", accept: "text/html")
            #expect(notAcceptable.status == 406)
            var jsonWithContext = Self.building
            jsonWithContext["@context"] = "https://example.org/c.jsonld"
            let refused = try await api.call("POST", "/entities", jsonWithContext)
            #expect(refused.status == 400 && refused.body?["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData")
            let ldWithoutContext = try await api.call("POST", "/entities", Self.building, contentType: "application/ld+json")
            #expect(ldWithoutContext.status == 400)
            let tenant = try await api.call("GET", "/entities?type=Building", headers: ["NGSILD-Tenant": "city"])
            #expect(tenant.status == 501 && tenant.body?["type"] == "https://uri.etsi.org/ngsi-ld/errors/NoMultiTenantSupport")
            let notJSON = try await api.call("POST", "/entities", nil, headers: ["Content-Type": "application/json"])
            #expect(notJSON.status == 400 && notJSON.body?["type"] == "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest")
        }
    }

    static func seed(_ api: TwinAPI, count: Int) async throws {
        var batch: [JSON] = []
        for i in 0..<count {
            batch.append([
                "id": .string("urn:ngsi-ld:Sensor:s\(i)"), "type": i % 2 == 0 ? "Sensor" : "Camera",
                "value": ["type": "Property", "value": .number(Double(i))],
                "status": ["type": "Property", "value": i % 3 == 0 ? "ok" : "fault"],
                "location": ["type": "GeoProperty", "value": ["type": "Point", "coordinates": [.number(9.1 + Double(i) * 0.01), 45.46]]],
            ])
        }
        let reply = try await api.call("POST", "/entityOperations/create", .array(batch))
        #expect(reply.status == 201)
        #expect(reply.body?.arrayValue?.count == count)
    }

    /// Clause 5.7.2 query entities: type, q, attrs, pagination, count, projection, geo, GeoJSON.
    @Test func queryEntities() async throws {
        try await TwinAPI.with { api in
            try await Self.seed(api, count: 30)
            func ids(_ reply: TwinAPI.Reply) -> [String] { reply.body?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? [] }

            let sensors = try await api.get("/entities?type=Sensor&q=value%3E20&count=true")
            #expect(ids(sensors) == ["urn:ngsi-ld:Sensor:s22", "urn:ngsi-ld:Sensor:s24", "urn:ngsi-ld:Sensor:s26", "urn:ngsi-ld:Sensor:s28"])
            #expect(sensors.header("NGSILD-Results-Count") == "4")
            try TwinAPI.expectValid("Entity", sensors.body!.arrayValue!)

            let either = try await api.get("/entities?type=Sensor,Camera&q=status==%22ok%22;value%3C10")
            #expect(ids(either) == ["urn:ngsi-ld:Sensor:s0", "urn:ngsi-ld:Sensor:s3", "urn:ngsi-ld:Sensor:s6", "urn:ngsi-ld:Sensor:s9"])

            // Default limit 20, then the next page.
            let page1 = try await api.get("/entities?idPattern=Sensor:s.*")
            let page2 = try await api.get("/entities?idPattern=Sensor:s.*&offset=20&limit=20")
            #expect(ids(page1).count == 20 && ids(page2).count == 10)
            #expect(Set(ids(page1)).isDisjoint(with: ids(page2)))
            let onlyCount = try await api.get("/entities?type=Camera&limit=0&count=true")
            #expect(onlyCount.body == [] && onlyCount.header("NGSILD-Results-Count") == "15")

            let tooMany = try await api.get("/entities?type=Sensor&limit=1001")
            #expect(tooMany.status == 403 && tooMany.body?["type"] == "https://uri.etsi.org/ngsi-ld/errors/TooManyResults")
            let unbounded = try await api.get("/entities")
            #expect(unbounded.status == 400 && unbounded.body?["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData")
            let badQ = try await api.get("/entities?type=Sensor&q=value%3E%3E1")
            #expect(badQ.status == 400)

            let listed = try await api.get("/entities?id=urn:ngsi-ld:Sensor:s1,urn:ngsi-ld:Sensor:s2&attrs=status&options=keyValues")
            #expect(listed.body == [["id": "urn:ngsi-ld:Sensor:s1", "type": "Camera", "status": "fault"],
                                    ["id": "urn:ngsi-ld:Sensor:s2", "type": "Sensor", "status": "fault"]])
            let picked = try await api.get("/entities?id=urn:ngsi-ld:Sensor:s1&pick=id,value&format=simplified")
            #expect(picked.body == [["id": "urn:ngsi-ld:Sensor:s1", "value": 1]])
            let omitted = try await api.get("/entities?id=urn:ngsi-ld:Sensor:s1&omit=location,status,value")
            #expect(omitted.body == [["id": "urn:ngsi-ld:Sensor:s1", "type": "Camera"]])

            // Sensors stand 0.01° (~780 m) apart in longitude: within 1 km of s10 lie s9, s10 and s11.
            let near = try await api.get("/entities?type=Sensor,Camera&georel=near;maxDistance==1000&geometry=Point&coordinates=%5B9.2,45.46%5D")
            #expect(Set(ids(near)) == ["urn:ngsi-ld:Sensor:s9", "urn:ngsi-ld:Sensor:s10", "urn:ngsi-ld:Sensor:s11"])
            let within = try await api.get("/entities?type=Sensor&georel=within&geometry=Polygon&coordinates="
                                           + "%5B%5B%5B9.095,45.4%5D,%5B9.125,45.4%5D,%5B9.125,45.5%5D,%5B9.095,45.5%5D,%5B9.095,45.4%5D%5D%5D")
            #expect(ids(within) == ["urn:ngsi-ld:Sensor:s0", "urn:ngsi-ld:Sensor:s2"])
            let badGeo = try await api.get("/entities?type=Sensor&georel=near&geometry=Point&coordinates=%5B9.2,45.46%5D")
            #expect(badGeo.status == 400)

            // The column index behind these queries follows later writes (values, new entities, moves).
            #expect(try await api.call("PATCH", "/entities/urn:ngsi-ld:Sensor:s22/attrs", ["value": 5]).status == 204)
            #expect(try await api.call("POST", "/entities", ["id": "urn:ngsi-ld:Sensor:late", "type": "Sensor", "value": 50,
                                                             "location": ["type": "Point", "coordinates": [9.2, 45.46]]]).status == 201)
            #expect(try await api.call("PATCH", "/entities/urn:ngsi-ld:Sensor:s0/attrs",
                                       ["location": ["type": "GeoProperty", "value": ["type": "Point", "coordinates": [9.2001, 45.4601]]]]).status == 204)
            let after = try await api.get("/entities?type=Sensor&q=value%3E20")
            #expect(ids(after) == ["urn:ngsi-ld:Sensor:s24", "urn:ngsi-ld:Sensor:s26", "urn:ngsi-ld:Sensor:s28", "urn:ngsi-ld:Sensor:late"])
            let nearAfter = try await api.get("/entities?type=Sensor&georel=near;maxDistance==100&geometry=Point&coordinates=%5B9.2,45.46%5D")
            #expect(ids(nearAfter) == ["urn:ngsi-ld:Sensor:s0", "urn:ngsi-ld:Sensor:s10", "urn:ngsi-ld:Sensor:late"])

            let features = try await api.get("/entities?id=urn:ngsi-ld:Sensor:s0&options=keyValues", accept: "application/geo+json")
            #expect(features.header("Content-Type") == "application/geo+json")
            #expect(features.body?["type"] == "FeatureCollection")
            let feature = features.body?["features"]?.arrayValue?.first
            #expect(feature?["geometry"] == ["type": "Point", "coordinates": [9.2001, 45.4601]])
            #expect(feature?["properties"]?["status"] == "ok")
        }
    }

    /// Clauses 5.6.2–5.6.5, 5.6.6, 5.6.17, 5.6.18: attribute update, append, partial update,
    /// delete, entity merge, replace, delete.
    @Test func writeAttributes() async throws {
        try await TwinAPI.with { api in
            #expect(try await api.call("POST", "/entities", Self.building).status == 201)
            let path = "/entities/urn:ngsi-ld:Building:pirelli"
            func entity() async throws -> JSON { try await api.get(path).body! }

            // Update: only existing attributes change; a missing one is reported (207).
            let update = try await api.call("PATCH", path + "/attrs", ["height": ["type": "Property", "value": 128], "floors": ["type": "Property", "value": 32]])
            #expect(update.status == 207)
            #expect(update.body == ["updated": ["height"], "notUpdated": [["attributeName": "floors", "reason": "attribute does not exist (append creates it)"]]])
            #expect(try await entity()["height"]?["value"] == 128)
            #expect(try await entity()["floors"] == nil)

            // Append creates; noOverwrite keeps what exists.
            #expect(try await api.call("POST", path + "/attrs", ["floors": ["type": "Property", "value": 32]]).status == 204)
            let kept = try await api.call("POST", path + "/attrs?options=noOverwrite", ["floors": ["type": "Property", "value": 99]])
            #expect(kept.status == 207)
            #expect(try await entity()["floors"]?["value"] == 32)

            // Update replaced the whole attribute (unitCode and observedAt went with it); a partial
            // attribute update changes only the members it names.
            #expect(try await entity()["height"] == ["type": "Property", "value": 128])
            #expect(try await api.call("PATCH", path + "/attrs/height", ["value": 127.1, "unitCode": "MTR"]).status == 204)
            #expect(try await api.call("PATCH", path + "/attrs/height", ["observedAt": "2024-05-01T10:00:00Z"]).status == 204)
            #expect(try await entity()["height"] == ["type": "Property", "value": 127.1, "unitCode": "MTR", "observedAt": "2024-05-01T10:00:00.000Z"])
            #expect(try await api.call("PATCH", path + "/attrs/nothing", ["value": 1]).status == 404)

            // Multi-attribute instances by datasetId; delete one of them, then all.
            #expect(try await api.call("POST", path + "/attrs", ["height": ["type": "Property", "value": 130, "datasetId": "urn:ngsi-ld:Dataset:lidar"]]).status == 204)
            #expect(try await entity()["height"]?.arrayValue?.count == 2)
            #expect(try await api.call("DELETE", path + "/attrs/height?datasetId=urn:ngsi-ld:Dataset:lidar").status == 204)
            #expect(try await entity()["height"]?["value"] == 127.1)
            #expect(try await api.call("DELETE", path + "/attrs/height?deleteAll=true").status == 204)
            #expect(try await entity()["height"] == nil)
            #expect(try await api.call("DELETE", path + "/attrs/height").status == 404)

            // Merge: add, change, and delete with null.
            #expect(try await api.call("PATCH", path, ["floors": 33, "name": nil, "architect": "Gio Ponti"]).status == 204)
            let merged = try await entity()
            #expect(merged["floors"]?["value"] == 33 && merged["name"] == nil && merged["architect"]?["value"] == "Gio Ponti")

            // Replace: the entity's attributes become those given.
            #expect(try await api.call("PUT", path, ["type": "Building", "name": "Pirellone"]).status == 204)
            #expect(try await entity() == ["id": "urn:ngsi-ld:Building:pirelli", "type": "Building", "name": ["type": "Property", "value": "Pirellone"]])
            try TwinAPI.expectValid("Entity", [try await entity()])

            #expect(try await api.call("DELETE", path).status == 204)
            #expect(try await api.get(path).status == 404)
            #expect(try await api.call("DELETE", path).status == 404)
        }
    }

    /// Clauses 5.6.7–5.6.10 batch operations and 5.7.2 query by POST; 207 BatchOperationResult.
    @Test func batchOperations() async throws {
        try await TwinAPI.with { api in
            try await Self.seed(api, count: 4)
            let partial = try await api.call("POST", "/entityOperations/create", [
                ["id": "urn:ngsi-ld:Sensor:s0", "type": "Sensor"],
                ["id": "urn:ngsi-ld:Sensor:new", "type": "Sensor"],
                ["id": "bad id", "type": "Sensor"],
            ])
            #expect(partial.status == 207)
            #expect(partial.body?["success"] == ["urn:ngsi-ld:Sensor:new"])
            let errors = partial.body?["errors"]?.arrayValue ?? []
            #expect(errors.map { $0["entityId"] } == ["bad id", "urn:ngsi-ld:Sensor:s0"])
            #expect(errors.map { $0["error"]?["type"] } == ["https://uri.etsi.org/ngsi-ld/errors/BadRequestData", "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists"])
            #expect(errors.map { $0["error"]?["status"] } == [400, 409])

            let upsert = try await api.call("POST", "/entityOperations/upsert", [
                ["id": "urn:ngsi-ld:Sensor:s1", "type": "Camera", "value": 100],
                ["id": "urn:ngsi-ld:Sensor:fresh", "type": "Sensor", "value": 1],
            ])
            #expect(upsert.status == 201 && upsert.body == ["urn:ngsi-ld:Sensor:fresh"])
            // Replace (default): s1 has only what the upsert gave.
            #expect(try await api.get("/entities/urn:ngsi-ld:Sensor:s1?options=keyValues").body == ["id": "urn:ngsi-ld:Sensor:s1", "type": "Camera", "value": 100])
            let updateOnly = try await api.call("POST", "/entityOperations/upsert?options=update", [["id": "urn:ngsi-ld:Sensor:s1", "type": "Camera", "status": "ok"]])
            #expect(updateOnly.status == 204)
            #expect(try await api.get("/entities/urn:ngsi-ld:Sensor:s1?options=keyValues").body?["value"] == 100)

            let update = try await api.call("POST", "/entityOperations/update?options=noOverwrite", [
                ["id": "urn:ngsi-ld:Sensor:s2", "type": "Sensor", "value": 999, "extra": 1],
                ["id": "urn:ngsi-ld:Sensor:ghost", "type": "Sensor", "value": 1],
            ])
            #expect(update.status == 207 && update.body?["success"] == ["urn:ngsi-ld:Sensor:s2"])
            let s2 = try await api.get("/entities/urn:ngsi-ld:Sensor:s2?options=keyValues").body
            #expect(s2?["value"] == 2 && s2?["extra"] == 1)

            let query = try await api.call("POST", "/entityOperations/query?count=true", [
                "type": "Query", "entities": [["type": "Sensor"]], "q": "value>=1", "attrs": ["value"]])
            #expect(query.status == 200 && query.header("NGSILD-Results-Count") == "2")
            #expect(Set(query.body?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []) == ["urn:ngsi-ld:Sensor:s2", "urn:ngsi-ld:Sensor:fresh"])

            let delete = try await api.call("POST", "/entityOperations/delete", ["urn:ngsi-ld:Sensor:s0", "urn:ngsi-ld:Sensor:nope"])
            #expect(delete.status == 207 && delete.body?["success"] == ["urn:ngsi-ld:Sensor:s0"])
            #expect(try await api.call("POST", "/entityOperations/delete", ["urn:ngsi-ld:Sensor:s3"]).status == 204)
        }
    }

    /// Clauses 5.7.5–5.7.10: types and attributes.
    @Test func discovery() async throws {
        try await TwinAPI.with { api in
            try await Self.seed(api, count: 4)
            #expect(try await api.get("/types").body == ["id": "urn:ngsi-ld:EntityTypeList:gemello", "type": "EntityTypeList", "typeList": ["Camera", "Sensor"]])
            let info = try await api.get("/types/Sensor").body
            #expect(info?["type"] == "EntityTypeInfo" && info?["entityCount"] == 2 && info?["typeName"] == "Sensor")
            #expect(info?["attributeDetails"]?.arrayValue?.compactMap { $0["attributeName"]?.stringValue } == ["location", "status", "value"])
            #expect(try await api.get("/types/Nothing").status == 404)
            let attributes = try await api.get("/attributes").body
            #expect(attributes?["attributeList"] == ["location", "status", "value"])
            let detail = try await api.get("/attributes/location").body
            #expect(detail?["attributeTypes"] == ["GeoProperty"] && detail?["attributeCount"] == 4 && detail?["typeNames"] == ["Camera", "Sensor"])
            let details = try await api.get("/types?details=true").body
            #expect(details?.arrayValue?.count == 2)
        }
    }
}
