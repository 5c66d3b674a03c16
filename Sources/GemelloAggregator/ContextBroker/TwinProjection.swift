import GemelloCore
import GemelloNGSILD
import GemelloStorage
import Logging
import ServiceLifecycle
import Synchronization

/// Keeps the broker's telemetry entities and SDM `Device` entities in step with the twin store:
/// an agent's sensor entities with each batch it commits (``prepare(agent:in:)``, ``commit(_:)``), every agent's
/// `Device` entity (state from the fleet view) every second and after births.
///
/// Telemetry attributes keep their Smart Data Models terms: names are expanded with the Smart
/// Data Models context, so a client that names that context reads `temperature`.
public final class TwinProjection: Service {
    private let store: TwinStore
    let broker: ContextBroker
    private let configuration: AggregatorConfiguration
    private let counters: IngestCounters?
    let clock: any WallClock
    private let logger: Logger
    let sdm: LDContext
    private let sensorFacts = Mutex<[String: SensorFacts]>([:])

    public init(store: TwinStore, broker: ContextBroker, configuration: AggregatorConfiguration, counters: IngestCounters? = nil,
                clock: any WallClock = SystemWallClock(), logger: Logger) {
        self.store = store
        self.broker = broker
        self.configuration = configuration
        self.counters = counters
        self.clock = clock
        self.logger = logger
        self.sdm = broker.contexts.smartDataModels
    }

    /// Loads every telemetry entity and device (at start, before HTTP serves).
    public func loadAll() throws(AggregatorError) {
        let entities = try store.entities()
        let byAgent = Dictionary(grouping: entities, by: \.agentID)
        sensorFacts.withLock { facts in for (agent, list) in byAgent { facts[agent] = SensorFacts(list) } }
        broker.applyTelemetry(entities.map(telemetryEntity))
        try refreshDevices()
    }

    /// What ingesting a batch changes in the broker, worked out inside the batch's transaction.
    public struct Prepared: Sendable {
        let agent: String
        let entities: [Entity]
        let facts: SensorFacts
        let pending: [SubscriptionManager.Pending]
    }

    /// Inside the batch's transaction (`db`): the agent's telemetry entities as the batch leaves
    /// them, and the notifications they cause, written to the outbox through `db` so they commit
    /// with the batch or not at all.
    public func prepare(agent: String, in db: any StoreConnection) throws -> Prepared {
        let twins = try TwinStore.entities(agent: agent, in: db)
        let entities = twins.map(telemetryEntity)
        let pending = broker.telemetryNotifications(entities)
        try broker.subscriptions?.enqueue(pending, in: db)
        return Prepared(agent: agent, entities: entities, facts: SensorFacts(twins), pending: pending)
    }

    /// After the batch committed: the broker shows it, the dispatcher is woken.
    public func commit(_ prepared: Prepared) {
        broker.applyTelemetry(prepared.entities, notified: true)
        broker.subscriptions?.committed(prepared.pending)
        if note(prepared.facts, of: prepared.agent) { try? refreshDevice(prepared.agent) }
    }

    /// Called after a birth: the agent's sensors, version or site may have changed, so its
    /// telemetry entities and its Device entity are projected again.
    public func agentBorn(_ agent: String) {
        do {
            let entities = try store.entities(agent: agent)
            _ = note(SensorFacts(entities), of: agent)
            broker.applyTelemetry(entities.map(telemetryEntity))
            try refreshDevice(agent)
        } catch {
            logger.warning("could not project the agent into the twin", metadata: ["agent": "\(agent)", "error": "\(error)"])
        }
    }

    /// Remembers the agent's sensor facts; whether they changed from known ones (its Device is then stale).
    private func note(_ facts: SensorFacts, of agent: String) -> Bool {
        sensorFacts.withLock { known in
            defer { known[agent] = facts }
            return known[agent] != nil && known[agent] != facts
        }
    }

    func refreshDevice(_ agent: String) throws(AggregatorError) {
        let now = clock.nowMilliseconds()
        if let detail = try store.agentDetail(id: agent, now: now, policy: configuration.fleet,
                                              hearing: counters?.hearing(now: now) ?? .perfect, healthLimit: 0) {
            broker.applyDevices([device(detail.agent, now: now)])
        }
    }

