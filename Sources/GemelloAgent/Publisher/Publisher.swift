import GemelloCore
import GemelloMosquitto
import Logging
import ServiceLifecycle

/// Takes batches from the buffer, publishes them at QoS 1 within a bounded window, and releases
/// them only on the aggregator's end-to-end acknowledgement (see ``DeliveryStateMachine``).
/// Also announces the agent (birth, retained; death as Last Will) and sends health heartbeats.
public final class Publisher: Service {
    public struct Settings: Sendable {
        public var agentID: String
        public var broker: BrokerAddress
        public var site: Site
        public var sensors: [SensorInfo]
        public var publisher: AgentConfiguration.Publisher
        public var healthInterval: Duration
        /// A full health report at least this often; deltas in between (docs/protocol.md).
        public var healthFullInterval: Duration = .seconds(600)
        /// Fingerprint of the configuration file, announced in the birth.
        public var configHash: String? = nil
        /// TLS files and MQTT credentials for the broker.
        public var credentials = MQTTCredentials()
        /// Signs every batch (docs/wire-format.md §2.1); nil sends them unsigned.
        public var signingKey: [UInt8]? = nil
        /// The inputs' self-metrics and whether the buffer holds waiting inputs back, for health.
        public var inputHealth: (@Sendable () -> (paused: Bool, inputs: [InputHealth]))? = nil
    }

    enum Event: Sendable {
        case mqtt(MQTTEvent)
        case tick
        case shutdown
    }

    private let settings: Settings
    private let buffer: ReadingBuffer
    private let counters: AgentCounters
    private let clock: any WallClock
    private let logger: Logger
    private let startedAt = ContinuousClock.now
    static let tickInterval = Duration.milliseconds(100)
    /// How long after the state subscription's SUBACK a retained state may still arrive (it
    /// follows the SUBACK on the same connection, so this is generous), and the longest wait.
    static let retainedStateGrace = Duration.milliseconds(300)
    static let stateWaitLimit = Duration.seconds(5)

