import GemelloCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Plausible readings for a site's equipment, at a fixed interval, stamped with the wall clock:
/// a daily cycle, a slow random walk and sensor noise, rounded to the sensor's resolution.
/// Deterministic for a given `seed`, so tests and demos are repeatable.
public struct SimulatedInput: Input {
    public struct Configuration: Sendable {
        public var sensor: SensorInfo
        public var profile: Profile
        public var interval: Duration
        public var seed: UInt64

        public init(sensorID: String, profile: Profile, interval: Duration, seed: UInt64) {
            self.profile = profile
            self.interval = interval
            self.seed = seed
            self.sensor = SensorInfo(id: sensorID, entityType: profile.entityType,
                                     attributes: profile.channels.map { .init(name: $0.attribute, unit: $0.unit) })
        }

        public init(_ section: ConfigSection) throws(CoreError) {
            self.init(sensorID: try section.sensorID(),
                      profile: try section.choice("profile"),
                      interval: try section.duration("interval", default: .seconds(10), range: .milliseconds(10)...(.seconds(86_400))),
                      seed: UInt64(try section.int("seed", default: 1, range: 0...Int.max)))
        }
    }

    public let configuration: Configuration
    let clock: any WallClock
    public var sensor: SensorInfo { configuration.sensor }

    public init(configuration: Configuration, clock: any WallClock) {
        self.configuration = configuration
        self.clock = clock
    }

    public func run(into sink: some ReadingSink, resumingFrom checkpoint: Int64?) async throws -> InputSummary {
        var generator = Generator(profile: configuration.profile, sensorID: configuration.sensor.id, seed: configuration.seed)
        var produced = 0
        while !Task.isCancelled {
            let readings = generator.sample(at: clock.nowMilliseconds())
            try await sink.accept(readings)
            produced += readings.count
            do { try await Task.sleep(for: configuration.interval) } catch { break }
        }
        return InputSummary([("readings", produced)])
    }

    /// The signal model, separated from timing so tests can sample it directly.
    struct Generator {
        let channels: [Profile.Channel]
        let series: [SeriesInfo]
        var drift: [Double]
        var random: SplitMix64

        init(profile: Profile, sensorID: String, seed: UInt64) {
            channels = profile.channels
            series = channels.map { SeriesInfo(name: "\(sensorID)/\($0.attribute)", unit: $0.unit) }
            drift = Array(repeating: 0, count: channels.count)
            // FNV-1a of the sensor id: two sensors with the same seed still differ, run after run.
            random = SplitMix64(seed: sensorID.utf8.reduce(seed ^ 0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 })
        }

        mutating func sample(at time: Int64) -> [Reading] {
            let hour = Double((time / 1000) % 86_400) / 3600 + 1  // ≈ Milan local solar time
            var readings: [Reading] = []
            for (index, channel) in channels.enumerated() {
                drift[index] = drift[index] * 0.98 + random.gaussian() * channel.noise * 0.5
                let cycle = channel.dailySwing * cos((hour - channel.peakHour) / 24 * 2 * Double.pi)
                var value = channel.mean + cycle + drift[index] + random.gaussian() * channel.noise * 0.5
                value = min(max(value, channel.range.lowerBound), channel.range.upperBound)
                readings.append(Reading(series: series[index], timestamp: time, value: Self.round(value, decimals: channel.decimals)))
            }
            return readings
        }

        static func round(_ value: Double, decimals: Int) -> Double {
            var scale = 1.0
            for _ in 0..<decimals { scale *= 10 }
            return (value * scale).rounded() / scale
        }
    }
}

/// A small, fast, seedable generator (Steele, Lea, Flood 2014).
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// Standard normal (Box–Muller).
    mutating func gaussian() -> Double {
        let u1 = max(uniform(), .leastNonzeroMagnitude)
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * uniform())
    }
}
