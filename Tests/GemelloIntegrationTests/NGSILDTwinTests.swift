import GemelloCore
import Foundation
import GemelloAggregator
import GemelloNGSILD
import GemelloTesting
import Testing

/// Telemetry and client data side by side, Smart Data Models terms, Device entities, and
/// contexts fetched from a real HTTP server.
@Suite struct NGSILDTwinTests {
    static let weather = "urn:ngsi-ld:WeatherObserved:tower-duomo:weather"

    static func seedTelemetry(_ api: TwinAPI) throws {
        try api.ingest(agent: "tower-duomo", sensor: "weather", type: "WeatherObserved", readings: [
            ("temperature", "CEL", 1_700_000_000_000, 31.5), ("relativeHumidity", "P1", 1_700_000_000_000, 40),
            ("temperature", "CEL", 1_699_999_000_000, 30.0),
        ], sequence: 1)
        try api.ingest(agent: "tower-navigli", sensor: "weather", type: "WeatherObserved", readings: [
            ("temperature", "CEL", 1_700_000_000_000, 12.0),
        ], sequence: 1, latitude: 45.45, longitude: 9.17)
        try api.ingest(agent: "tower-duomo", sensor: "air", type: "AirQualityObserved", readings: [
            ("pm25", "GQ", 1_700_000_000_000, 21), ("no2", "GQ", 1_700_000_000_000, 35),
        ], sequence: 2)
    }

    /// The acceptance query: telemetry in Smart Data Models terms with that context in a Link header.
    @Test func telemetryAnswersQueriesInSmartDataModelsTerms() async throws {
        try await TwinAPI.with { api in
            try Self.seedTelemetry(api)
            let hot = try await api.get("/entities?type=WeatherObserved&q=temperature%3E30", link: TwinAPI.sdmLink)
            #expect(hot.status == 200)
            #expect(hot.header("Link") == TwinAPI.sdmLink)
            #expect(hot.body?.arrayValue?.map { $0["id"] } == [.string(Self.weather)])
            let entity = try #require(hot.body?.arrayValue?.first)
            #expect(entity["temperature"] == ["type": "Property", "value": 31.5, "unitCode": "CEL", "observedAt": "2023-11-14T22:13:20.000Z"])
            #expect(entity["location"] == ["type": "GeoProperty", "value": ["type": "Point", "coordinates": [9.1919, 45.4642]]])
            #expect(entity["refDevice"] == ["type": "Relationship", "object": "urn:ngsi-ld:Device:tower-duomo"])
            try TwinAPI.expectValid("Entity", [entity])

            // Without the context the SDM terms are other IRIs: the type does not match, and the
            // entity comes back with full IRIs (clause 5.5.7).
            #expect(try await api.get("/entities?type=WeatherObserved").body == [])
            let raw = try await api.get("/entities/\(Self.weather)")
            #expect(raw.body?["type"] == "https://uri.fiware.org/ns/data-models#WeatherObserved")

            // Geo-query on telemetry: near the Navigli tower.
            let near = try await api.get("/entities?type=WeatherObserved&georel=near;maxDistance==500&geometry=Point&coordinates=%5B9.17,45.451%5D",
                                         link: TwinAPI.sdmLink)
            #expect(near.body?.arrayValue?.map { $0["id"] } == ["urn:ngsi-ld:WeatherObserved:tower-navigli:weather"])
        }
    }

