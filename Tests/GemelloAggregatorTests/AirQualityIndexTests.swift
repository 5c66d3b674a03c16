@testable import GemelloAggregator
import GemelloCore
import GemelloTesting
import Testing

@Suite struct AirQualityIndexTests {
    @Test func bandsFollowTheEEAScheme() {
        typealias I = EuropeanAirQualityIndex
        #expect(I.level(.pm25, 10) == 1 && I.level(.pm25, 10.1) == 2 && I.level(.pm25, 25) == 3 && I.level(.pm25, 76) == 6)
        #expect(I.level(.no2, 40) == 1 && I.level(.no2, 230) == 4 && I.level(.no2, 341) == 6)
        #expect(I.level(.o3, 130) == 3 && I.level(.pm10, 150) == 5 && I.level(.so2, 751) == 6)
        #expect(I.index([.pm25: 21, .no2: 35])! == (3, .pm25))
        #expect(I.index([.no2: 250, .pm10: 10])! == (5, .no2))
        #expect(I.index([:]) == nil)
        #expect(I.microgramsPerCubicMetre(0.2, unit: "GP") == 200 && I.microgramsPerCubicMetre(5, unit: "61") == nil)
    }

    /// A station's index is derived as its readings arrive, with the 24-hour running mean for
    /// PM2.5 and the hour's value for NO2, carries the lineage of the batch that caused it, and
    /// is not derived twice from a duplicate.
    @Test(arguments: StoreBackendKind.allCases) func indexSeriesIsDerivedAtIngest(backend: StoreBackendKind) throws {
        let store = try backend.store()
        _ = try store.recordBirth(AgentBirth(agentID: "air-1", bootEpoch: 1, version: "0.1.0",
                                             site: Site(id: "s", kind: .fiveGTower, latitude: 45.46, longitude: 9.19),
                                             sensors: [SensorInfo(id: "aq", entityType: "AirQualityObserved",
                                                                  attributes: [.init(name: "pm25", unit: "GQ"), .init(name: "no2", unit: "GQ")])],
                                             time: 0), now: 0)
        let hour: Int64 = 3_600_000
        let pm25 = (0..<48).map { h in h < 24 ? 8.0 : 60.0 }
        let no2 = (0..<48).map { h in h == 30 ? 250.0 : 20.0 }
        for day in 0..<2 {
            var readings: [Reading] = []
            for h in day * 24..<(day + 1) * 24 {
                readings.append(Reading(series: SeriesInfo(name: "aq/pm25", unit: "GQ"), timestamp: Int64(h) * hour, value: pm25[h]))
                readings.append(Reading(series: SeriesInfo(name: "aq/no2", unit: "GQ"), timestamp: Int64(h) * hour, value: no2[h]))
            }
            var batch = TwinStoreTests.batch(UInt64(day + 1), readings, agent: "air-1")
            batch.bootEpoch = 1
            #expect(try store.ingest(batch, receivedAt: 1000 + Int64(day)) == .stored(readings: 48))
            #expect(try store.ingest(batch, receivedAt: 2000) == .duplicate)
        }
        let index = try #require(try store.history.points(agent: "air-1", series: "aq/airQualityIndex"))
        #expect(index.timestamps == (0..<48).map { Int64($0) * hour })
        let expected = (0..<48).map { h -> Double in
            let window = pm25[max(0, h - 23)...h]
            let mean = window.reduce(0, +) / Double(window.count)
            return Double(EuropeanAirQualityIndex.index([.pm25: mean, .no2: no2[h]])!.level)
        }
        #expect(index.values == expected)
        #expect(index.values[30] == 6 || index.values[30] == 5)  // the NO2 peak or the rising PM mean
        #expect(index.source(of: 0).sequence == 1 && index.source(of: 47).sequence == 2 && index.source(of: 47).committedAt == 1001)
        #expect(try store.totals().readings == 96)  // the agent's readings; the index is derived
        let entity = try #require(try store.entities(agent: "air-1").first)
        #expect(entity.attributes.contains { $0.name == "airQualityIndex" && $0.value == expected[47] })
    }
}
