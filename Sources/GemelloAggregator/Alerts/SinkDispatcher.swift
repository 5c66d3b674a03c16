import Foundation
import GemelloCore
import GemelloMosquitto
import GemelloStorage
import Logging
import ServiceLifecycle

/// Delivers the alert outbox: per sink, one message at a time, oldest first (so in order),
/// deleted only once the sink took it (HTTP 2xx, or the MQTT broker's PUBACK); a failure is
/// retried with backoff (0.5 s doubling to 30 s) while the sink is down, and survives restarts
/// (the message stays in the store). Delivery is at least once: a message the sink took but whose
/// answer was lost is sent again, with the same `X-Gemello-Message-Id` (and CAP identifier).
/// Webhooks also get `X-Gemello-Queued-At`: when the message was queued (Unix ms, in the
/// transaction that committed what caused it), so a receiver can see how late it is.
///
/// Aggregators sharing a store deliver each sink from one of them at a time (a lease, as the
/// NGSI-LD notification outbox's).
public final class SinkDispatcher: Service {
    let store: TwinStore
    let outbox: AlertOutbox
    let clock: any WallClock
    let logger: Logger
    let owner: String
    let mqtt: MQTTNotifiers

    public init(store: TwinStore, outbox: AlertOutbox, owner: String, clock: any WallClock = SystemWallClock(), logger: Logger) {
        self.store = store
        self.outbox = outbox
        self.owner = owner
        self.clock = clock
        self.logger = logger
        mqtt = MQTTNotifiers(logger: logger)
    }

    public func run() async throws {
        guard !outbox.sinks.isEmpty else {
            try? await gracefulShutdown()
            return
        }
        await withTaskGroup(of: Void.self) { group in
            for sink in outbox.sinks { group.addTask { await self.work(sink) } }
            await group.waitForAll()
        }
        mqtt.stop()
    }

    func work(_ sink: AlertsConfiguration.Sink) async {
        let http = HTTPNotifier(timeout: sink.timeout.seconds)
        let signal = outbox.signals[sink.name] ?? WakeSignal()
        let lease = "sink:" + sink.name
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let now = clock.nowMilliseconds()
            let head: AlertOutbox.Head?
            do {
                head = try store.writing { [owner, outbox] db -> AlertOutbox.Head? in
                    guard let head = try AlertOutbox.head(sink.name, in: db) else {
                        try NotificationDispatcher.release(lease, owner: owner, in: db, table: "alert_leases")
                        // Empty in the store: what this aggregator counts agrees (in a share group
                        // the others deliver some of the messages this one queued).
                        outbox.emptied(sink.name)
                        return nil
                    }
                    guard head.nextAttempt <= now,
                          try NotificationDispatcher.lease(lease, owner: owner, now: now, in: db, table: "alert_leases") else { return nil }
                    return head
                }
            } catch {
                logger.error("cannot read the alert outbox", metadata: ["sink": "\(sink.name)", "error": "\(error)"])
                head = nil
            }
            outbox.metrics[sink.name]?.oldest.record(head.map { Double(max(0, now - $0.created)) / 1000 } ?? 0)
            guard let head else {
                await signal.wait(upTo: .milliseconds(250))
                continue
            }
            let ok = await deliver(head, to: sink, http: http)
            let settled = clock.nowMilliseconds()
            do {
                try store.writing { db in
                    if ok {
                        try db.run("DELETE FROM alert_outbox WHERE seq = ?", [.integer(head.seq)])
                        try db.run("""
                            INSERT INTO alert_sinks (name, delivered) VALUES (?, 1)
                            ON CONFLICT (name) DO UPDATE SET delivered = alert_sinks.delivered + 1
                            """, [.text(sink.name)])
                    } else {
                        let backoff = min(30_000, 500 << min(Int(head.attempts), 6))
                        try db.run("UPDATE alert_outbox SET attempts = attempts + 1, next_attempt = ? WHERE seq = ?",
                                   [.integer(settled + Int64(backoff)), .integer(head.seq)])
                    }
                }
            } catch {
                logger.error("cannot update the alert outbox", metadata: ["sink": "\(sink.name)", "error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(500))
                continue
            }
            let metrics = outbox.metrics[sink.name]
            if ok {
                outbox.delivered(sink.name)
                metrics?.delivered.increment()
                if head.attempts > 0 {
                    metrics?.retries.increment()
                    logger.notice("alert sink reachable again; its queue is being delivered", metadata: [
                        "sink": "\(sink.name)", "queued": "\(outbox.count(sink.name))"])
                }
            } else {
                metrics?.failures.increment()
                await signal.wait(upTo: .milliseconds(min(30_000, 500 << min(Int(head.attempts), 6))))
            }
        }
    }

    func deliver(_ head: AlertOutbox.Head, to sink: AlertsConfiguration.Sink, http: HTTPNotifier) async -> Bool {
        do {
            switch sink.kind {
            case .webhook:
                var headers = [("Content-Type", head.contentType), ("X-Gemello-Message-Id", head.messageID),
                               ("X-Gemello-Queued-At", String(head.created))]
                if let value = sink.headerValue { headers.append((sink.header, value)) }
                try await http.post(Array(head.body.utf8), headers: headers, to: sink.url)
            case .mqtt:
                // Validated with the configuration; the password file is read when the connection is made.
                let address = try sink.brokerAccess.address()
                try await mqtt.publish(head.body, topic: sink.topic, address: address,
                                       credentials: { () throws(CoreError) in try sink.brokerAccess.credentials() })
            case .ngsiLD:
                return true  // carries telemetry through a managed NGSI-LD subscription, never alert messages
            }
            return true
        } catch {
            if head.attempts == 0 || head.attempts % 10 == 0 {
                logger.warning("alert message not delivered; it stays queued and is retried", metadata: [
                    "sink": "\(sink.name)", "message": "\(head.messageID)", "attempts": "\(head.attempts + 1)",
                    "queued": "\(outbox.count(sink.name))", "error": "\(error)"])
            }
            return false
        }
    }
}
