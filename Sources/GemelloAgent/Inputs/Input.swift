import GemelloCore

/// A source of readings. Inputs see only the core: they hand readings to a ``ReadingSink`` and
/// never touch SQLite or MQTT.
public protocol Input: Sendable {
    /// The sensor (entity) this input feeds, announced in the agent's birth message.
    var sensor: SensorInfo { get }
    /// Produces readings until the source ends or the task is cancelled. Readings passed to
    /// `sink` before returning are accepted; an input must not hold any back when cancelled.
    func run(into sink: some ReadingSink) async throws -> InputSummary
}

/// What an input did, logged by the shared wrapper when it stops.
public struct InputSummary: Sendable, Equatable {
    /// Named counters (`rows`, `readings`, `missing`, ...), in a stable order.
    public var counters: [(String, Int)]

    public init(_ counters: [(String, Int)]) { self.counters = counters }

    public subscript(name: String) -> Int? { counters.first { $0.0 == name }?.1 }

    public static func == (a: InputSummary, b: InputSummary) -> Bool {
        a.counters.map(\.0) == b.counters.map(\.0) && a.counters.map(\.1) == b.counters.map(\.1)
    }
}

/// Where inputs deliver readings (the buffer writer in the agent, a collector in tests).
public protocol ReadingSink: Sendable {
    func accept(_ readings: [Reading]) async throws
}

/// Builds the input for a configuration entry.
public enum InputFactory {
    public static func make(_ configuration: InputConfiguration, clock: any WallClock) -> any Input {
        switch configuration {
        case .simulated(let c): return SimulatedInput(configuration: c, clock: clock)
        case .csvReplay(let c): return CSVReplayInput(configuration: c)
        }
    }
}
