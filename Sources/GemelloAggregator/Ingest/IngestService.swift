import Foundation
import GemelloCore
import GemelloMosquitto
import GemelloSQLite
import Logging
import ServiceLifecycle

/// Subscribes to every agent's topics, stores batches in the twin, and only then acknowledges
/// them end to end. Births, deaths and health update the fleet registry.
///
/// A batch that fails to decode is counted against its agent and logged; the service goes on.
public final class IngestService: Service {
    private let configuration: AggregatorConfiguration
    private let store: TwinStore
    public let counters: IngestCounters
    private let metrics: AggregatorMetrics?
    private let clock: any WallClock
    private let logger: Logger
    private let decoder = JSONDecoder()
    /// Told after each commit, so the NGSI-LD twin reflects it at once.
    private let projection: TwinProjection?

    public init(configuration: AggregatorConfiguration, store: TwinStore, counters: IngestCounters,
                metrics: AggregatorMetrics? = nil, projection: TwinProjection? = nil, clock: any WallClock = SystemWallClock(),
                logger: Logger) {
        self.projection = projection
        self.configuration = configuration
        self.store = store
        self.counters = counters
        self.metrics = metrics
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        guard let broker = BrokerAddress(url: configuration.broker) else {
            throw AggregatorError(.configuration, "broker: not a broker URL (got '\(configuration.broker)')")
        }
        let client: MQTTClient
        do {
            // Persistent session: while we restart, the broker keeps our subscriptions and queues
            // batches (agents still hold everything until we acknowledge).
            client = try MQTTClient(options: .init(clientID: configuration.clientID, cleanSession: false, keepAliveSeconds: 10,
                                                   maxInflightMessages: 1000,
                                                   will: (Topics.aggregatorState, Array(AggregatorState(online: false, time: 0).json().utf8), true)))
        } catch {
            throw AggregatorError(.broker, "cannot start the MQTT client for \(broker): \(error)")
        }
        logger.info("ingest starting", metadata: ["broker": "\(broker)", "store": "\(store.path)"])
        try await withThrowingTaskGroup(of: Void.self) { group in
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
            var connection = ConnectionState()
            for await event in client.events.cancelOnGracefulShutdown() {
                handle(event, client: client, connection: &connection)
            }
            group.cancelAll()
        }
        // Agents keep new batches in their own buffers from now on (the Last Will covers a crash).
        _ = try? client.publish(topic: Topics.aggregatorState,
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
            let topics = Topics.aggregatorSubscriptions + [Topics.aggregatorProbe(clientID: configuration.clientID)]
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
                    try client.publish(topic: Topics.aggregatorState,
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
            case "data": ingest(message.payload, agent: agent, client: client)
            case "birth":
                announce(message.payload, agent: agent, as: AgentBirth.self) { birth, _ in
                    try self.store.recordBirth(birth, now: self.clock.nowMilliseconds())
                }
                projection?.agentBorn(agent)  // sensor types, version and site may have changed
            case "death": announce(message.payload, agent: agent, as: AgentDeath.self) { death, _ in
                try self.store.recordDeath(death, now: self.clock.nowMilliseconds())
            }
            case "health": announce(message.payload, agent: agent, as: AgentHealth.self) { health, json in
                try self.store.recordHealth(health, json: json, now: self.clock.nowMilliseconds())
            }
            default: break
            }
        }
    }

    /// Decode, store (one transaction), then acknowledge. Duplicates are acknowledged again: the
    /// agent resent because it missed our first ack.
    func ingest(_ payload: [UInt8], agent: String, client: MQTTClient) {
        let now = clock.nowMilliseconds()
        let started = ContinuousClock.now
        let batch: Batch
        do {
            batch = try WireFormat.decode(payload)
            guard batch.agentID == agent else {
                throw CoreError(.malformed, "batch names agent '\(batch.agentID)' but arrived on the topic of '\(agent)'")
            }
        } catch {
            counters.rejected.add(1, ordering: .relaxed)
            metrics?.rejected.increment()
            logger.warning("rejected a batch", metadata: ["agent": "\(agent)", "bytes": "\(payload.count)", "error": "\(error)"])
            try? store.recordRejected(agent: agent, now: now)
            return
        }
        var prepared: TwinProjection.Prepared?
        do {
            let alongside: ((SQLiteConnection) throws -> Void)? = projection.map { projection in
                { db in prepared = try projection.prepare(agent: agent, in: db) }
            }
            switch try store.ingest(batch, receivedAt: now, alongside: alongside) {
            case .stored(let readings):
                counters.batches.add(1, ordering: .relaxed)
                counters.readings.add(Int64(readings), ordering: .relaxed)
                metrics?.batches.increment()
                metrics?.readings.increment(by: readings)
                metrics?.batchLatency.recordMilliseconds(max(0, now - batch.createdAt))
            case .duplicate:
                counters.duplicates.add(1, ordering: .relaxed)
                metrics?.duplicates.increment()
                logger.debug("duplicate batch", metadata: ["agent": "\(agent)", "sequence": "\(batch.sequence)"])
            }
        } catch {
            // Not acknowledged: the agent keeps the batch and resends it after its ack timeout.
            logger.error("could not store a batch; it will be resent", metadata: ["agent": "\(agent)", "error": "\(error)"])
            return
        }
        let ack = BatchAck(bootEpoch: batch.bootEpoch, sequences: [batch.sequence])
        do { try client.publish(topic: Topics.ack(agent: agent), payload: ack.encode()) } catch {
            logger.warning("could not send an ack; the agent will resend", metadata: ["agent": "\(agent)", "error": "\(error)"])
        }
        metrics?.storeDuration.recordSeconds((ContinuousClock.now - started).seconds)
        if let prepared { projection?.commit(prepared) }
    }

    /// Decodes and records a birth, death or health message (`record` gets it and its JSON text)
    /// and logs the status change it caused. One that names another agent than its topic is
    /// refused: otherwise any client could mark any agent offline.
    func announce<T: AgentAnnouncement>(_ payload: [UInt8], agent: String, as type: T.Type,
                                        record: (T, String) throws -> FleetTransition?) {
        guard !payload.isEmpty else { return }  // a cleared retained message
        do {
            let announcement = try decoder.decode(T.self, from: Data(payload))
            guard announcement.agentID == agent else {
                throw CoreError(.malformed, "names agent '\(announcement.agentID)' but arrived on the topic of '\(agent)'")
            }
            if let change = try record(announcement, String(decoding: payload, as: UTF8.self)) {
                logger.log(level: change.to == .online ? .info : .warning, "agent \(change.to.rawValue)", metadata: [
                    "agent": "\(agent)", "epoch": "\(change.bootEpoch)", "reason": "\(change.reason)"])
            }
        } catch {
            logger.warning("ignoring a malformed announcement", metadata: ["agent": "\(agent)", "type": "\(T.self)", "error": "\(error)"])
        }
    }
}
