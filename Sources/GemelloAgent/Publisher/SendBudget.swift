import GemelloCore

/// The publisher's rate cap: a token bucket over the bytes it publishes. Pure (the caller
/// passes the time), so its arithmetic is tested without a clock or a network.
///
/// Every byte sent is spent from the bucket, live or not; only **backlog** batches wait for it
/// to have room. So fresh readings are never held back by the cap, and while a backlog drains
/// the agent's whole data traffic stays within `bytesPerSecond` (plus the live rate, if that
/// alone is higher). The bucket holds one second's worth, so a quiet second does not turn into
/// a long burst later.
public struct SendBudget: Sendable {
    /// `nil`: no cap.
    public let bytesPerSecond: Int64?
    private var available: Double
    private var updated: ContinuousClock.Instant

    public init(bytesPerSecond: Int64?, now: ContinuousClock.Instant) {
        self.bytesPerSecond = bytesPerSecond
        available = Double(bytesPerSecond ?? 0)
        updated = now
    }

    /// May a backlog batch go now? (It may overdraw the bucket; the debt delays the next one.)
    public var allowsBacklog: Bool { bytesPerSecond == nil || available > 0 }

    /// Adds what accrued since the last call, up to one second's worth.
    public mutating func refill(now: ContinuousClock.Instant) {
        guard let rate = bytesPerSecond, now > updated else { return }
        available = min(Double(rate), available + (now - updated).seconds * Double(rate))
        updated = now
    }

    /// Records bytes that were published.
    public mutating func spend(_ bytes: Int, now: ContinuousClock.Instant) {
        refill(now: now)
        if bytesPerSecond != nil { available -= Double(bytes) }
    }
}
