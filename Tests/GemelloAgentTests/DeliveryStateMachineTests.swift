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
}