    /// Refreshes every Device entity each second, or less often when a refresh is costly (a
    /// large fleet): never more than a twentieth of one core. (Births refresh their agent's
    /// Device at once.)
    public func run() async throws {
        var pause = Duration.seconds(1)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do { try await Task.sleep(for: pause) } catch { break }
            let started = ContinuousClock.now
            do { try refreshDevices() } catch {
                logger.warning("could not refresh the Device entities", metadata: ["error": "\(error)"])
            }
            if configuration.shareGroup != nil {
                do { try refreshSharedTelemetry() } catch {
                    logger.warning("could not take in the telemetry other aggregators stored", metadata: ["error": "\(error)"])
                }
            }
            pause = max(.seconds(1), (ContinuousClock.now - started) * 20)
        }
    }

    /// In a share group, batches of an agent may be stored by any member and clients may write
    /// through any: the entities clients changed and the telemetry entities of agents heard in
    /// the last few seconds (by any member: `ngsi_changes`, `agents.last_seen`) are read again
    /// from the store. Their notifications were queued by the member that stored them.
    func refreshSharedTelemetry() throws(AggregatorError) {
        let since = clock.nowMilliseconds() - Self.sharedOverlap
        try broker.refreshClientEntities(since: since)
        let agents = try store.agentsSeen(since: since)
        guard !agents.isEmpty else { return }
        var entities: [TwinEntity] = []
        if agents.count > 50 {
            entities = try store.entities()
        } else {
            for agent in agents { entities += try store.entities(agent: agent) }
        }
        broker.applyTelemetry(entities.map(telemetryEntity), notified: true)
    }

    /// How far back each pass looks (passes are a second apart; the rest covers clock skew
    /// between the members and commits that took a while).
    static let sharedOverlap: Int64 = 5_000

    func refreshDevices() throws(AggregatorError) {
        let now = clock.nowMilliseconds()
        let hearing = counters?.hearing(now: now) ?? .perfect
        let fleet = try store.fleet(now: now, policy: configuration.fleet, hearing: hearing)
        broker.applyDevices(fleet.map { device($0, now: now) })
    }

    /// The SDM Device entity of one agent, from its fleet summary.
    func device(_ agent: FleetAgentSummary, now: Int64) -> Entity {
        var entity = Entity(id: Self.deviceID(agent.id), types: [sdm.expand("Device")], createdAt: now, modifiedAt: now)
        func set(_ name: String, _ value: JSON, _ kind: Attribute.Kind = .property) {
            entity.set(sdm.expand(name), Attribute(kind: kind, value: value, createdAt: now, modifiedAt: now, owner: agent.id))
        }
        let sensors = sensorFacts.withLock { $0[agent.id] } ?? SensorFacts()
        set("deviceState", .string(agent.status.rawValue))
        if let lastSeen = agent.lastSeen { set("dateLastValueReported", .string(lastSeen)) }
        if let version = agent.version { set("softwareVersion", .string(version)) }
        if let lat = agent.latitude, let lon = agent.longitude {
            set("location", ["type": "Point", "coordinates": [.number(lon), .number(lat)]], .geoProperty)
        }
        set("controlledProperty", .array(sensors.properties.map { .string($0) }))
        if let site = agent.siteID { set("name", .string(site)) }
        if let battery = sensors.batteryLevel { set("batteryLevel", .number(battery)) }
        return entity
    }

    /// What a Device entity takes from its agent's sensors, kept from the last projection.
    struct SensorFacts: Sendable, Equatable {
        /// Compact SDM attribute names the sensors report.
        var properties: [String] = []
        /// 0–1, where a sensor reports `batteryLevel` (a percentage is scaled).
        var batteryLevel: Double?

        init() {}

        init(_ entities: [TwinEntity]) {
            // What the sensors measure (derived indicators such as the air quality index are not measured).
            properties = Array(Set(entities.flatMap { $0.attributes.map(\.name) }).subtracting([TwinStore.indexAttribute])).sorted()
            if let value = entities.lazy.flatMap(\.attributes).first(where: { $0.name == "batteryLevel" })?.value {
                batteryLevel = value > 1 ? value / 100 : value
            }
        }
    }

    public static func deviceID(_ agent: String) -> String { "urn:ngsi-ld:Device:\(agent)" }

    /// A sensor's latest values as an NGSI-LD entity owned by its agent. System times: created
    /// at its first observation, modified `now` (the commit; an unchanged attribute keeps its
    /// earlier time when merged, ``ContextBroker/merge(_:_:)``).
    func telemetryEntity(_ twin: TwinEntity) -> Entity {
        let now = clock.nowMilliseconds()
        let first = twin.attributes.map(\.observedAt).min() ?? now
        var entity = Entity(id: twin.id, types: [sdm.expand(twin.type)], createdAt: first, modifiedAt: now)
        for a in twin.attributes {
            entity.set(sdm.expand(a.name), Attribute(kind: .property, value: .number(a.value), observedAt: a.observedAt,
                                                     unitCode: a.unit, createdAt: now, modifiedAt: now, owner: twin.agentID))
            // The index's level in words, as Smart Data Models' AirQualityObserved has it.
            if a.name == TwinStore.indexAttribute, let level = EuropeanAirQualityIndex.levels[safe: Int(a.value) - 1] {
                entity.set(sdm.expand("airQualityLevel"), Attribute(kind: .property, value: .string(level), observedAt: a.observedAt,
                                                                    createdAt: now, modifiedAt: now, owner: twin.agentID))
            }
        }
        if let lat = twin.latitude, let lon = twin.longitude {
            entity.set(sdm.expand("location"), Attribute(kind: .geoProperty, value: ["type": "Point", "coordinates": [.number(lon), .number(lat)]],
                                                         createdAt: now, modifiedAt: now, owner: twin.agentID))
        }
        entity.set(sdm.expand("refDevice"), Attribute(kind: .relationship, value: .string(Self.deviceID(twin.agentID)),
                                                      createdAt: now, modifiedAt: now, owner: twin.agentID))
        return entity
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
