@testable import GemelloAgent
import Testing

@Suite struct DeliveryStateMachineTests {
    let t0 = ContinuousClock.now

    @Test func boundsTheWindowAndReleasesOnlyAckedBatches() {
        var machine = DeliveryStateMachine(maxInFlight: 2, ackTimeout: .seconds(30))
        #expect(!machine.canSendNew)  // not connected yet
        #expect(machine.connected(now: t0) == nil)
        machine.sent(1, now: t0)
        #expect(machine.canSendNew)
        machine.sent(2, now: t0)
        #expect(!machine.canSendNew)
        #expect(machine.acknowledged([2, 7]) == .release([2]))  // 7 was never in flight
        #expect(machine.acknowledged([2]) == nil)                // repeated ack
        #expect(machine.canSendNew)
    }

    @Test func resendsAfterTimeoutOnlyWhileConnected() {
        var machine = DeliveryStateMachine(maxInFlight: 8, ackTimeout: .seconds(30))
        _ = machine.connected(now: t0)
        machine.sent(1, now: t0)
        machine.sent(2, now: t0 + .seconds(10))
        #expect(machine.tick(now: t0 + .seconds(29)) == nil)
        #expect(machine.tick(now: t0 + .seconds(30)) == .resend([1]))
        #expect(machine.tick(now: t0 + .seconds(31)) == nil)  // its timer restarted
        machine.disconnected()
        #expect(machine.tick(now: t0 + .seconds(100)) == nil)
        #expect(!machine.canSendNew)
    }

    @Test func reconnectResendsEverythingInFlightOldestFirst() {
        var machine = DeliveryStateMachine(maxInFlight: 8, ackTimeout: .seconds(30))
        machine.restore([5, 3], now: t0)  // from the buffer after a restart
        #expect(machine.connected(now: t0) == .resend([3, 5]))
        machine.sent(6, now: t0)
        machine.disconnected()
        #expect(machine.connected(now: t0 + .seconds(1)) == .resend([3, 5, 6]))
        #expect(machine.acknowledged([3, 5, 6]) == .release([3, 5, 6]))
        #expect(machine.isIdle)
    }

    /// While the aggregator's retained state says offline, nothing goes out; when it comes back,
    /// everything in flight is sent again and new batches flow. Unknown state: send as usual.
    @Test func holdsBatchesWhileTheAggregatorIsOffline() {
        var machine = DeliveryStateMachine(maxInFlight: 8, ackTimeout: .seconds(30))
        machine.restore([4], now: t0)
        #expect(machine.connected(now: t0) == .resend([4]))  // no state known yet
        #expect(machine.aggregator(online: true, now: t0) == nil)  // already sent
        machine.sent(5, now: t0)
        #expect(machine.aggregator(online: false, now: t0 + .seconds(1)) == nil)
        #expect(!machine.canSendNew)
        #expect(machine.tick(now: t0 + .seconds(100)) == nil)  // no resends into the void
        machine.disconnected()
        #expect(machine.connected(now: t0 + .seconds(101)) == nil)  // still offline: hold
        #expect(machine.aggregator(online: true, now: t0 + .seconds(102)) == .resend([4, 5]))
        #expect(machine.canSendNew)
        #expect(machine.acknowledged([4, 5]) == .release([4, 5]))
    }

    /// Right after a (re)connect the agent waits until a retained state had its chance to arrive.
    @Test func waitsForTheRetainedStateAfterConnecting() {
        var machine = DeliveryStateMachine(maxInFlight: 8, ackTimeout: .seconds(30))
        machine.restore([2], now: t0)
        #expect(machine.connected(now: t0, awaitingState: true) == nil)
        #expect(!machine.canSendNew)
        #expect(machine.tick(now: t0 + .seconds(60)) == nil)
        #expect(machine.stateChecked(now: t0 + .seconds(61)) == .resend([2]))  // no state came: send
        #expect(machine.canSendNew)
        machine.disconnected()
        #expect(machine.connected(now: t0 + .seconds(62), awaitingState: true) == nil)
        #expect(machine.aggregator(online: true, now: t0 + .seconds(63)) == .resend([2]))  // the state came
        #expect(machine.stateChecked(now: t0 + .seconds(64)) == nil)
    }
}
