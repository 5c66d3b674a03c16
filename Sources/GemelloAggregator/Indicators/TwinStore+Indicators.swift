import GemelloCore
import GemelloStorage

/// Indicators the city publishes, derived as readings arrive, inside the batch's transaction:
/// they commit with it (a duplicate batch derives nothing twice) and their points carry its
/// lineage. Today: the European Air Quality Index of every `AirQualityObserved` sensor that
/// measures PM2.5, PM10, NO2, O3 or SO2, as the series `<sensor>/airQualityIndex` (1–6).
extension TwinStore {
    static let indexAttribute = "airQualityIndex"

    /// Whether `batch` measures a pollutant the index is made of (only then can it derive one).
    static func mayDeriveIndicators(_ batch: Batch) -> Bool {
        batch.series.contains { EuropeanAirQualityIndex.Pollutant(rawValue: String($0.attribute)) != nil }
    }

    /// The index at every instant of `batch` at which one of a station's pollutants was observed,
    /// as a batch of the same agent, epoch and sequence; nil when the batch concerns no station.
    static func airQualityIndicators(for batch: Batch, seriesIDs: SeriesIDs, db: any StoreConnection) throws -> Batch? {
        // Instants per sensor at which a pollutant was observed.
        var instants: [String: Set<Int64>] = [:]
        for i in 0..<batch.count {
            let info = batch.series[Int(batch.seriesIndex[i])]
            guard EuropeanAirQualityIndex.Pollutant(rawValue: String(info.attribute)) != nil else { continue }
            instants[String(info.sensor), default: []].insert(batch.millisecondTimestamp(i))
        }
        guard !instants.isEmpty else { return nil }
        var derived = Batch(agentID: batch.agentID, bootEpoch: batch.bootEpoch, sequence: batch.sequence, createdAt: batch.createdAt)
        var lookup: [SeriesInfo: UInt32] = [:]
        for (sensor, times) in instants.sorted(by: { $0.key < $1.key }) {
            let typeOf = try db.query("SELECT entity_type FROM sensors WHERE agent_id = ? AND sensor_id = ?", [.text(batch.agentID), .text(sensor)])
            let type = try typeOf.step() ? typeOf.text(0) : nil
            guard type == "AirQualityObserved" else { continue }
            let ordered = times.sorted()
            // Each pollutant's concentration (µg/m³) at each instant: 24 h running mean or the hour's value.
            var at = [[EuropeanAirQualityIndex.Pollutant: Double]](repeating: [:], count: ordered.count)
            for pollutant in EuropeanAirQualityIndex.Pollutant.allCases {
                guard let id = seriesIDs[batch.agentID, "\(sensor)/\(pollutant.rawValue)"] else { continue }
                let unitOf = try db.query("SELECT unit FROM series WHERE id = ?", [.integer(id)])
                let unit = try unitOf.step() ? unitOf.text(0) : ""
                let window: Int64 = pollutant.isDailyMean ? 86_400_000 : 3_600_000
                guard let points = try HistoryStore.points(series: id, in: (ordered[0] - window + 1)...ordered[ordered.count - 1], db: db) else { continue }
                var start = 0, sum = 0.0, count = 0, end = 0
                for (k, t) in ordered.enumerated() {
                    // Points in (t − window, t]: a sliding window over the time-ordered points.
                    while end < points.count && points.timestamps[end] <= t {
                        if let v = EuropeanAirQualityIndex.microgramsPerCubicMetre(points.values[end], unit: unit), v.isFinite { sum += v; count += 1 }
                        end += 1
                    }
                    while start < end && points.timestamps[start] <= t - window {
                        if let v = EuropeanAirQualityIndex.microgramsPerCubicMetre(points.values[start], unit: unit), v.isFinite { sum -= v; count -= 1 }
                        start += 1
                    }
                    guard count > 0 else { continue }
                    if pollutant.isDailyMean {
                        at[k][pollutant] = sum / Double(count)
                    } else if let v = EuropeanAirQualityIndex.microgramsPerCubicMetre(points.values[end - 1], unit: unit) {
                        at[k][pollutant] = v  // the hour's value: the newest reading within the hour
                    }
                }
            }
            let info = SeriesInfo(name: "\(sensor)/\(indexAttribute)", unit: "C62")
            for (k, t) in ordered.enumerated() {
                guard let index = EuropeanAirQualityIndex.index(at[k]) else { continue }
                derived.append(Reading(series: info, timestamp: t, value: Double(index.level)), lookup: &lookup)
            }
        }
        return derived.count > 0 ? derived : nil
    }
}
