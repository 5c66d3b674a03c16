/// What one series condition remembers of one series (pure; driven in observation order).
///
/// ``observe(_:_:_:)`` takes one reading and says whether the rule's alert should be raised,
/// stay raised with a new value, or clear: the threshold with its hysteresis, the `for` and
/// `clear-for` durations, and the window of a rate or a mean. A windowed condition speaks only
/// once it has watched three quarters of a window (a mean over the first two readings of a day
/// is not a daily mean).
public struct ConditionState: Sendable {
    /// The newest observation time seen (readings older than it are not this state's to judge).
    public private(set) var watermark: Int64 = .min
    /// Whether the rule's alert is raised for this series.
    public var active = false
    /// The condition's figure at the newest reading judged (nil before the first verdict).
    public private(set) var figure: Double?
    private var firstSeen: Int64 = .min
    private var raiseSince: Int64?
    private var clearSince: Int64?
    private var times: [Int64] = []
    private var values: [Double] = []
    private var head = 0
    private var sum = 0.0

    public init() {}

    /// A state that only knows its alert is raised, at `watermark` (an open backlog episode read
    /// back from the store: its window is gone, its end will be when its backlog stops).
    public init(raisedAt watermark: Int64) {
        self.watermark = watermark
        active = true
    }

    /// What one reading did to the alert.
    public enum Edge: Sendable, Equatable {
        /// Raise now (the condition held for the rule's `for`).
        case raise(at: Int64, value: Double)
        /// Still raised; `value` is the condition's figure now, `reraised` when the raise condition
        /// came back while the alert was on its way to clearing (a flap, damped). Made only when
        /// it matters: a flap, an escalation crossed, or the rule's `update-every` since the last.
        case hold(at: Int64, value: Double, reraised: Bool)
        /// Clear now (the clear condition held for the rule's `clear-for`).
        case clear(at: Int64, value: Double)
    }

    /// Judges one reading; nil when it changes nothing (not raised, or older than the watermark).
    public mutating func observe(_ ts: Int64, _ value: Double, _ rule: AlertRule) -> Edge? {
        observe(ts, value, Spec(rule))
    }

    /// What judging needs of a rule, without its texts (no reference counting per reading).
    public struct Spec: Sendable {
        let condition: AlertRule.Condition
        let forMilliseconds: Int64
        let clearForMilliseconds: Int64
        let updateEveryMilliseconds: Int64
        let risingIsWorse: Bool
        /// The figure past which the severity escalates (nil: no escalation).
        let escalation: Double?

        public init(_ rule: AlertRule) {
            condition = rule.condition
            forMilliseconds = rule.forMilliseconds
            clearForMilliseconds = rule.clearForMilliseconds
            updateEveryMilliseconds = rule.updateEveryMilliseconds
            risingIsWorse = AlertBook.risingIsWorse(rule)
            escalation = rule.escalation.flatMap { $0.severity > rule.severity ? $0.value : nil }
        }

        func past(_ figure: Double) -> Bool {
            guard let e = escalation else { return false }
            return risingIsWorse ? figure >= e : figure <= e
        }
    }

    public mutating func observe(_ ts: Int64, _ value: Double, _ rule: Spec) -> Edge? {
        guard ts >= watermark else { return nil }
        watermark = ts
        if firstSeen == .min { firstSeen = ts }
        let figure: Double
        let raising: Bool, clearing: Bool
        switch rule.condition {
        case .threshold(let above, let raise, let clear):
            figure = value
            raising = above ? value > raise : value < raise
            clearing = above ? value < clear : value > clear
        case .mean(let window, let above, let raise, let clear):
            push(ts, value, window: window)
            guard ts - firstSeen >= window * 3 / 4 else { return nil }
            figure = sum / Double(times.count - head)
            raising = above ? figure > raise : figure < raise
            clearing = above ? figure < clear : figure > clear
        case .rate(let window, let raise, let clear):
            push(ts, value, window: window)
            guard ts - firstSeen >= window * 3 / 4 else { return nil }
            figure = value - values[head]
            raising = raise >= 0 ? figure >= raise : figure <= raise
            clearing = raise >= 0 ? figure < clear : figure > clear
        case .silent, .agentOffline, .agentsOffline:
            return nil
        }
        self.figure = figure
        if !active {
            guard raising else {
                raiseSince = nil
                return nil
            }
            let since = raiseSince ?? ts
            raiseSince = since
            guard ts - since >= rule.forMilliseconds else { return nil }
            active = true
            clearSince = nil
            peak = figure
            reportedAt = ts
            escalated = rule.past(figure)
            return .raise(at: ts, value: figure)
        }
        peak = rule.risingIsWorse ? max(peak, figure) : min(peak, figure)
        if clearing {
            let since = clearSince ?? ts
            clearSince = since
            if ts - since >= rule.clearForMilliseconds {
                active = false
                raiseSince = nil
                clearSince = nil
                return .clear(at: ts, value: figure)
            }
            return report(ts, figure, reraised: false, rule)
        }
        // Between the thresholds the clear condition no longer holds: its `clear-for` starts again.
        let reraised = clearSince != nil && raising
        clearSince = nil
        return report(ts, figure, reraised: reraised, rule)
    }

    /// The most extreme figure since the alert was raised (see ``Alert/peak``).
    public private(set) var peak = 0.0
    private var reportedAt: Int64 = 0
    private var escalated = false

    /// A raised alert's figure is reported only when it matters to its lifecycle: a flap, a
    /// crossing of the escalation value, or `update-every` since the last report (the book would
    /// drop the others; not making them keeps a long alert as cheap as a quiet series).
    private mutating func report(_ ts: Int64, _ figure: Double, reraised: Bool, _ rule: Spec) -> Edge? {
        let past = rule.past(figure)
        guard reraised || past != escalated || ts - reportedAt >= rule.updateEveryMilliseconds else { return nil }
        escalated = past
        reportedAt = ts
        return .hold(at: ts, value: figure, reraised: reraised)
    }


    /// Readings up to `ts` were judged elsewhere (another aggregator of a share group): older ones
    /// are a backlog from now on.
    public mutating func advance(to ts: Int64) { watermark = max(watermark, ts) }

    /// Ends a raised alert at the newest reading judged (a backlog that stopped arriving).
    public mutating func close() -> Edge? {
        guard active else { return nil }
        active = false
        raiseSince = nil
        clearSince = nil
        return .clear(at: watermark, value: figure ?? 0)
    }

    /// Adds a reading to the window and drops what fell out of it (`ts - window`, exclusive).
    private mutating func push(_ ts: Int64, _ value: Double, window: Int64) {
        times.append(ts)
        values.append(value)
        sum += value
        while head < times.count - 1 && times[head] <= ts - window {
            sum -= values[head]
            head += 1
        }
        // Compacts now and then so the arrays hold about one window.
        if head > 64 && head * 2 > times.count {
            times.removeFirst(head)
            values.removeFirst(head)
            head = 0
            sum = values.reduce(0, +)  // also sheds rounding drift
        }
    }
}
