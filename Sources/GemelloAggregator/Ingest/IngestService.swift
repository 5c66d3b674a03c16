import Foundation
import GemelloBrokerAccess
import GemelloCore
import GemelloMosquitto
import Logging
import ServiceLifecycle

/// The aggregator's MQTT session: subscribes to every agent's topics and hands what arrives to
/// its parts: batches to the ``BatchIngestor`` (stored, then acknowledged end to end; batches
/// that queued up together commit together), births, deaths and health to the
/// ``AnnouncementRecorder`` (the fleet registry). It also probes its own lag through the broker.
public final class IngestService: Service {
    private let configuration: AggregatorConfiguration
    private let store: TwinStore
    public let counters: IngestCounters
    private let metrics: AggregatorMetrics?
    private let clock: any WallClock
    private let logger: Logger
    private let batches: BatchIngestor
    private let announcements: AnnouncementRecorder

    public init(configuration: AggregatorConfiguration, store: TwinStore, counters: IngestCounters,
                metrics: AggregatorMetrics? = nil, projection: TwinProjection? = nil, alerts: AlertEngine? = nil,
                enrolment: EnrolmentGate? = nil, clock: any WallClock = SystemWallClock(), logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.counters = counters
        self.metrics = metrics
        self.clock = clock
        self.logger = logger
        batches = BatchIngestor(store: store, counters: counters, metrics: metrics, projection: projection, alerts: alerts,
                                enrolment: enrolment, clock: clock, logger: logger)
        announcements = AnnouncementRecorder(store: store, projection: projection, alerts: alerts, clock: clock, logger: logger)
    }

    /// Where this aggregator tells agents whether it takes batches: the single state topic, or its
    /// own under it when it is one of a share group (agents send while any member is online).
    var stateTopic: String {
        configuration.shareGroup == nil ? Topics.aggregatorState : Topics.aggregatorState(member: configuration.clientID)
    }

    public func run() async throws {
        let broker: BrokerAddress
        let credentials: MQTTCredentials
        do {
            broker = try configuration.broker.address()
            credentials = try configuration.broker.credentials()
        } catch {
            throw AggregatorError(.configuration, "\(error)")
        }
        if let warning = configuration.broker.insecureWarning { logger.warning("\(warning)") }
        let client: MQTTClient
        do {
            // Persistent session: while we restart, the broker keeps our subscriptions and queues
            // batches (agents still hold everything until we acknowledge).
            client = try MQTTClient(options: .init(clientID: configuration.clientID, cleanSession: false, keepAliveSeconds: 10,
                                                   maxInflightMessages: 1000,
                                                   will: (stateTopic, Array(AggregatorState(online: false, time: 0).json().utf8), true),
                                                   credentials: credentials))
        } catch {
            throw AggregatorError(.broker, "cannot start the MQTT client for \(broker): \(error)")
        }
        logger.info("ingest starting", metadata: ["broker": "\(broker)", "store": "\(store.path)"])
        await withThrowingTaskGroup(of: Void.self) { group in
            // Keeps trying while the broker is down; the HTTP API serves the twin meanwhile.
            group.addTask { try await client.start(broker: broker, keepAliveSeconds: 10) }
            group.addTask { [counters, clock, configuration] in
                // Times our own path through the broker: see `Hearing`.
                let topic = Topics.aggregatorProbe(clientID: configuration.clientID)
                while !Task.isCancelled {
                    try await Task.sleep(for: .milliseconds(IngestCounters.probeInterval))
                    guard counters.subscribed.load(ordering: .relaxed), counters.probeSentAt.load(ordering: .relaxed) == 0 else { continue }
                    let now = clock.nowMilliseconds()
                    if (try? client.publish(topic: topic, payload: Array(String(now).utf8))) != nil {
                        counters.probeSentAt.store(now, ordering: .relaxed)
                    }
                }
            }
            // The network loop's events wait in the inbox; the loop below takes all that wait.
            let inbox = EventInbox()
            group.addTask {
                for await event in client.events.cancelOnGracefulShutdown() { inbox.push(event) }
                inbox.finish()
            }
            var connection = ConnectionState()
            while let events = await inbox.takeAll() {
                var data: [(agent: String, payload: [UInt8])] = []
                for event in events {
                    // Consecutive batches are stored together; anything else is handled in its turn.
                    if case .message(let message) = event, let (agent, kind) = Topics.parse(message.topic), kind == "data" {
                        data.append((agent, message.payload))
                        if data.count == BatchIngestor.maxGroup { batches.ingest(data, client: client); data = [] }
                        continue
                    }
                    if !data.isEmpty { batches.ingest(data, client: client); data = [] }
                    handle(event, client: client, connection: &connection)
                }
                if !data.isEmpty { batches.ingest(data, client: client) }
            }
            group.cancelAll()
        }
        // Agents keep new batches in their own buffers from now on (the Last Will covers a crash).
        _ = try? client.publish(topic: stateTopic,
                                payload: Array(AggregatorState(online: false, time: clock.nowMilliseconds()).json().utf8), retain: true)
        client.disconnect()
        logger.info("ingest stopped", metadata: ["batches": "\(counters.batches.load(ordering: .relaxed))"])
    }

