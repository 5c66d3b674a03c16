import GemelloCore

extension SimulatedInput {
    /// A kind of site equipment with plausible sensors: units, typical level, daily swing, noise.
    public enum Profile: String, Sendable, CaseIterable {
        case airQuality = "air-quality"
        case weather
        case traffic
        case sewer
        case power
        case link

        struct Channel: Sendable {
            let attribute: String
            let unit: String
            let mean: Double
            /// Amplitude of the daily cycle (peak at `peakHour`, local solar time ≈ UTC+1 in Milan).
            let dailySwing: Double
            let peakHour: Double
            /// Standard deviation of the random walk step and of the white noise.
            let noise: Double
            let range: ClosedRange<Double>
            /// Decimal places the sensor reports.
            let decimals: Int
        }

        /// The Smart Data Model entity this equipment feeds.
        var entityType: String {
            switch self {
            case .airQuality: return "AirQualityObserved"
            case .weather: return "WeatherObserved"
            case .traffic: return "TrafficFlowObserved"
            case .sewer: return "WaterObserved"
            case .power, .link: return "DeviceMeasurement"
            }
        }

        var channels: [Channel] {
            switch self {
            case .airQuality:
                return [Channel(attribute: "pm25", unit: "GQ", mean: 22, dailySwing: 8, peakHour: 8, noise: 1.5, range: 0...500, decimals: 1),
                        Channel(attribute: "pm10", unit: "GQ", mean: 32, dailySwing: 10, peakHour: 8, noise: 2, range: 0...800, decimals: 1),
                        Channel(attribute: "no2", unit: "GQ", mean: 40, dailySwing: 20, peakHour: 18, noise: 3, range: 0...400, decimals: 1),
                        Channel(attribute: "o3", unit: "GQ", mean: 55, dailySwing: 30, peakHour: 15, noise: 3, range: 0...400, decimals: 1)]
            case .weather:
                return [Channel(attribute: "temperature", unit: "CEL", mean: 14, dailySwing: 5, peakHour: 15, noise: 0.2, range: -25...45, decimals: 1),
                        Channel(attribute: "relativeHumidity", unit: "P1", mean: 70, dailySwing: -15, peakHour: 15, noise: 1, range: 5...100, decimals: 0),
                        Channel(attribute: "windSpeed", unit: "MTS", mean: 1.8, dailySwing: 0.8, peakHour: 14, noise: 0.3, range: 0...40, decimals: 1),
                        Channel(attribute: "atmosphericPressure", unit: "A97", mean: 1013, dailySwing: 1, peakHour: 10, noise: 0.1, range: 950...1060, decimals: 1)]
            case .traffic:
                return [Channel(attribute: "intensity", unit: "E50", mean: 900, dailySwing: 700, peakHour: 8, noise: 60, range: 0...7000, decimals: 0),
                        Channel(attribute: "averageVehicleSpeed", unit: "KMH", mean: 42, dailySwing: -10, peakHour: 8, noise: 2, range: 0...130, decimals: 1),
                        Channel(attribute: "occupancy", unit: "P1", mean: 18, dailySwing: 12, peakHour: 8, noise: 1.5, range: 0...100, decimals: 1)]
            case .sewer:
                return [Channel(attribute: "height", unit: "MTR", mean: 0.45, dailySwing: 0.15, peakHour: 9, noise: 0.01, range: 0...3, decimals: 3),
                        Channel(attribute: "flow", unit: "MQH", mean: 320, dailySwing: 120, peakHour: 9, noise: 10, range: 0...5000, decimals: 1)]
            case .power:
                return [Channel(attribute: "batteryLevel", unit: "P1", mean: 92, dailySwing: 4, peakHour: 16, noise: 0.2, range: 0...100, decimals: 1),
                        Channel(attribute: "voltage", unit: "VLT", mean: 53.5, dailySwing: 0.4, peakHour: 16, noise: 0.05, range: 40...60, decimals: 2),
                        Channel(attribute: "powerConsumption", unit: "WTT", mean: 2400, dailySwing: 400, peakHour: 19, noise: 40, range: 0...10000, decimals: 0)]
            case .link:
                return [Channel(attribute: "throughput", unit: "MBP", mean: 450, dailySwing: -150, peakHour: 20, noise: 25, range: 0...10000, decimals: 1),
                        Channel(attribute: "latency", unit: "C26", mean: 12, dailySwing: 4, peakHour: 20, noise: 1, range: 0.5...1000, decimals: 1),
                        Channel(attribute: "packetLoss", unit: "P1", mean: 0.2, dailySwing: 0.1, peakHour: 20, noise: 0.05, range: 0...100, decimals: 2)]
            }
        }
    }
}
