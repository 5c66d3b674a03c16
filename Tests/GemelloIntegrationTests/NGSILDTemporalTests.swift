import Foundation
import GemelloAggregator
import GemelloCore
import GemelloNGSILD
import GemelloTesting
import Testing

/// The temporal API over the columnar history: ranges, lastN, representations, aggregation,
/// paging by time, lineage, instance deletion, and the spec's errors.
@Suite struct NGSILDTemporalTests {
    static let weather = "urn:ngsi-ld:WeatherObserved:tower-duomo:weather"
    static let t0: Int64 = 1_704_067_200_000  // 2024-01-01T00:00:00Z
    static let hour: Int64 = 3_600_000

    /// 72 hours of hourly temperature and humidity in 6 batches, the first three arriving last
    /// (a backlog after an outage), then sealed.
    static func seed(_ api: TwinAPI) throws {
        for (order, batch) in [3, 4, 5, 0, 1, 2].enumerated() {
            let readings = (0..<12).flatMap { h -> [(attribute: String, unit: String, time: Int64, value: Double)] in
                let i = batch * 12 + h
                return [("temperature", "CEL", t0 + Int64(i) * hour, Self.temperature(i)), ("relativeHumidity", "P1", t0 + Int64(i) * hour, 50)]
            }
            try api.ingest(agent: "tower-duomo", sensor: "weather", type: "WeatherObserved", readings: readings, sequence: UInt64(batch + 1))
            if order == 2 { try api.store.history.compact(now: 0, policy: .init(chunkPoints: 16), force: true) }
        }
        try api.store.history.compact(now: 0, policy: .init(chunkPoints: 16), force: true)
    }

    static func temperature(_ i: Int) -> Double { Double((i * 37) % 23) / 2 }

    static func iso(_ ms: Int64) -> String { DateTime.string(milliseconds: ms) }

    @Test func normalizedInstancesInObservationOrderWithLineage() async throws {
        try await TwinAPI.with { api in
            try Self.seed(api)
            let reply = try await api.get("/temporal/entities/\(Self.weather)?attrs=temperature&timerel=between&timeAt=\(Self.iso(Self.t0 + 30 * Self.hour))&endTimeAt=\(Self.iso(Self.t0 + 40 * Self.hour))&options=lineage,sysAttrs",
                                          link: TwinAPI.sdmLink)
            #expect(reply.status == 200)
            let instances = try #require(reply.body?["temperature"]?.arrayValue)
            #expect(instances.count == 10)  // between: [timeAt, endTimeAt)
            #expect(instances.map { $0["observedAt"]?.stringValue } == (30..<40).map { Self.iso(Self.t0 + Int64($0) * Self.hour) })
            #expect(instances.map { $0["value"]?.numberValue } == (30..<40).map { Self.temperature($0) })
            #expect(reply.body?["relativeHumidity"] == nil)
            let first = instances[0]
            #expect(first["unitCode"] == "CEL")
            #expect(first["instanceId"]?.stringValue == "urn:ngsi-ld:gemello:1:3:\(Self.t0 + 30 * Self.hour)")  // batch 3 carried hours 24-35
            #expect(first["lineage"]?["value"]?["agent"] == "tower-duomo")
            #expect(first["lineage"]?["value"]?["site"] == "site-tower-duomo")
            #expect(first["lineage"]?["value"]?["batch"] == 3)
            #expect(instances[6]["lineage"]?["value"]?["batch"] == 4)
            var plain = reply.body!
            plain["temperature"] = .array(instances.map { i in var o = i; o["lineage"] = nil; return o })
            try TwinAPI.expectValid("EntityTemporal", [plain])
        }
    }

