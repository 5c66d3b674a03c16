@testable import GemelloAgent
import GemelloCore
import Testing

/// When the agent reports its health, and how (docs/protocol.md, "Live rate"), without I/O.
@Suite struct HealthReporterTests {
    let t0 = ContinuousClock.now

    static func health(buffered: Int64 = 2, dropped: Int64 = 0, epoch: UInt64 = 4) -> AgentHealth {
        AgentHealth(agentID: "tower-1", bootEpoch: epoch, time: 1_000_000, uptimeSeconds: 10, readingsAccepted: 100,
                    readingsDelivered: 98, readingsBuffered: buffered, readingsDropped: dropped)
    }

    @Test func fullReportsUntilTheAggregatorReadsDeltas() {
        var reporter = HealthReporter(interval: .seconds(10), fullInterval: .seconds(600))
        reporter.ackLatency(milliseconds: 12)
        reporter.ackLatency(milliseconds: 30)
        guard case .full(let first)? = reporter.report(Self.health(), now: t0, deltas: true, lastPublish: t0) else {
            Issue.record("the first report must be full"); return
        }
        #expect(first.ackLatencyMeanMilliseconds == 21 && first.ackLatencyMaxMilliseconds == 30)
        reporter.published(.full(first), now: t0, wallNow: 1_000_000)
        // An aggregator that does not read deltas gets full reports every time.
        guard case .full(let second)? = reporter.report(Self.health(), now: t0 + .seconds(10), deltas: false, lastPublish: t0) else {
            Issue.record("without deltas every report is full"); return
        }
        #expect(second.ackLatencyMeanMilliseconds == nil, "latencies went with the report that carried them")
    }

    @Test func deltasOnlyForSignificantChangesAndHeartbeatsWhenQuiet() {
        var reporter = HealthReporter(interval: .seconds(10), fullInterval: .seconds(600))
        reporter.published(.full(Self.health()), now: t0, wallNow: 1_000_000)
        let t1 = t0 + .seconds(10)
        // Nothing significant, and a batch went out 3 s ago: nothing to say.
        #expect(reporter.report(Self.health(buffered: 5), now: t1, deltas: true, lastPublish: t1 - .seconds(3)) == nil)
        // Nothing significant and nothing sent for a whole interval: an empty delta, the heartbeat.
        #expect(reporter.report(Self.health(buffered: 5), now: t1, deltas: true, lastPublish: t1 - .seconds(10))
                == .delta(AgentHealthDelta(bootEpoch: 4)))
        // Drops are always significant; once sent, the aggregator's view has them.
        var expected = AgentHealthDelta(bootEpoch: 4)
        expected.readingsDropped = 7
        let report = reporter.report(Self.health(dropped: 7), now: t1, deltas: true, lastPublish: t1)
        #expect(report == .delta(expected))
        reporter.published(.delta(expected), now: t1, wallNow: 1_010_000)
        #expect(reporter.sent?.readingsDropped == 7 && reporter.sent?.time == 1_010_000)
        #expect(reporter.report(Self.health(dropped: 7), now: t1 + .seconds(10), deltas: true, lastPublish: t1 + .seconds(5)) == nil)
    }

    @Test func aFullReportEveryFullIntervalAfterReconnectsAndInANewEpoch() {
        var reporter = HealthReporter(interval: .seconds(10), fullInterval: .seconds(60))
        reporter.published(.full(Self.health()), now: t0, wallNow: 1_000_000)
        let due = reporter.report(Self.health(), now: t0 + .seconds(60), deltas: true, lastPublish: t0 + .seconds(59))
        guard case .full? = due else { Issue.record("a full report is due after the full interval"); return }
        let otherEpoch = reporter.report(Self.health(epoch: 5), now: t0 + .seconds(10), deltas: true, lastPublish: t0)
        guard case .full? = otherEpoch else { Issue.record("a new boot epoch starts with a full report"); return }
        reporter.connectionRestarted()
        let afterReconnect = reporter.report(Self.health(), now: t0 + .seconds(10), deltas: true, lastPublish: t0)
        guard case .full? = afterReconnect else { Issue.record("a reconnect is followed by a full report"); return }
    }
}
