import Synchronization

/// Live counters of the ingest path, read by `/health`.
public final class IngestCounters: Sendable {
    public let batches = Atomic<Int64>(0)
    public let readings = Atomic<Int64>(0)
    public let duplicates = Atomic<Int64>(0)
    public let rejected = Atomic<Int64>(0)
    public let brokerConnected = Atomic<Bool>(false)
    /// Connected and every subscription confirmed: batches published from now on reach us.
    public let subscribed = Atomic<Bool>(false)
    /// Since when (Unix ms) the current subscription hears agents; 0 while it does not.
    public let listeningSince = Atomic<Int64>(0)
    public let startedAt = ContinuousClock.now

    public init() {}
}