    @Test func lastNTemporalValuesAndQueries() async throws {
        try await TwinAPI.with { api in
            try Self.seed(api)
            let last = try await api.get("/temporal/entities/\(Self.weather)?attrs=temperature&lastN=5&options=temporalValues", link: TwinAPI.sdmLink)
            #expect(last.body?["temperature"] == ["type": "Property", "values": .array((67..<72).map { i in
                [.number(Self.temperature(i)), .string(Self.iso(Self.t0 + Int64(i) * Self.hour))] })])
            let before = try await api.get("/temporal/entities/\(Self.weather)?attrs=temperature&lastN=2&timerel=before&timeAt=\(Self.iso(Self.t0 + 10 * Self.hour))&format=temporalValues",
                                           link: TwinAPI.sdmLink)
            #expect(before.body?["temperature"]?["values"]?.arrayValue?.map { $0.arrayValue?[1].stringValue } == [Self.iso(Self.t0 + 8 * Self.hour), Self.iso(Self.t0 + 9 * Self.hour)])

            let list = try await api.get("/temporal/entities?type=WeatherObserved&attrs=relativeHumidity&timerel=after&timeAt=\(Self.iso(Self.t0 + 69 * Self.hour))",
                                         link: TwinAPI.sdmLink)
            #expect(list.status == 200)
            #expect(list.body?.arrayValue?.count == 1)
            #expect(list.body?.arrayValue?[0]["relativeHumidity"]?.arrayValue?.count == 2)  // after is exclusive: hours 70 and 71

            let posted = try await api.call("POST", "/temporal/entityOperations/query", [
                "type": "Query", "entities": [["type": "WeatherObserved"]], "attrs": ["temperature"],
                "temporalQ": ["timerel": "before", "timeAt": .string(Self.iso(Self.t0 + 3 * Self.hour)), "lastN": 2],
            ], headers: ["Link": TwinAPI.sdmLink])
            #expect(posted.status == 200)
            #expect(posted.body?.arrayValue?[0]["temperature"]?.arrayValue?.map { $0["value"]?.numberValue } == [Self.temperature(1), Self.temperature(2)])
        }
    }

    @Test func aggregatedValuesPerDay() async throws {
        try await TwinAPI.with { api in
            try Self.seed(api)
            let reply = try await api.get("/temporal/entities/\(Self.weather)?attrs=temperature&options=aggregatedValues&aggrMethods=totalCount,distinctCount,sum,avg,min,max,stddev,sumsq&aggrPeriodDuration=P1D&timerel=between&timeAt=\(Self.iso(Self.t0))&endTimeAt=\(Self.iso(Self.t0 + 72 * Self.hour))",
                                          link: TwinAPI.sdmLink)
            #expect(reply.status == 200)
            let attribute = try #require(reply.body?["temperature"])
            for day in 0..<3 {
                let values = (day * 24..<(day + 1) * 24).map(Self.temperature)
                let mean = values.reduce(0, +) / 24
                let expected: [String: Double] = [
                    "totalCount": 24, "distinctCount": Double(Set(values).count), "sum": values.reduce(0, +), "avg": mean,
                    "min": values.min()!, "max": values.max()!, "sumsq": values.map { $0 * $0 }.reduce(0, +),
                    "stddev": (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 24).squareRoot(),
                ]
                for (method, value) in expected {
                    let entry = try #require(attribute[method]?.arrayValue?[day].arrayValue, "\(method)")
                    #expect(abs((entry[0].numberValue ?? .nan) - value) < 1e-9, "\(method) day \(day)")
                    #expect(entry[1].stringValue == Self.iso(Self.t0 + Int64(day) * 24 * Self.hour))
                    #expect(entry[2].stringValue == Self.iso(Self.t0 + Int64(day + 1) * 24 * Self.hour))
                }
            }
            let whole = try await api.get("/temporal/entities/\(Self.weather)?attrs=temperature&format=aggregatedValues&aggrMethods=totalCount&aggrPeriodDuration=PT0S",
                                          link: TwinAPI.sdmLink)
            #expect(whole.body?["temperature"]?["totalCount"]?.arrayValue?[0].arrayValue?[0] == 72)
        }
    }

    /// Raw readings past their type's retention are dropped; aggregation answers from the hourly
    /// rollups as it did from the raw readings (but for distinctCount, which they cannot know).
    @Test func aggregatesSurviveRetentionThroughRollups() async throws {
        try await TwinAPI.with { api in
            try Self.seed(api)
            let path = "/temporal/entities/\(Self.weather)?attrs=temperature&format=aggregatedValues&aggrMethods=totalCount,sum,min,max,avg,stddev,distinctCount&aggrPeriodDuration=P1D&timerel=between&timeAt=\(Self.iso(Self.t0))&endTimeAt=\(Self.iso(Self.t0 + 72 * Self.hour))"
            let before = try #require(try await api.get(path, link: TwinAPI.sdmLink).body?["temperature"])
            let report = try api.store.history.applyRetention(now: Self.t0 + 80 * Self.hour, policy: .init(retention: ["WeatherObserved": .seconds(24 * 3600)]))
            #expect(report.chunks > 0 && report.points >= 48)
            let raw = try api.store.history(agent: "tower-duomo", series: "weather/temperature")
            // Every reading from the limit on is kept (a chunk reaching across the limit keeps older ones until it is wholly past).
            #expect(raw.count < 72 && raw.filter { $0.timestamp >= Self.t0 + 56 * Self.hour }.count == 16)
            #expect(try api.store.history(agent: "tower-duomo", series: "weather/relativeHumidity").count < 72)
            let after = try #require(try await api.get(path, link: TwinAPI.sdmLink).body?["temperature"])
            for method in ["totalCount", "sum", "min", "max", "avg", "stddev"] {
                let a = after[method]?.arrayValue?.map { $0.arrayValue?[0].numberValue ?? .nan } ?? []
                let b = before[method]?.arrayValue?.map { $0.arrayValue?[0].numberValue ?? .nan } ?? []
                #expect(a.count == 3 && zip(a, b).allSatisfy { abs($0 - $1) < 1e-9 }, "\(method): \(a) vs \(b)")
            }
            #expect(after["distinctCount"]?.arrayValue?[0].arrayValue?[0] == .null)  // day 0 is rollups only
            // An unknown type keeps everything; rollups past their own retention go.
            #expect(try api.store.history.applyRetention(now: Self.t0 + 80 * Self.hour, policy: .init(retention: ["Other": .seconds(3600)])).chunks == 0)
            #expect(try api.store.history.applyRetention(now: Self.t0 + 80 * Self.hour + 86_400_000, policy: .init(rollupRetention: .seconds(86_400))).rollups > 0)
        }
    }

    /// A history longer than max-instances comes in pages: 206 with the times covered, and the
    /// next page asked from the end of the last one; together they are the whole history.
    @Test func longHistoriesArePagedByTime() async throws {
        try await TwinAPI.with(configure: { $0.ngsiMaxInstances = 25 }) { api in
            try Self.seed(api)
            var times: [String] = []
            var path = "/temporal/entities/\(Self.weather)?attrs=temperature,relativeHumidity"
            for page in 1...10 {
                let reply = try await api.get(path, link: TwinAPI.sdmLink)
                let instances = reply.body?["temperature"]?.arrayValue ?? []
                #expect(instances.count == (reply.body?["relativeHumidity"]?.arrayValue ?? []).count)
                times += instances.compactMap { $0["observedAt"]?.stringValue }
                guard reply.status == 206 else { #expect(reply.status == 200); break }
                let range = try #require(reply.header("Content-Range"))
                #expect(range == "date-time \(instances.first!["observedAt"]!.stringValue!)-\(instances.last!["observedAt"]!.stringValue!)/*", "page \(page)")
                let end = String(range.dropFirst("date-time ".count).split(separator: "/")[0].suffix(24))
                path = "/temporal/entities/\(Self.weather)?attrs=temperature,relativeHumidity&timerel=after&timeAt=\(end)"
            }
            #expect(times == (0..<72).map { Self.iso(Self.t0 + Int64($0) * Self.hour) })
        }
    }

    @Test func instancesCanBeDeletedOneByOne() async throws {
        try await TwinAPI.with { api in
            try Self.seed(api)
            let id = "urn:ngsi-ld:gemello:1:1:\(Self.t0 + 5 * Self.hour)"
            #expect(try await api.call("DELETE", "/temporal/entities/\(Self.weather)/attrs/temperature/\(id)", headers: ["Link": TwinAPI.sdmLink]).status == 204)
            #expect(try await api.call("DELETE", "/temporal/entities/\(Self.weather)/attrs/temperature/\(id)", headers: ["Link": TwinAPI.sdmLink]).status == 404)
            let history = try api.store.history(agent: "tower-duomo", series: "weather/temperature")
            #expect(history.count == 71 && !history.contains { $0.timestamp == Self.t0 + 5 * Self.hour })
            #expect(try api.store.seriesCounts(agent: "tower-duomo")["weather/temperature"] == 71)
            #expect(try await api.call("DELETE", "/temporal/entities/\(Self.weather)/attrs/temperature/urn:x:y", headers: ["Link": TwinAPI.sdmLink]).status == 404)
            // The hour's rollup follows: after the raw readings expire, day 0 still counts 23.
            try api.store.history.applyRetention(now: Self.t0 + 72 * Self.hour, policy: .init(retention: ["WeatherObserved": .seconds(3600)]))
            let daily = try await api.get("/temporal/entities/\(Self.weather)?attrs=temperature&format=aggregatedValues&aggrMethods=totalCount&aggrPeriodDuration=P1D&timerel=after&timeAt=\(Self.iso(Self.t0 - 1))",
                                          link: TwinAPI.sdmLink)
            #expect(daily.body?["temperature"]?["totalCount"]?.arrayValue?.map { $0.arrayValue?[0] } == [23, 24, 24])
        }
    }

    /// Client data written through the temporal API keeps every instance (any kind of value);
    /// the newest becomes the current value; instances are read, aggregated and deleted like
    /// telemetry's. An agent's series cannot be written this way.
    @Test func clientTemporalWrites() async throws {
        try await TwinAPI.with { api in
            try Self.seed(api)
            let id = "urn:ngsi-ld:NoiseLevelObserved:partner-1"
            func noise(_ h: Int, _ value: Double) -> JSON {
                ["type": "Property", "value": .number(value), "observedAt": .string(Self.iso(Self.t0 + Int64(h) * Self.hour)), "unitCode": "2N"]
            }
            let created = try await api.call("POST", "/temporal/entities", [
                "id": .string(id), "type": "NoiseLevelObserved",
                "LAeq": [noise(2, 61), noise(0, 55), noise(1, 58.5)],
                "status": [["type": "Property", "value": "ok", "observedAt": .string(Self.iso(Self.t0))],
                           ["type": "Property", "value": "degraded", "observedAt": .string(Self.iso(Self.t0 + 2 * Self.hour))]],
            ])
            #expect(created.status == 201, "\(created.text)")
            let now = try await api.get("/entities/\(id)")
            #expect(now.body?["LAeq"]?["value"] == 61 && now.body?["status"]?["value"] == "degraded")  // the newest instances
            #expect(try await api.call("POST", "/temporal/entities/\(id)/attrs", ["LAeq": [noise(3, 70)]]).status == 204)
            #expect(try await api.call("POST", "/temporal/entities", ["id": .string(id), "type": "NoiseLevelObserved", "LAeq": noise(4, 52)]).status == 204)

            let history = try await api.get("/temporal/entities/\(id)?attrs=LAeq,status")
            let instances = try #require(history.body?["LAeq"]?.arrayValue)
            #expect(instances.map { $0["value"]?.numberValue } == [55, 58.5, 61, 70, 52])
            #expect(instances.allSatisfy { $0["instanceId"]?.stringValue?.hasPrefix("urn:ngsi-ld:gemello:client:") == true && $0["unitCode"] == "2N" })
            #expect(history.body?["status"]?.arrayValue?.map { $0["value"] } == ["ok", "degraded"])
            try TwinAPI.expectValid("EntityTemporal", [history.body!])
            let values = try await api.get("/temporal/entities/\(id)?attrs=LAeq&lastN=2&format=temporalValues")
            #expect(values.body?["LAeq"]?["values"] == [[70, .string(Self.iso(Self.t0 + 3 * Self.hour))], [52, .string(Self.iso(Self.t0 + 4 * Self.hour))]])
            let max = try await api.get("/temporal/entities/\(id)?attrs=LAeq&format=aggregatedValues&aggrMethods=max,totalCount&aggrPeriodDuration=PT0S")
            #expect(max.body?["LAeq"]?["max"]?.arrayValue?[0].arrayValue?[0] == 70 && max.body?["LAeq"]?["totalCount"]?.arrayValue?[0].arrayValue?[0] == 5)
            // Queries find it with the telemetry.
            let listed = try await api.get("/temporal/entities?type=NoiseLevelObserved&attrs=LAeq&timerel=after&timeAt=\(Self.iso(Self.t0 + 2 * Self.hour))")
            #expect(listed.body?.arrayValue?.first?["LAeq"]?.arrayValue?.count == 2)

            let first = try #require(instances[0]["instanceId"]?.stringValue)
            #expect(try await api.call("DELETE", "/temporal/entities/\(id)/attrs/LAeq/\(first)").status == 204)
            #expect(try await api.call("DELETE", "/temporal/entities/\(id)/attrs/LAeq/\(first)").status == 404)
            #expect(try await api.get("/temporal/entities/\(id)?attrs=LAeq").body?["LAeq"]?.arrayValue?.count == 4)
            #expect(try await api.call("DELETE", "/temporal/entities/\(id)/attrs/status").status == 204)
            #expect(try await api.get("/temporal/entities/\(id)?attrs=status").body?["status"]?.arrayValue?.count == 1)  // the current value stays

            // Telemetry belongs to the agent.
            let owned = try await api.call("POST", "/temporal/entities/\(Self.weather)/attrs", ["temperature": [noise(1, 99)]],
                                           headers: ["Link": TwinAPI.sdmLink])
            #expect(owned.status == 422)
            #expect(try await api.call("POST", "/temporal/entities/urn:ngsi-ld:X:none/attrs", ["LAeq": [noise(1, 1)]]).status == 404)
            #expect(try await api.call("POST", "/temporal/entities", ["id": "not a uri", "type": "X", "a": 1]).status == 400)

            #expect(try await api.call("DELETE", "/temporal/entities/\(id)").status == 204)
            #expect(try await api.get("/temporal/entities/\(id)").status == 404)
            #expect(try await api.call("POST", "/temporal/entities", ["id": .string(id), "type": "NoiseLevelObserved", "LAeq": noise(9, 40)]).status == 201)
            #expect(try await api.get("/temporal/entities/\(id)?attrs=LAeq").body?["LAeq"]?.arrayValue?.count == 1)  // nothing left from before
        }
    }

    @Test(arguments: [
        "timerel=between&timeAt=2024-01-01T00:00:00Z",
        "timerel=after",
        "timerel=during&timeAt=2024-01-01T00:00:00Z",
        "timeAt=2024-01-01",
        "lastN=0",
        "options=aggregatedValues",
        "options=aggregatedValues&aggrMethods=median",
        "options=aggregatedValues&aggrMethods=sum&aggrPeriodDuration=1D",
        "aggrMethods=sum",
    ])
    func badTemporalParametersAre400(parameters: String) async throws {
        try await TwinAPI.with { api in
            try Self.seed(api)
            let reply = try await api.get("/temporal/entities/\(Self.weather)?\(parameters)")
            #expect(reply.status == 400, "\(parameters): \(reply.text)")
            #expect(reply.body?["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData")
        }
    }
}
