import Foundation
@testable import GemelloAggregator
import GemelloMosquitto
import GemelloTesting
import Logging
import Testing

/// An `mqtt://` notification endpoint whose broker stalls (frozen with SIGSTOP: the connection
/// stays open, no PUBACK ever comes): the publish fails after the acknowledgement timeout, so the
/// notification stays queued for a retry instead of holding its subscription's worker, and the
/// aggregator's shutdown, for ever; once the broker answers again a fresh connection delivers.
@Suite struct MQTTNotifierTests {
    @Test(.timeLimit(.minutes(1)))
    func aStalledBrokerFailsThePublishAfterTheTimeoutThenAFreshConnectionDelivers() async throws {
        let broker = try BrokerHarness()
        defer { broker.stop() }
        let notifiers = MQTTNotifiers(logger: Logger(label: "test"), ackTimeout: .seconds(1))
        defer { notifiers.stop() }
        let address = BrokerAddress(host: "127.0.0.1", port: broker.port, tls: false)
        /// Publishes until one is acknowledged (a first connection may take longer than the
        /// notifier's 1 s grace on a loaded machine: "not connected", retried, as the dispatcher does).
        func deliver() async throws {
            var last = ""
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                do {
                    try await notifiers.publish("{}", topic: "cr/notifications", address: address, credentials: { MQTTCredentials() })
                    return
                } catch {
                    last = "\(error)"
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            Issue.record("not delivered within 30 s: \(last)")
        }
        try await deliver()

        broker.freeze()
        let started = ContinuousClock.now
        var failure = ""
        do {
            try await notifiers.publish("{}", topic: "cr/notifications", address: address, credentials: { MQTTCredentials() })
        } catch {
            failure = "\(error)"
        }
        let waited = ContinuousClock.now - started
        #expect(failure.contains("no acknowledgement") && waited < .seconds(8), "after \(waited): \(failure)")

        broker.thaw()
        try await deliver()
    }
}
