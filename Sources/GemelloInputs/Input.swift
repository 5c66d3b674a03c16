import GemelloCore

/// A source of readings. Inputs see only the core: they hand readings to a ``ReadingSink`` and
/// never touch SQLite or MQTT. One input feeds one sensor (one twin entity).
///
/// Three shapes, all behind this one protocol:
/// - **polled** inputs (``PolledInput``: `system`, `exec`, `modbus`, `simulated`) implement one
///   `poll` and get the shared loop: interval, jitter, error counting, pausing;
/// - **resumable** inputs (`csv-replay`) keep a read position in the buffer (``checkpointKey``);
/// - **push** inputs (`influx-listener`, `mqtt-subscribe`) acknowledge their source only after
///   ``ReadingSink/commit(_:)`` returned: the readings are then in the buffer on disk.
public protocol Input: Sendable {
    /// The sensor (entity) this input feeds, announced in the agent's birth message.
    var sensor: SensorInfo { get }
    /// Where the buffer keeps this input's read position, for inputs that can resume (a replay);
    /// `nil` for inputs that only see the present (a live sensor).
    var checkpointKey: String? { get }
    /// Whether this input can wait while the buffer is full (back-pressure): its readings are then
    /// held, never dropped, and its calls to the sink return only once there is room. An input
    /// that cannot wait (a sensor that only shows the present) has its readings dropped by the
    /// buffer's policy instead, counted. Default: inputs with a ``checkpointKey``.
    var canWait: Bool { get }
    /// Produces readings until the source ends or the task is cancelled. Readings passed to
    /// `sink` before returning are accepted; an input must not hold any back when cancelled.
    /// `checkpoint` is the position the buffer last committed for ``checkpointKey`` (nil: start).
    func run(into sink: some ReadingSink, resumingFrom checkpoint: Int64?) async throws -> InputSummary
}

extension Input {
    public var checkpointKey: String? { nil }
    public var canWait: Bool { checkpointKey != nil }

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
    /// For an input that can wait, this returns only while the buffer has room (back-pressure).
    func accept(_ readings: [Reading], checkpoint: InputCheckpoint?) async throws
    /// The commit notification of push inputs: returns once `readings` are in the buffer on disk
    /// (they join the next group commit), throws if they could not be stored. Only then may the
    /// input acknowledge them to its source (an HTTP 204, an MQTT PUBACK).
    func commit(_ readings: [Reading]) async throws
    /// Whether the buffer is full and readings of inputs that can wait are being held: a push
    /// input refuses new data meanwhile (HTTP 503 with `Retry-After`) instead of taking it in.
    var isPaused: Bool { get }
    /// The outcome of one read of the source (a poll, a connection attempt): `nil` for success.
    /// The agent keeps per-input errors and the last success for its health report.
    func report(error: (any Error)?)
}

extension ReadingSink {
    public func accept(_ readings: [Reading]) async throws { try await accept(readings, checkpoint: nil) }
    /// A sink that stores at once (a collector in a test) has committed when `accept` returned.
    public func commit(_ readings: [Reading]) async throws { try await accept(readings, checkpoint: nil) }
    public var isPaused: Bool { false }
    /// Outcomes are not recorded (a collector in a test).
    public func report(error: (any Error)?) {}
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

/// The one error type of the inputs: which input, what went wrong and, where known, the fix.
public struct InputError: Error, CustomStringConvertible, Sendable {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
