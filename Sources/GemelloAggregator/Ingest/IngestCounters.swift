import Synchronization

/// Live counters of the ingest path, read by `/health`.
public final class IngestCounters: Sendable {
    public let batches = Atomic<Int64>(0)
    /// Transactions that stored at least one batch (group commit: often fewer than `batches`).
    public let commits = Atomic<Int64>(0)
    public let readings = Atomic<Int64>(0)
    public let duplicates = Atomic<Int64>(0)
    public let rejected = Atomic<Int64>(0)
    /// Of the rejected: refused by the enrolment registry (not enrolled, revoked, bad signature).
    public let refused = Atomic<Int64>(0)
    /// Wire v2 batches answered with a resync (they referred to series we did not hold).
    public let resyncs = Atomic<Int64>(0)
    /// Batches the store failed to take (not acknowledged: their agents resend them). A count
    /// that keeps growing is a batch refused at every resend: the log's "could not store a batch"
    /// names its agent and the store's error.
    public let storeFailures = Atomic<Int64>(0)
    public let brokerConnected = Atomic<Bool>(false)
    /// Connected and every subscription confirmed: batches published from now on reach us.
    public let subscribed = Atomic<Bool>(false)
    /// Since when (Unix ms) the current subscription hears agents; 0 while it does not.
    public let listeningSince = Atomic<Int64>(0)

    /// When our latest lag probe was published (Unix ms), 0 when none is on its way; and the
    /// lag the last probe measured (ms).
    public let probeSentAt = Atomic<Int64>(0)
    public let ingestLag = Atomic<Int64>(0)
    /// Probes go out once a second; one older than that is late by the excess.
    public static let probeInterval: Int64 = 1000

    /// When (Unix ms) the aggregator last showed it was running: the fleet monitor's ticks, a
    /// second apart (0: no monitor runs).
    public let aliveAt = Atomic<Int64>(0)
    /// A longer pause of the aggregator itself (its process frozen or suspended) is a gap in our
    /// hearing, not the agents' silence. Well above the few seconds a loaded machine may delay a
    /// tick (a shorter threshold would restart the silence of an agent really cut off, delaying
    /// its verdict), well below the pauses that made whole fleets go offline (20 s and more).
    public static let gapThreshold: Int64 = 10_000

    /// The aggregator did not run until `now`: what agents said meanwhile is still on its way to
    /// us (queued by the broker, or in our socket), so silence counts from `now`.
    public func noteGap(upTo now: Int64) {
        var current = listeningSince.load(ordering: .relaxed)
        while current != 0 && current < now {
            let (exchanged, original) = listeningSince.compareExchange(expected: current, desired: now, ordering: .relaxed)
            if exchanged { break }
            current = original
        }
    }

    /// How well we hear agents at `now`: silence counts from when we began listening (from `now`
    /// itself while we are not, or while we have not run for longer than ``gapThreshold``),
    /// minus how far our ingest runs behind (the last probe's delay, or an outstanding probe's,
    /// whichever is larger).
    public func hearing(now: Int64) -> Hearing {
        let alive = aliveAt.load(ordering: .relaxed)
        if alive > 0 && now - alive > Self.gapThreshold { return Hearing(since: now) }  // a gap the monitor has not seen yet
        let since = listeningSince.load(ordering: .relaxed)
        let pending = probeSentAt.load(ordering: .relaxed)
        let overdue = pending == 0 ? 0 : max(0, now - pending - Self.probeInterval)
        return Hearing(since: since == 0 ? now : since, lag: max(ingestLag.load(ordering: .relaxed), overdue))
    }
    public let startedAt = ContinuousClock.now

    public init() {}
}