    public init(settings: Settings, buffer: ReadingBuffer, counters: AgentCounters, clock: any WallClock, logger: Logger) {
        self.settings = settings
        self.buffer = buffer
        self.counters = counters
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        let agentID = settings.agentID
        let death = AgentDeath(agentID: agentID, bootEpoch: buffer.bootEpoch)
        let client: MQTTClient
        do {
            client = try MQTTClient(options: .init(
                clientID: "gemello-agent-\(agentID)", cleanSession: true,
                keepAliveSeconds: Int32(settings.publisher.keepAlive.components.seconds),
                maxInflightMessages: Int32(min(settings.publisher.maxInFlight * 2 + 8, 1000)),
                will: (Topics.death(agent: agentID), Array(death.json().utf8), true),
                credentials: settings.credentials))
        } catch {
            throw AgentError(.publisher, "cannot start the MQTT client for \(settings.broker): \(error)")
        }
        var loop = Loop(publisher: self, client: client)
        try loop.restore()

        let (events, continuation) = AsyncStream<Event>.makeStream()
        let broker = settings.broker
        let keepAlive = Int32(settings.publisher.keepAlive.components.seconds)
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Connects in the background: the agent runs and buffers while no broker answers.
            group.addTask { try await client.start(broker: broker, keepAliveSeconds: keepAlive) }
            group.addTask {
                for await event in client.events { continuation.yield(.mqtt(event)) }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: Self.tickInterval)
                    continuation.yield(.tick)
                }
            }
            try await withGracefulShutdownHandler {
                for await event in events {
                    if try loop.handle(event) == .stop { break }
                }
            } onGracefulShutdown: {
                continuation.yield(.shutdown)
            }
            // Say goodbye ourselves: a clean disconnect suppresses the Last Will.
            let goodbye = AgentDeath(agentID: agentID, bootEpoch: buffer.bootEpoch, graceful: true)
            _ = try? client.publish(topic: Topics.death(agent: agentID), payload: Array(goodbye.json().utf8), retain: true)
            try? await Task.sleep(for: .milliseconds(100))
            client.disconnect()
            continuation.finish()
            group.cancelAll()
        }
        logger.info("publisher stopped", metadata: [
            "delivered": "\(counters.delivered.load(ordering: .relaxed))",
            "batchesSent": "\(counters.batchesSent.load(ordering: .relaxed))",
            "batchesResent": "\(counters.batchesResent.load(ordering: .relaxed))",
            "bytesSent": "\(counters.bytesSent.load(ordering: .relaxed))",
            "buffered": "\(buffer.bufferedReadings)"])
    }

    /// The event loop's state, kept in one value owned by `run()`.
    struct Loop {
        enum Outcome { case `continue`, stop }

        let publisher: Publisher
        let client: MQTTClient
        var machine: DeliveryStateMachine
        var budget: SendBudget
        /// A backlog is draining (logged when it starts and when it ends).
        var drainingBacklog = false
        /// Encoded bytes of every batch in flight, so a resend does not re-read the buffer; `refers`
        /// when it is a v2 frame relying on series the aggregator confirmed earlier.
        var payloads: [UInt64: (bytes: [UInt8], readings: Int, v2: Bool, refers: Bool)] = [:]
        /// Wire v2: this boot epoch's series numbering and what the aggregator confirmed of it.
        var session: WireSession
        /// What the aggregator said it understands in its latest acknowledgement (nothing until
        /// then: the first batches of a run are v1, and so is everything for an older aggregator).
        var features: BatchAck.Features = []
        var lastHealth = ContinuousClock.now - .seconds(3600)
        /// Full health reports and deltas, and when anything was last published (batches show
        /// the agent alive: no heartbeat is needed then).
        var health: HealthReporter
        var lastPublish = ContinuousClock.now - .seconds(3600)
        var drainDeadline: ContinuousClock.Instant?
        var wasConnected = false
        var outageReported = false
        /// The message id of this connection's subscription to the aggregator state, and when to
        /// stop waiting for a retained state (sending starts then if none said "offline").
        var stateSubscription: Int32?
        var stateDeadline: ContinuousClock.Instant?
        /// The aggregators' states (one, or a share group's members).
        var presence = AggregatorPresence()
        /// For health: connections lost, and when each in-flight batch was last published.
        var reconnects: Int64 = 0
        var publishedAt: [UInt64: ContinuousClock.Instant] = [:]
        var processStats = ProcessStats()

        init(publisher: Publisher, client: MQTTClient) {
            self.publisher = publisher
            self.client = client
            machine = DeliveryStateMachine(maxInFlight: publisher.settings.publisher.maxInFlight,
                                           ackTimeout: publisher.settings.publisher.ackTimeout)
            budget = SendBudget(bytesPerSecond: publisher.settings.publisher.backlogRate, now: .now)
            session = WireSession(bootEpoch: publisher.buffer.bootEpoch)
            health = HealthReporter(interval: publisher.settings.healthInterval, fullInterval: publisher.settings.healthFullInterval)
        }

        var settings: Settings { publisher.settings }
        var logger: Logger { publisher.logger }

        mutating func restore() throws {
            for batch in try publisher.buffer.unacknowledgedBatches(agentID: settings.agentID) {
                try encode(batch)  // of an earlier epoch: v1
                machine.restore([batch.sequence], now: .now)
            }
            if !payloads.isEmpty { logger.info("restored unacknowledged batches", metadata: ["batches": "\(payloads.count)"]) }
        }

        /// Encodes `batch` into ``payloads``: v2 once the aggregator said it reads it, v1 otherwise.
        mutating func encode(_ batch: Batch) throws {
            let entries = features.contains(.wireV2) ? session.entries(for: batch) : nil
            let bytes = try WireFormat.encode(batch, compressionLevel: Int32(settings.publisher.compressionLevel),
                                              signingKey: settings.signingKey, entries: entries)
            payloads[batch.sequence] = (bytes, batch.count, entries != nil, entries?.contains { !$0.defines } ?? false)
        }

        /// Encodes the batches in flight that `reencode` selects again (after a resync, or for an
        /// aggregator that no longer reads v2) and publishes them at once.
        mutating func reencodeInFlight(_ reencode: ((bytes: [UInt8], readings: Int, v2: Bool, refers: Bool)) -> Bool) throws {
            let selected = Set(payloads.filter { reencode($0.value) }.keys)
            guard !selected.isEmpty else { return }
            var sequences: [UInt64] = []
            for batch in try publisher.buffer.unacknowledgedBatches(agentID: settings.agentID) where selected.contains(batch.sequence) {
                try encode(batch)
                sequences.append(batch.sequence)
            }
            logger.info("sending batches in flight again with their series defined", metadata: ["batches": "\(sequences.count)"])
            resend(sequences)
        }

        mutating func handle(_ event: Event) throws -> Outcome {
            let now = ContinuousClock.now
            switch event {
            case .mqtt(.connected):
                wasConnected = true
                outageReported = false
                health.connectionRestarted()
                logger.info("connected to broker", metadata: ["broker": "\(settings.broker)"])
                stateSubscription = nil
                presence = AggregatorPresence()  // the retained states come again after the subscription
                do {
                    _ = try client.subscribe(Topics.ack(agent: settings.agentID))
                    // The single aggregator's state, then every group member's: the retained states
                    // come after the second SUBACK.
                    _ = try client.subscribe(Topics.aggregatorStates[0])
                    stateSubscription = try client.subscribe(Topics.aggregatorStates[1])
                    stateDeadline = now + Publisher.stateWaitLimit  // in case the SUBACK never comes
                } catch {
                    // Without acknowledgements batches stay unconfirmed and are resent: nothing is lost.
                    logger.warning("could not subscribe to acknowledgements; will retry on reconnect", metadata: ["error": "\(error)"])
                }
                publishBirth()
                if case .resend(let sequences)? = machine.connected(now: now, awaitingState: stateSubscription != nil) { resend(sequences) }
                try fillWindow()
            case .mqtt(.disconnected(_, let reason)), .mqtt(.connectRefused(let reason)):
                if wasConnected || !outageReported {  // one warning per outage, not per retry
                    logger.warning("broker not reachable; buffering until it is back", metadata: ["reason": "\(reason)"])
                    outageReported = true
                }
                if wasConnected { reconnects += 1 }
                wasConnected = false
                machine.disconnected()
            case .mqtt(.subscribed(let messageID)) where messageID == stateSubscription:
                // The broker sends retained messages right after this SUBACK: give them a moment.
                stateDeadline = min(stateDeadline ?? now, now + Publisher.retainedStateGrace)
            case .mqtt(.published), .mqtt(.subscribed):
                break  // the broker has it; only the aggregator's ack releases a batch
            case .mqtt(.message(let message)) where Topics.isAggregatorState(message.topic):
                presence.update(topic: message.topic, payload: message.payload)
                guard let online = presence.online else { break }
                if online != machine.aggregatorOnline {
                    logger.info(online ? "aggregator online: sending" : "aggregator offline: holding batches in the buffer",
                                metadata: ["buffered": "\(publisher.buffer.bufferedReadings)"])
                }
                if case .resend(let sequences)? = machine.aggregator(online: online, now: now) { resend(sequences) }
                try fillWindow()
            case .mqtt(.message(let message)):
                guard message.topic == Topics.ack(agent: settings.agentID) else { break }
                do {
                    if let resync = try WireResync.decode(message.payload) {
                        guard resync.bootEpoch == session.bootEpoch else { break }
                        // The aggregator does not hold our series (it restarted, or a share group's
                        // other member got the batch): define them again in what is in flight.
                        session.forgetConfirmations()
                        try reencodeInFlight { $0.refers }
                        break
                    }
                    let ack = try BatchAck.decode(message.payload)
                    if ack.bootEpoch == session.bootEpoch { session.acknowledged(ack.sequences) }
                    let lostV2 = features.contains(.wireV2) && !ack.features.contains(.wireV2)
                    // Pinned to v1 (`publisher.wire-version: 1`): v1 frames and full health reports.
                    features = settings.publisher.wireVersion >= 2 ? ack.features : []
                    if lostV2 {
                        logger.warning("the aggregator no longer reads wire format v2; sending v1", metadata: [:])
                        session.forgetConfirmations()
                        try reencodeInFlight { $0.v2 }
                    }
                    if case .release(let sequences)? = machine.acknowledged(ack.sequences) {
                        let released = try publisher.buffer.acknowledge(sequences)
                        for sequence in sequences {
                            payloads[sequence] = nil
                            if let sent = publishedAt.removeValue(forKey: sequence) {
                                health.ackLatency(milliseconds: Double((now - sent).wholeMilliseconds))
                            }
                        }
                        publisher.counters.delivered.add(released, ordering: .relaxed)
                    }
                    try fillWindow()
                } catch let error as CoreError {
                    logger.warning("ignoring a malformed acknowledgement", metadata: ["error": "\(error)"])
                }
            case .tick:
                if let deadline = stateDeadline, now >= deadline {
                    stateDeadline = nil
                    if case .resend(let sequences)? = machine.stateChecked(now: now) { resend(sequences) }
                }
                if case .resend(let sequences)? = machine.tick(now: now) {
                    logger.info("resending unacknowledged batches", metadata: ["batches": "\(sequences.count)"])
                    resend(sequences)
                }
                try fillWindow()
                if now - lastHealth >= settings.healthInterval { publishHealth(now: now) }
                if let deadline = drainDeadline {
                    if publisher.buffer.bufferedReadings == 0 && machine.isIdle { return .stop }
                    if now >= deadline {
                        logger.warning("drain timeout: readings stay buffered for the next start",
                                       metadata: ["buffered": "\(publisher.buffer.bufferedReadings)"])
                        return .stop
                    }
                }
            case .shutdown:
                drainDeadline = now + settings.publisher.drainTimeout
                logger.info("draining the buffer before stopping", metadata: ["buffered": "\(publisher.buffer.bufferedReadings)"])
            }
            return .continue
        }

        /// Publishes new batches while the window has room and the buffer has readings: live
        /// ones first, backlog ones while the rate budget has room.
        mutating func fillWindow() throws {
            let options = settings.publisher
            while machine.canSendNew {
                let now = ContinuousClock.now
                budget.refill(now: now)
                guard let (batch, source) = try publisher.buffer.takeBatch(
                    agentID: settings.agentID, maxReadings: options.batchSize, now: publisher.clock.nowMilliseconds(),
                    liveWindow: options.liveWindow, backlogAllowed: budget.allowsBacklog,
                    maxDelay: drainDeadline == nil ? options.maxDelay : nil) else { break }
                if source == .backlog && !drainingBacklog {
                    drainingBacklog = true
                    logger.info("sending fresh readings first; draining the backlog behind them", metadata: [
                        "backlog": "\(publisher.buffer.backlogReadings)",
                        "rateLimit": "\(options.backlogRate.map { "\($0) B/s" } ?? "unlimited")"])
                }
                try encode(batch)
                machine.sent(batch.sequence, now: now)
                publisher.counters.batchesSent.add(1, ordering: .relaxed)
                guard send(batch.sequence) else { break }
            }
            if drainingBacklog && !publisher.buffer.hasBacklog {
                drainingBacklog = false
                logger.info("backlog sent; back to acceptance order", metadata: ["buffered": "\(publisher.buffer.bufferedReadings)"])
            }
        }

        mutating func resend(_ sequences: [UInt64]) {
            for sequence in sequences {
                publisher.counters.batchesResent.add(1, ordering: .relaxed)
                guard send(sequence) else { return }
            }
        }

        /// Publishes one in-flight batch; `false` when the connection is gone (it stays in flight).
        mutating func send(_ sequence: UInt64) -> Bool {
            guard let payload = payloads[sequence] else { return true }
            do {
                try client.publish(topic: Topics.data(agent: settings.agentID), payload: payload.bytes)
                let now = ContinuousClock.now
                budget.spend(payload.bytes.count, now: now)
                publishedAt[sequence] = now
                lastPublish = now
                publisher.counters.bytesSent.add(Int64(payload.bytes.count), ordering: .relaxed)
                return true
            } catch {
                machine.disconnected()
                return false
            }
        }

        func publishBirth() {
            let birth = AgentBirth(agentID: settings.agentID, bootEpoch: publisher.buffer.bootEpoch, version: GemelloVersion.current,
                                   site: settings.site, sensors: settings.sensors, time: publisher.clock.nowMilliseconds(),
                                   configHash: settings.configHash, healthIntervalSeconds: settings.healthInterval.seconds,
                                   keepAliveSeconds: Int(settings.publisher.keepAlive.components.seconds))
            _ = try? client.publish(topic: Topics.birth(agent: settings.agentID), payload: Array(birth.json().utf8), retain: true)
        }

        mutating func publishHealth(now: ContinuousClock.Instant) {
            lastHealth = now
            let cpu = processStats.cpuPercent(now: now)  // sampled every interval, sent or not
            guard machine.isConnected else { return }
            let buffer = publisher.buffer
            let wallNow = publisher.clock.nowMilliseconds()
            var report = AgentHealth(
                agentID: settings.agentID, bootEpoch: buffer.bootEpoch, time: wallNow,
                uptimeSeconds: (now - publisher.startedAt).components.seconds,
                readingsAccepted: publisher.counters.accepted.load(ordering: .relaxed),
                readingsDelivered: publisher.counters.delivered.load(ordering: .relaxed),
                readingsBuffered: buffer.bufferedReadings, readingsDropped: buffer.droppedReadings)
            let usage = buffer.usage()
            report.bufferedBytes = usage.bytes
            report.oldestUnsentSeconds = usage.oldestAcceptedAt.map { Double(max(0, wallNow - $0)) / 1000 } ?? 0
            report.diskFreeBytes = ProcessStats.diskFreeBytes(at: FileText.folder(of: buffer.path))
            report.rssBytes = ProcessStats.residentBytes()
            report.cpuPercent = cpu
            report.reconnects = reconnects
            if let inputs = settings.inputHealth?() {
                report.inputs = inputs.inputs
                report.bufferPaused = inputs.paused ? true : nil
            }
            guard let message = health.report(report, now: now, deltas: features.contains(.healthDeltas), lastPublish: lastPublish),
                  (try? client.publish(topic: Topics.health(agent: settings.agentID), payload: Array(message.json.utf8))) != nil else { return }
            lastPublish = now
            health.published(message, now: now, wallNow: wallNow)
        }
    }
}
