/// The agent's delivery logic as a pure state machine: which batches are in flight, when to
/// (re)send, when a batch may leave the buffer. No I/O, no clock of its own: the publisher feeds
/// it events with the current time and carries out the actions it returns.
///
/// Rules: at most `maxInFlight` batches unacknowledged; a batch is released only by the
/// aggregator's end-to-end ack (never by the broker's PUBACK); a batch unacknowledged for
/// `ackTimeout` is sent again; on every (re)connect all in-flight batches are sent again. While
/// the aggregator's retained state says it is offline nothing is sent: batches wait in the
/// agent's buffer, and all in-flight ones go out again when it comes back online. With no state
/// known (no aggregator has announced itself on this broker) the agent sends as usual.
public struct DeliveryStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        /// Publish these batches (by sequence) again; their bytes come from the buffer.
        case resend([UInt64])
        /// Delete these batches from the buffer: the twin has them.
        case release([UInt64])
    }

    public let maxInFlight: Int
    public let ackTimeout: Duration
    public private(set) var isConnected = false
    /// The aggregator's last announced state: `nil` until one is seen (then it is kept across
    /// reconnects: the retained message refreshes it).
    public private(set) var aggregatorOnline: Bool?
    /// After a (re)connect nothing is sent until the aggregator's retained state had its chance to
    /// arrive (``stateChecked(now:)``): an agent must not pour a window of batches into the broker
    /// in the moment before it learns that no aggregator is there.
    public private(set) var awaitingState = false
    /// Sequence → when it was last sent.
    public private(set) var inFlight: [UInt64: ContinuousClock.Instant] = [:]

    public init(maxInFlight: Int, ackTimeout: Duration) {
        self.maxInFlight = maxInFlight
        self.ackTimeout = ackTimeout
    }

    /// Room for another new batch?
    public var canSendNew: Bool { isSending && inFlight.count < maxInFlight }

    /// Connected, and the aggregator not known to be offline.
    var isSending: Bool { isConnected && !awaitingState && aggregatorOnline != false }

    /// Batches restored from the buffer after a restart: in flight, to be sent on connect.
    public mutating func restore(_ sequences: [UInt64], now: ContinuousClock.Instant) {
        for sequence in sequences { inFlight[sequence] = now }
    }

    /// The broker connection is up: everything still in flight goes out again, oldest first
    /// (a clean session lost it; a kept one may have delivered it, and duplicates are dropped
    /// by the aggregator).
    public mutating func connected(now: ContinuousClock.Instant, awaitingState: Bool = false) -> Action? {
        isConnected = true
        self.awaitingState = awaitingState
        return resendAll(now: now)
    }

    /// The state subscription is in place and any retained state has been delivered (or not):
    /// sending starts (unless the state said offline), in-flight batches first.
    public mutating func stateChecked(now: ContinuousClock.Instant) -> Action? {
        guard awaitingState else { return nil }
        awaitingState = false
        return resendAll(now: now)
    }

    /// The aggregator announced its state (retained `gemello/v1/aggregator/state`). Coming back
    /// online sends everything in flight again: it was held, or sent while nobody could
    /// acknowledge it. (From "unknown" nothing was held: the batches already went out.)
    public mutating func aggregator(online: Bool, now: ContinuousClock.Instant) -> Action? {
        let wasHeld = aggregatorOnline == false || awaitingState
        aggregatorOnline = online
        awaitingState = false
        return online && wasHeld ? resendAll(now: now) : nil
    }

    private mutating func resendAll(now: ContinuousClock.Instant) -> Action? {
        guard isSending, !inFlight.isEmpty else { return nil }
        let all = inFlight.keys.sorted()
        for sequence in all { inFlight[sequence] = now }
        return .resend(all)
    }

    public mutating func disconnected() { isConnected = false }

    /// A new batch was published.
    public mutating func sent(_ sequence: UInt64, now: ContinuousClock.Instant) {
        inFlight[sequence] = now
    }

    /// The aggregator acknowledged these sequences. Only known in-flight ones are released;
    /// a stale or repeated ack is ignored.
    public mutating func acknowledged(_ sequences: [UInt64]) -> Action? {
        let known = sequences.filter { inFlight.removeValue(forKey: $0) != nil }
        return known.isEmpty ? nil : .release(known)
    }

    /// Time passed: batches past their ack timeout are sent again (only while connected).
    public mutating func tick(now: ContinuousClock.Instant) -> Action? {
        guard isSending else { return nil }
        let overdue = inFlight.filter { now - $0.value >= ackTimeout }.keys.sorted()
        guard !overdue.isEmpty else { return nil }
        for sequence in overdue { inFlight[sequence] = now }
        return .resend(overdue)
    }

    /// Nothing left to deliver.
    public var isIdle: Bool { inFlight.isEmpty }
}
