import GemelloCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Plausible readings for a site's equipment, at a fixed interval, stamped with the wall clock:
/// a daily cycle, a slow random walk and sensor noise, rounded to the sensor's resolution.
/// Deterministic for a given `seed`, so tests and demos are repeatable.
public struct SimulatedInput: PolledInput {
    public struct Configuration: InputOptions {
        public static let type = "simulated"
        public var sensor: SensorInfo
        public var profile: Profile
        public var schedule: PollSchedule
        public var seed: UInt64

        public var interval: Duration { schedule.interval }

        public init(sensorID: String, profile: Profile, interval: Duration, seed: UInt64, jitter: Duration = .zero) {
            self.profile = profile
            self.schedule = PollSchedule(interval: interval, jitter: jitter)
            self.seed = seed
            self.sensor = SensorInfo(id: sensorID, entityType: profile.entityType,
                                     attributes: profile.channels.map { .init(name: $0.attribute, unit: $0.unit) })
        }

        public init(_ section: ConfigSection) throws(CoreError) {
            let schedule = try PollSchedule(section, defaultInterval: .seconds(10))
            self.init(sensorID: try section.sensorID(),
                      profile: try section.choice("profile"),
                      interval: schedule.interval,
                      seed: UInt64(try section.int("seed", default: 1, range: 0...Int.max)),
                      jitter: schedule.jitter)
        }

        public func makeInput(_ context: InputContext) -> any Input { SimulatedInput(configuration: self, clock: context.clock) }
    }

    public let configuration: Configuration
    public let clock: any WallClock
    public var sensor: SensorInfo { configuration.sensor }
    public var schedule: PollSchedule { configuration.schedule }

    public init(configuration: Configuration, clock: any WallClock) {
        self.configuration = configuration
        self.clock = clock
    }

    public func makePoller() -> Generator {
        Generator(profile: configuration.profile, sensorID: configuration.sensor.id, seed: configuration.seed)
    }

    /// The signal model, separated from timing so tests can sample it directly.
    public struct Generator: InputPoller {
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

        public mutating func poll(now: Int64) async throws -> [Reading] { sample(at: now) }

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
