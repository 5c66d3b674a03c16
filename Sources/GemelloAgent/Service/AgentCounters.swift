import Synchronization

/// Counters shared by the agent's services and reported in health messages and at exit.
public final class AgentCounters: Sendable {
    /// Readings committed to the buffer in this run.
    public let accepted = Atomic<Int64>(0)
    /// Readings dropped by the buffer's limits in this run (quota, age, full disk).
    public let dropped = Atomic<Int64>(0)
    /// Readings acknowledged by the aggregator in this run.
    public let delivered = Atomic<Int64>(0)
    /// Batches published for the first time / sent again.
    public let batchesSent = Atomic<Int64>(0)
    public let batchesResent = Atomic<Int64>(0)
    /// Bytes of batch payloads published (first sends and resends): what the backhaul carried.
    public let bytesSent = Atomic<Int64>(0)
    /// Whether the buffer is full and the inputs that can wait are paused (back-pressure).
    public let bufferPaused = Atomic<Bool>(false)
    /// How many times the buffer filled and paused them, in this run.
    public let pauses = Atomic<Int64>(0)

    public init() {}
}
