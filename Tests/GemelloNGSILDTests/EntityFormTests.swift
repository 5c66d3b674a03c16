import GemelloCore
import GemelloNGSILD
import Testing

/// Entity bodies in, replies out (clauses 4.5, 5.6.1, 5.7.1).
@Suite struct EntityFormTests {
    static let context = try! ContextResolver(loader: nil, now: { 0 }).core
    let parser = EntityParser(context: context, now: 1_700_000_000_000)

    @Test func normalizedAndConciseFormsParseToTheSameEntity() throws {
        let normalized = try parser.entity([
            "id": "urn:ngsi-ld:Building:1", "type": "Building",
            "name": ["type": "Property", "value": "Pirelli"],
            "owner": ["type": "Relationship", "object": "urn:ngsi-ld:Company:1"],
            "location": ["type": "GeoProperty", "value": ["type": "Point", "coordinates": [9.2, 45.48]]],
        ])
        let concise = try parser.entity([
            "id": "urn:ngsi-ld:Building:1", "type": "Building",
            "name": "Pirelli",
            "owner": ["object": "urn:ngsi-ld:Company:1"],
            "location": ["type": "Point", "coordinates": [9.2, 45.48]],
        ])
        #expect(normalized == concise)
        #expect(normalized.attribute(Self.context.expand("location"))?.geometry != nil)
    }

    @Test(arguments: [
        ["type": "Building"] as JSON,
        ["id": "not a uri", "type": "Building"],
        ["id": "urn:ngsi-ld:B:1"],
        ["id": "urn:ngsi-ld:B:1", "type": "Building", "name": ["type": "Property", "value": nil]],
        ["id": "urn:ngsi-ld:B:1", "type": "Building", "owner": ["type": "Relationship", "object": "nobody"]],
        ["id": "urn:ngsi-ld:B:1", "type": "Building", "location": ["type": "GeoProperty", "value": ["type": "Point", "coordinates": [9]]]],
        ["id": "urn:ngsi-ld:B:1", "type": "Building", "h": ["type": "Property", "value": 1, "observedAt": "yesterday"]],
        ["id": "urn:ngsi-ld:B:1", "type": "Building", "bad name": 1],
        ["id": "urn:ngsi-ld:B:1", "type": "Building", "h": ["type": "Magic", "value": 1]],
        ["id": "urn:ngsi-ld:B:1", "type": "Building", "h": [["type": "Property", "value": 1], ["type": "Property", "value": 2]]],
    ])
    func invalidEntitiesAreBadRequestData(_ body: JSON) {
        do {
            _ = try parser.entity(body)
            Issue.record("accepted \(body.serialized)")
        } catch {
            #expect(error.kind == .badRequestData)
            #expect(error.status == 400)
        }
    }

    @Test func multiAttributesKeepOneInstancePerDatasetId() throws {
        let e = try parser.entity([
            "id": "urn:ngsi-ld:Sensor:1", "type": "Sensor",
            "temperature": [["type": "Property", "value": 20], ["type": "Property", "value": 21, "datasetId": "urn:ngsi-ld:Dataset:b"]],
        ])
        #expect(e.attributes[Self.context.expand("temperature")]?.count == 2)
        let rendered = EntityRenderer(context: Self.context).render(e)
        #expect(rendered["temperature"]?.arrayValue?.count == 2)
    }

    @Test func rendersNormalizedSimplifiedConciseSysAttrsAndProjections() throws {
        let e = try parser.entity([
            "id": "urn:ngsi-ld:Building:1", "type": "Building",
            "height": ["type": "Property", "value": 127, "unitCode": "MTR", "observedAt": "2024-05-01T10:00:00Z",
                       "accuracy": ["type": "Property", "value": 0.5]],
            "owner": ["type": "Relationship", "object": "urn:ngsi-ld:Company:1"],
        ])
        var r = EntityRenderer(context: Self.context)
        #expect(r.render(e) == [
            "id": "urn:ngsi-ld:Building:1", "type": "Building",
            "height": ["type": "Property", "value": 127, "unitCode": "MTR", "observedAt": "2024-05-01T10:00:00.000Z",
                       "accuracy": ["type": "Property", "value": 0.5]],
            "owner": ["type": "Relationship", "object": "urn:ngsi-ld:Company:1"],
        ])
        r.format = .simplified
        #expect(r.render(e) == ["id": "urn:ngsi-ld:Building:1", "type": "Building", "height": 127, "owner": "urn:ngsi-ld:Company:1"])
        r.format = .concise
        #expect(r.render(e)["height"] == ["value": 127, "unitCode": "MTR", "observedAt": "2024-05-01T10:00:00.000Z", "accuracy": ["value": 0.5]])
        r.format = .normalized
        r.sysAttrs = true
        #expect(r.render(e)["createdAt"] == "2023-11-14T22:13:20.000Z")
        #expect(r.render(e)["height"]?["modifiedAt"] == "2023-11-14T22:13:20.000Z")
        r.sysAttrs = false
        r.pick = ["id", Self.context.expand("owner")]
        #expect(r.render(e) == ["id": "urn:ngsi-ld:Building:1", "owner": ["type": "Relationship", "object": "urn:ngsi-ld:Company:1"]])
        r.pick = nil
        r.omit = ["type", Self.context.expand("height")]
        #expect(r.render(e) == ["id": "urn:ngsi-ld:Building:1", "owner": ["type": "Relationship", "object": "urn:ngsi-ld:Company:1"]])
    }

    @Test func languagePropertiesPickTheAskedLanguage() throws {
        let e = try parser.entity(["id": "urn:ngsi-ld:Place:1", "type": "Place",
                                   "name": ["type": "LanguageProperty", "languageMap": ["it": "Duomo di Milano", "en": "Milan Cathedral"]]])
        var r = EntityRenderer(context: Self.context)
        r.language = "en"
        #expect(r.render(e)["name"] == ["type": "Property", "value": "Milan Cathedral"])
    }
}