    /// Every telemetry entity type the agents announce (the replay configs' and the simulated
    /// profiles') and the agents' Device entities validate as Smart Data Models (key-values) and
    /// as NGSI-LD entities (normalized).
    @Test func telemetryAndDevicesValidateAsSmartDataModels() async throws {
        try await TwinAPI.with { api in
            try Self.seedTelemetry(api)
            let t: Int64 = 1_700_000_000_000
            try api.ingest(agent: "fiber-navigli", sensor: "sewer", type: "WaterObserved",
                           readings: [("height", "MTR", t, 0.45), ("flow", "MQH", t, 320)], sequence: 1)
            try api.ingest(agent: "tower-duomo", sensor: "traffic", type: "TrafficFlowObserved",
                           readings: [("intensity", "E50", t, 900), ("averageVehicleSpeed", "KMH", t, 42), ("occupancy", "P1", t, 18)], sequence: 4)
            try api.ingest(agent: "tower-duomo", sensor: "power", type: "DeviceMeasurement",
                           readings: [("batteryLevel", "P1", t, 92), ("voltage", "VLT", t, 53.5), ("powerConsumption", "WTT", t, 2400)], sequence: 5)
            for (type, model) in [("WeatherObserved", "WeatherObserved"), ("AirQualityObserved", "AirQualityObserved"),
                                  ("TrafficFlowObserved", "TrafficFlowObserved"), ("WaterObserved", "WaterObserved"),
                                  ("DeviceMeasurement", "DeviceMeasurement"), ("Device", "Device")] {
                let normalized = try await api.get("/entities?type=\(type)", link: TwinAPI.sdmLink)
                #expect(normalized.body?.arrayValue?.isEmpty == false, "\(type)")
                try TwinAPI.expectValid("Entity", normalized.body?.arrayValue ?? [])
                let keyValues = try await api.get("/entities?type=\(type)&options=keyValues", link: TwinAPI.sdmLink, accept: "application/ld+json")
                let failure = try StandardValidators.smartDataModel(model, (keyValues.body?.arrayValue ?? []).map(\.serialized))
                #expect(failure == nil, "\(type): \(failure ?? "")")
            }
            let device = try await api.get("/entities/urn:ngsi-ld:Device:tower-duomo?options=keyValues", link: TwinAPI.sdmLink)
            #expect(device.body?["controlledProperty"] == ["averageVehicleSpeed", "batteryLevel", "intensity", "no2", "occupancy", "pm25",
                                                           "powerConsumption", "relativeHumidity", "temperature", "voltage"])
            #expect(device.body?["batteryLevel"] == 0.92)
            #expect(device.body?["softwareVersion"] == "0.1.0")
            #expect(device.body?["deviceState"] != nil)
        }
    }

    /// Clients add their own attributes to telemetry entities; the agents' series stay the agents'.
    @Test func clientsCannotOverwriteOrDeleteAnAgentsSeries() async throws {
        try await TwinAPI.with { api in
            try Self.seedTelemetry(api)
            let link = ["Link": TwinAPI.sdmLink]
            let path = "/entities/\(Self.weather)"
            // Own attribute: allowed, and it survives the next batch.
            let note: JSON = ["maintenanceNote": ["type": "Property", "value": "sensor cleaned"]]
            #expect(try await api.call("POST", path + "/attrs", note, headers: link).status == 204)
            try api.ingest(agent: "tower-duomo", sensor: "weather", type: "WeatherObserved",
                           readings: [("temperature", "CEL", 1_700_000_100_000, 29)], sequence: 3)
            let after = try await api.get(path, link: TwinAPI.sdmLink).body
            #expect(after?["maintenanceNote"]?["value"] == "sensor cleaned")
            #expect(after?["temperature"]?["value"] == 29)

            let overwrite = try await api.call("PATCH", path + "/attrs", ["temperature": ["type": "Property", "value": -5]], headers: link)
            #expect(overwrite.status == 207)
            #expect(overwrite.body?["notUpdated"]?.arrayValue?.first?["attributeName"] == "temperature")
            #expect(overwrite.body?["notUpdated"]?.arrayValue?.first?["reason"]?.stringValue?.contains("owned by agent tower-duomo") == true)
            let partial = try await api.call("PATCH", path + "/attrs/temperature", ["value": -5], headers: link)
            #expect(partial.status == 422 && partial.body?["type"] == "https://uri.etsi.org/ngsi-ld/errors/OperationNotSupported")
            #expect(try await api.call("DELETE", path + "/attrs/temperature", headers: link).status == 422)
            #expect(try await api.call("DELETE", path).status == 422)
            #expect(try await api.call("PUT", path, ["type": "WeatherObserved"], headers: link).status == 422)
            let upsert = try await api.call("POST", "/entityOperations/upsert?options=update",
                                            [["id": .string(Self.weather), "type": "WeatherObserved", "temperature": 0]], headers: link)
            #expect(upsert.status == 207)
            #expect(try await api.get(path, link: TwinAPI.sdmLink).body?["temperature"]?["value"] == 29)
            // The client's own attribute can go again.
            #expect(try await api.call("DELETE", path + "/attrs/maintenanceNote", headers: link).status == 204)
        }
    }

    /// Client data survives a restart of the aggregator (it is in the twin store's file).
    @Test func clientEntitiesSurviveARestart() async throws {
        let folder = try Repository.temporaryFolder("ngsild-restart")
        let path = folder.appendingPathComponent("twin.sqlite").path
        try await TwinAPI.with(configure: { $0.storePath = path }) { api in
            let created = try await api.call("POST", "/entities", NGSILDEntityAPITests.building)
            #expect(created.status == 201)
        }
        try await TwinAPI.with(configure: { $0.storePath = path }) { api in
            let got = try await api.get("/entities/urn:ngsi-ld:Building:pirelli?options=sysAttrs")
            #expect(got.status == 200 && got.body?["name"]?["value"] == "Grattacielo Pirelli")
            #expect(got.body?["createdAt"] != nil)
        }
    }

    /// Remote contexts come from a real HTTP server, are cached, and an unreachable one is a 503
    /// within the fetch timeout, not a hang.
    @Test func remoteContextsAreFetchedCachedAndBounded() async throws {
        let folder = try Repository.temporaryFolder("contexts")
        try Data(#"{"@context": {"vehicleSpeed": "https://example.org/traffic#speed", "Car": "https://example.org/traffic#Car"}}"#.utf8)
            .write(to: folder.appendingPathComponent("traffic.jsonld"))
        let server = try StaticHTTPServer(folder: folder)
        defer { server.stop() }
        try await TwinAPI.with(configure: { $0.contextsFetchTimeout = .seconds(2) }) { api in
            let link = "<\(server.url)/traffic.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""
            let created = try await api.call("POST", "/entities", ["id": "urn:ngsi-ld:Car:1", "type": "Car", "vehicleSpeed": 50], headers: ["Link": link])
            #expect(created.status == 201)
            let raw = try await api.get("/entities/urn:ngsi-ld:Car:1")
            #expect(raw.body?["https://example.org/traffic#speed"]?["value"] == 50)
            // Cached: still answered with the server gone.
            server.stop()
            let cached = try await api.get("/entities?type=Car&q=vehicleSpeed==50", link: link)
            #expect(cached.body?.arrayValue?.first?["vehicleSpeed"]?["value"] == 50)
            // A context nobody serves: 503 LdContextNotAvailable, quickly.
            let start = ContinuousClock.now
            let gone = try await api.get("/entities?type=Car", link: "<http://127.0.0.1:\(server.port)/other.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"")
            #expect(gone.status == 503 && gone.body?["type"] == "https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable")
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    }

    /// Offline sites: a context preloaded from the configured folder is used without fetching.
    @Test func preloadedContextFolder() async throws {
        let folder = try Repository.temporaryFolder("preload")
        try Data(#"{"@context": {"flow": "https://example.org/water#flow"}}"#.utf8).write(to: folder.appendingPathComponent("water.jsonld"))
        try Data("# preloaded contexts\nhttps://contexts.example.org/water.jsonld water.jsonld\n".utf8).write(to: folder.appendingPathComponent("index.txt"))
        try await TwinAPI.with(configure: { $0.contextsFolder = folder.path; $0.contextsFetch = false }) { api in
            let link = "<https://contexts.example.org/water.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\""
            #expect(try await api.call("POST", "/entities", ["id": "urn:ngsi-ld:Pipe:1", "type": "Pipe", "flow": 3], headers: ["Link": link]).status == 201)
            #expect(try await api.get("/entities/urn:ngsi-ld:Pipe:1").body?["https://example.org/water#flow"] != nil)
            let other = try await api.get("/entities?type=Pipe", link: "<https://contexts.example.org/unknown.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"")
            #expect(other.status == 503)
        }
    }
}
