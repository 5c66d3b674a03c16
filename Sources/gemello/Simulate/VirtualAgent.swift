import GemelloAgent
import GemelloCore
import GemelloMosquitto
import Synchronization

/// Totals over every virtual agent of a simulation, for progress lines and the final summary.
final class SimulationStats: Sendable {
    let connected = Atomic<Int>(0)
    let batchesSent = Atomic<Int>(0)
    let batchesAcknowledged = Atomic<Int>(0)
    let readingsSent = Atomic<Int>(0)
    let healthSent = Atomic<Int>(0)
    let reconnects = Atomic<Int>(0)
}

/// One light virtual agent: a real MQTT connection with the agent's protocol (retained birth,
/// Last Will death, periodic health, wire-format batches the aggregator acknowledges) but no
/// durable buffer: readings not yet published live in memory. For fleet-scale tests only.
struct VirtualAgent: Sendable {
    struct Settings: Sendable {
        var broker: BrokerAddress
        var sampleInterval: Duration
        var batchInterval: Duration
        var healthInterval: Duration
        var keepAliveSeconds: Int32
        var seed: UInt64
    }

    let id: String
    let site: Site
    let profile: SimulatedInput.Profile
    let epoch: UInt64
    let settings: Settings
    let stats: SimulationStats
    /// One poll(2) loop drives every virtual agent's socket (a thread per client would not scale).
    let network: MQTTPollLoop

    /// Readings sampled but not yet published, capped (oldest dropped) while disconnected.
    final class Pending: ReadingSink, Sendable {
        let readings = Mutex<[Reading]>([])
        static let cap = 10_000
        func accept(_ new: [Reading], checkpoint: InputCheckpoint?) async throws {
            readings.withLock { readings in
                readings.append(contentsOf: new)
                if readings.count > Self.cap { readings.removeFirst(readings.count - Self.cap) }
            }
        }
        func take() -> [Reading] { readings.withLock { readings in defer { readings = [] }; return readings } }
    }

    /// Runs until cancelled, then says goodbye (a graceful death) and disconnects.
    func run() async {
        let input = SimulatedInput(configuration: .init(sensorID: profile.rawValue, profile: profile,
                                                        interval: settings.sampleInterval, seed: settings.seed),
                                   clock: SystemWallClock())
        let will = AgentDeath(agentID: id, bootEpoch: epoch)
        guard let client = try? network.client(options: .init(
            clientID: "gemello-sim-\(id)", cleanSession: true, keepAliveSeconds: settings.keepAliveSeconds,
            maxInflightMessages: 20, will: (Topics.death(agent: id), Array(will.json().utf8), true))) else {
            Console.error("gemello simulate: cannot create an MQTT client for \(id)")
            return
        }
        let pending = Pending()
        let connected = SharedFlag()
        await withTaskGroup(of: Void.self) { group in
            network.connect(client, broker: settings.broker, keepAliveSeconds: settings.keepAliveSeconds)
            group.addTask { _ = try? await input.run(into: pending) }
            group.addTask { await handleEvents(client, connected: connected, sensor: input.sensor) }
            group.addTask { await publishLoop(client, pending: pending, connected: connected) }
            await waitForCancellation()
            group.cancelAll()
        }
        if connected.isSet {
            let goodbye = AgentDeath(agentID: id, bootEpoch: epoch, graceful: true)
            _ = try? client.publish(topic: Topics.death(agent: id), payload: Array(goodbye.json().utf8), retain: true)
            try? await Task.sleep(for: .milliseconds(200))
            stats.connected.subtract(1, ordering: .relaxed)
        }
        client.disconnect()
        try? await Task.sleep(for: .milliseconds(200))  // the loop sends the DISCONNECT
        network.remove(client)
    }

    private func waitForCancellation() async {
        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
    }

    private func handleEvents(_ client: MQTTClient, connected: SharedFlag, sensor: SensorInfo) async {
        for await event in client.events {
            if Task.isCancelled { return }
            switch event {
            case .connected:
                if !connected.isSet { stats.connected.add(1, ordering: .relaxed) }
                connected.set(true)
                _ = try? client.subscribe(Topics.ack(agent: id))
                publishBirth(client, sensor: sensor)
            case .disconnected, .connectRefused:
                if connected.isSet {
                    stats.connected.subtract(1, ordering: .relaxed)
                    stats.reconnects.add(1, ordering: .relaxed)
                }
                connected.set(false)
            case .message(let message):
                if let ack = try? BatchAck.decode(message.payload) {
                    stats.batchesAcknowledged.add(ack.sequences.count, ordering: .relaxed)
                }
            case .published, .subscribed:
                break
            }
        }
    }

    private func publishBirth(_ client: MQTTClient, sensor: SensorInfo) {
        let birth = AgentBirth(agentID: id, bootEpoch: epoch, version: GemelloVersion.current + "-sim", site: site, sensors: [sensor],
                               time: SystemWallClock().nowMilliseconds(), configHash: "simulated",
                               healthIntervalSeconds: settings.healthInterval.seconds, keepAliveSeconds: Int(settings.keepAliveSeconds))
        _ = try? client.publish(topic: Topics.birth(agent: id), payload: Array(birth.json().utf8), retain: true)
    }

    /// Every batch interval publishes what was sampled; every health interval sends health.
    private func publishLoop(_ client: MQTTClient, pending: Pending, connected: SharedFlag) async {
        let started = ContinuousClock.now
        var sequence: UInt64 = 0
        var lastHealth = started
        var sent = 0
        // Spread the fleet's timers over the interval, as real agents booted at different times are.
        try? await Task.sleep(for: settings.batchInterval * Double(settings.seed % 1000) / 1000)
        while !Task.isCancelled {
            let now = ContinuousClock.now
            if connected.isSet {
                let readings = pending.take()
                if !readings.isEmpty {
                    sequence += 1
                    var batch = Batch(agentID: id, bootEpoch: epoch, sequence: sequence, createdAt: SystemWallClock().nowMilliseconds())
                    var lookup: [SeriesInfo: UInt32] = [:]
                    for reading in readings { batch.append(reading, lookup: &lookup) }
                    if let bytes = try? WireFormat.encode(batch), (try? client.publish(topic: Topics.data(agent: id), payload: bytes)) != nil {
                        stats.batchesSent.add(1, ordering: .relaxed)
                        stats.readingsSent.add(readings.count, ordering: .relaxed)
                        sent += readings.count
                    }
                }
                if now - lastHealth >= settings.healthInterval {
                    lastHealth = now
                    let health = AgentHealth(agentID: id, bootEpoch: epoch, time: SystemWallClock().nowMilliseconds(),
                                             uptimeSeconds: (now - started).components.seconds, readingsAccepted: Int64(sent),
                                             readingsDelivered: Int64(sent), readingsBuffered: Int64(pending.readings.withLock { $0.count }),
                                             readingsDropped: 0)
                    if (try? client.publish(topic: Topics.health(agent: id), payload: Array(health.json().utf8))) != nil {
                        stats.healthSent.add(1, ordering: .relaxed)
                    }
                }
            }
            try? await Task.sleep(for: min(settings.batchInterval, settings.healthInterval))
        }
    }
}