    /// What the event loop remembers between events; owned by `run()`.
    struct ConnectionState {
        /// SUBACKs still expected after the last connect.
        var pendingSubscriptions = 0
        /// The current outage was logged (one warning per outage, not per retry).
        var outageReported = false
    }

    func handle(_ event: MQTTEvent, client: MQTTClient, connection: inout ConnectionState) {
        switch event {
        case .connected(let sessionPresent):
            counters.brokerConnected.store(true, ordering: .relaxed)
            logger.info("connected to broker", metadata: ["sessionPresent": "\(sessionPresent)"])
            let topics = Topics.aggregatorSubscriptions(shareGroup: configuration.shareGroup)
                + [Topics.aggregatorProbe(clientID: configuration.clientID)]
            connection = ConnectionState(pendingSubscriptions: topics.count)
            for topic in topics {
                do { try client.subscribe(topic) } catch { logger.error("subscribe failed", metadata: ["topic": "\(topic)", "error": "\(error)"]) }
            }
        case .subscribed:
            connection.pendingSubscriptions -= 1
            if connection.pendingSubscriptions == 0 {
                counters.subscribed.store(true, ordering: .relaxed)
                counters.listeningSince.store(clock.nowMilliseconds(), ordering: .relaxed)
                logger.info("subscribed to all agent topics")
                // Only now tell the agents to send: we are ready to store and acknowledge.
                do {
                    try client.publish(topic: stateTopic,
                                       payload: Array(AggregatorState(online: true, time: clock.nowMilliseconds()).json().utf8), retain: true)
                } catch {
                    logger.error("could not announce the aggregator online; agents hold their batches", metadata: ["error": "\(error)"])
                }
            }
        case .disconnected(_, let reason), .connectRefused(let reason):
            counters.subscribed.store(false, ordering: .relaxed)
            counters.listeningSince.store(0, ordering: .relaxed)
            counters.probeSentAt.store(0, ordering: .relaxed)
            counters.ingestLag.store(0, ordering: .relaxed)
            let wasConnected = counters.brokerConnected.exchange(false, ordering: .relaxed)
            if wasConnected || !connection.outageReported {
                logger.warning("broker not reachable; retrying", metadata: ["reason": "\(reason)"])
                connection.outageReported = true
            }
        case .published:
            break
        case .message(let message) where message.topic == Topics.aggregatorProbe(clientID: configuration.clientID):
            if let sent = Int64(String(decoding: message.payload, as: UTF8.self)) {
                counters.ingestLag.store(max(0, clock.nowMilliseconds() - sent), ordering: .relaxed)
            }
            counters.probeSentAt.store(0, ordering: .relaxed)
        case .message(let message):
            guard let (agent, kind) = Topics.parse(message.topic) else { return }
            switch kind {
            case "data": batches.ingest([(agent, message.payload)], client: client)
            case "birth": announcements.birth(message.payload, agent: agent)
            case "death": announcements.death(message.payload, agent: agent)
            case "health": announcements.health(message.payload, agent: agent)
            default: break
            }
        }
    }
}
