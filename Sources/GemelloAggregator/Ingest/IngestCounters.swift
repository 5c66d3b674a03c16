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

    /// Where agents' silence starts counting at `now` (Unix ms): when we began listening, or `now`
    /// itself while we are not (their silence is then ours, not theirs).
    public func silenceOrigin(now: Int64) -> Int64 {
        let since = listeningSince.load(ordering: .relaxed)
        return since == 0 ? now : since
    }
    public let startedAt = ContinuousClock.now

    public init() {}
}
