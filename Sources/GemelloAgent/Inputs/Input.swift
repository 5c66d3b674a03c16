import GemelloCore

/// A source of readings. Inputs see only the core: they hand readings to a ``ReadingSink`` and
/// never touch SQLite or MQTT.
public protocol Input: Sendable {
    /// The sensor (entity) this input feeds, announced in the agent's birth message.
    var sensor: SensorInfo { get }
    /// Where the buffer keeps this input's read position, for inputs that can resume (a replay);
    /// `nil` for inputs that only see the present (a live sensor).
    var checkpointKey: String? { get }
    /// Produces readings until the source ends or the task is cancelled. Readings passed to
    /// `sink` before returning are accepted; an input must not hold any back when cancelled.
    /// `checkpoint` is the position the buffer last committed for ``checkpointKey`` (nil: start).
    func run(into sink: some ReadingSink, resumingFrom checkpoint: Int64?) async throws -> InputSummary
}

extension Input {
    public var checkpointKey: String? { nil }

    public func run(into sink: some ReadingSink) async throws -> InputSummary {
        try await run(into: sink, resumingFrom: nil)
    }
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
    /// Hands over `readings`. With a `checkpoint` (the input's position just after them), the
    /// buffer commits that position in the same transaction as the readings, so after a crash
    /// the input resumes exactly where the buffer ends: nothing lost, nothing read twice.
    func accept(_ readings: [Reading], checkpoint: InputCheckpoint?) async throws
}

extension ReadingSink {
    public func accept(_ readings: [Reading]) async throws { try await accept(readings, checkpoint: nil) }
}

/// An input's read position after some readings (a byte offset for a replay).
public struct InputCheckpoint: Sendable, Equatable {
    public var key: String
    public var position: Int64

    public init(key: String, position: Int64) {
        self.key = key
        self.position = position
    }
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
