import GemelloCore

/// When a polled input reads its source: every `interval`, each poll delayed by a random part of
/// `jitter` (so the inputs of a fleet, or of one box, do not all fire on the same second).
public struct PollSchedule: Sendable, Equatable {
    public var interval: Duration
    public var jitter: Duration

    public init(interval: Duration, jitter: Duration = .zero) {
        self.interval = interval
        self.jitter = jitter
    }

    /// The shared `interval` and `jitter` keys of every polled input.
    public init(_ section: ConfigSection, defaultInterval: Duration) throws(CoreError) {
        interval = try section.duration("interval", default: defaultInterval, range: .milliseconds(10)...(.seconds(86_400)))
        jitter = try section.duration("jitter", default: .zero, range: .zero...(.seconds(3600)))
        guard jitter < interval || jitter == .zero else {
            throw section.error("jitter", "must be shorter than the interval", value: "\(jitter)",
                                fix: "set jitter below interval (\(interval)), e.g. a tenth of it")
        }
    }
}

/// Reads a source once per poll. Keeps whatever it needs between polls (the previous CPU counters
/// to turn them into rates, an open Modbus connection).
public protocol InputPoller: Sendable {
    /// One reading of the source at wall-clock time `now` (Unix ms); readings carry `now` unless
    /// the source stamps its own. Throwing counts as a failed poll; the next poll tries again.
    mutating func poll(now: Int64) async throws -> [Reading]
}

/// An input that reads its source on a schedule; the shared loop (``run(into:resumingFrom:)``)
/// does the timing, reports each poll's outcome to the sink (errors, last success) and keeps going
/// after failures. While the buffer is full, an input that can wait is held inside
/// ``ReadingSink/accept(_:checkpoint:)`` and skips the polls meanwhile (its device keeps state,
/// e.g. an energy meter's counters); one that cannot wait keeps polling and its readings go to
/// the buffer's policy.
public protocol PolledInput: Input {
    associatedtype Poller: InputPoller
    var schedule: PollSchedule { get }
    var clock: any WallClock { get }
    /// A fresh poller, made when the input starts.
    func makePoller() throws -> Poller
}

extension PolledInput {
    public func run(into sink: some ReadingSink, resumingFrom checkpoint: Int64?) async throws -> InputSummary {
        var poller = try makePoller()
        var polls = 0, failures = 0, produced = 0, skipped = 0
        let start = ContinuousClock.now
        var tick: Int64 = 0
        var random = SystemRandomNumberGenerator()
        while !Task.isCancelled {
            let readings: [Reading]
            do {
                polls += 1
                readings = try await poller.poll(now: clock.nowMilliseconds())
                sink.report(error: nil)
            } catch is CancellationError {
                break
            } catch {
                failures += 1
                sink.report(error: error)
                readings = []
            }
            if !readings.isEmpty {
                try await sink.accept(readings, checkpoint: nil)
                produced += readings.count
            }
            // The next tick on the fixed grid (start + k × interval), plus jitter; ticks that a
            // slow poll or a full buffer made us miss are skipped, not caught up in a burst.
            let now = ContinuousClock.now
            let next = max(tick + 1, Int64(((now - start) / schedule.interval).rounded(.down)) + 1)
            skipped += Int(next - tick - 1)
            tick = next
            var due = start + schedule.interval * Double(tick)
            if schedule.jitter > .zero {
                due += schedule.jitter * Double.random(in: 0..<1, using: &random)
            }
            do { try await Task.sleep(until: due, clock: .continuous) } catch { break }
        }
        return InputSummary([("polls", polls), ("failures", failures), ("readings", produced), ("skippedPolls", skipped)])
    }
}
