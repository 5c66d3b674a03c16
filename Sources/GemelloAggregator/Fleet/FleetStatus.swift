import GemelloCore

/// Decides an agent's status from what the aggregator knows. Pure, so it is tested without I/O.
public struct FleetStatusPolicy: Sendable {
    /// Connected but silent longer than this: `stale` (3 health intervals by default).
    public var staleAfter: Duration
    /// Silent longer than this: `offline` even without a Last Will (a lost death message).
    public var offlineAfter: Duration

    public init(staleAfter: Duration = .seconds(30), offlineAfter: Duration = .seconds(120)) {
        self.staleAfter = staleAfter
        self.offlineAfter = offlineAfter
    }

    /// - Parameters:
    ///   - bootEpoch: epoch of the latest birth; `deathEpoch`: epoch of the latest death.
    ///     A death only counts for the session it belongs to (a stale will never hides a newer session).
    ///   - lastSeen / now: Unix milliseconds.
    public func status(bootEpoch: UInt64, deathEpoch: UInt64, lastSeen: Int64?, now: Int64) -> FleetAgentSummary.Status {
        guard bootEpoch > deathEpoch, let lastSeen else { return .offline }
        let silence = Duration.milliseconds(max(0, now - lastSeen))
        if silence > offlineAfter { return .offline }
        if silence > staleAfter { return .stale }
        return .online
    }
}
