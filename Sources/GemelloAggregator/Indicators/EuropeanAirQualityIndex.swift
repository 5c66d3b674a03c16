/// The European Air Quality Index (EEA, the six-level scheme of 2017–2023): each pollutant's
/// concentration falls in a band; the station's index is the worst band of the pollutants it
/// measures. PM2.5 and PM10 are 24-hour running means, NO2, O3 and SO2 hourly values, all µg/m³.
///
/// Not applied: the EEA's station rules (a traffic station needs NO2 and PM; others three
/// pollutants): the twin computes the index from whatever the station measures, and says which
/// pollutant decided it. Concentrations in ppb (`61`) are not converted (that needs temperature).
public enum EuropeanAirQualityIndex {
    public enum Pollutant: String, Sendable, CaseIterable {
        case pm25, pm10, no2, o3, so2

        /// Upper bounds of levels 1–5 (µg/m³); above the last is level 6.
        var bounds: [Double] {
            switch self {
            case .pm25: [10, 20, 25, 50, 75]
            case .pm10: [20, 40, 50, 100, 150]
            case .no2: [40, 90, 120, 230, 340]
            case .o3: [50, 100, 130, 240, 380]
            case .so2: [100, 200, 350, 500, 750]
            }
        }

        /// Averaged over the 24 hours before the time (PM), or the hour's value (gases).
        public var isDailyMean: Bool { self == .pm25 || self == .pm10 }
    }

    /// Level names as the Smart Data Models `airQualityLevel` carries them.
    public static let levels = ["good", "fair", "moderate", "poor", "veryPoor", "extremelyPoor"]

    /// 1 (good) … 6 (extremely poor) for one pollutant.
    public static func level(_ pollutant: Pollutant, _ concentration: Double) -> Int {
        for (i, bound) in pollutant.bounds.enumerated() where concentration <= bound { return i + 1 }
        return 6
    }

    /// The station's level: the worst of its pollutants' (nil without any), and which pollutant set it.
    public static func index(_ concentrations: [Pollutant: Double]) -> (level: Int, pollutant: Pollutant)? {
        var worst: (level: Int, pollutant: Pollutant)?
        for pollutant in Pollutant.allCases {
            guard let c = concentrations[pollutant], c.isFinite, c >= 0 else { continue }
            let l = level(pollutant, c)
            if worst == nil || l > worst!.level { worst = (l, pollutant) }
        }
        return worst
    }

    /// µg/m³ from a UN/CEFACT unit: `GQ` as is, `GP` (mg/m³) × 1000; nil for others.
    public static func microgramsPerCubicMetre(_ value: Double, unit: String) -> Double? {
        switch unit {
        case "GQ": value
        case "GP": value * 1000
        default: nil
        }
    }
}
