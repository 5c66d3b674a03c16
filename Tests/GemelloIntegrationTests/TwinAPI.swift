import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GemelloAggregator
import GemelloAggregatorHTTP
import GemelloCore
import GemelloNGSILD
import GemelloTesting
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// The aggregator's HTTP API in the test process over a fresh twin store (no broker: telemetry
/// is written into the store directly and projected), and a small HTTP client for it.
final class TwinAPI: Sendable {
    final class BoundPort: Sendable { let value = Atomic<Int>(0) }
    let store: TwinStore
    let twin: Twin
    let configuration: AggregatorConfiguration
    let group: ServiceGroup
    let bound = BoundPort()
    var port: Int { bound.value.load(ordering: .relaxed) }

    static let sdmLink = "<\(ContextResolver.smartDataModelsContextURL)>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""

    init(configure: (inout AggregatorConfiguration) -> Void = { _ in }) async throws {
        let folder = try Repository.temporaryFolder("ngsild-api")
        var configuration = AggregatorConfiguration(storePath: folder.appendingPathComponent("twin.sqlite").path, httpPort: 0)
        configure(&configuration)
        store = try TestStore.open(&configuration)
        self.configuration = configuration
        let logger = Logger(label: "test.ngsild")
        let counters = IngestCounters()
        twin = try await Twin.open(store: store, configuration: configuration, counters: counters, logger: logger)
        let bound = self.bound
        // With http.tokens-file set the API is behind its tokens, as the aggregator runs it.
        let access = configuration.api.tokensFile == nil ? nil : try APIAccess(policy: configuration.api, logger: logger)
        let http = try AggregatorHTTP.application(store: store, broker: twin.broker, counters: counters, configuration: configuration,
                                                  access: access, logger: logger) { port in bound.value.store(port, ordering: .relaxed) }
        group = ServiceGroup(configuration: .init(services: [.init(service: twin.notifications), .init(service: http)], logger: logger))
    }

    /// Runs `body` with the server listening.
    static func with(configure: (inout AggregatorConfiguration) -> Void = { _ in }, _ body: (TwinAPI) async throws -> Void) async throws {
        let api = try await TwinAPI(configure: configure)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await api.group.run() }
            let deadline = ContinuousClock.now + .seconds(20)
            while api.port == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            do { try await body(api) } catch {
                await api.group.triggerGracefulShutdown()
                throw error
            }
            await api.group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: JSON?
        var text: String

        func header(_ name: String) -> String? {
            headers.first { $0.key.lowercased() == name.lowercased() }?.value
        }
    }

    var base: String { "\(scheme)://127.0.0.1:\(port)/ngsi-ld/v1" }
    var scheme: String { configuration.httpTLS == nil ? "http" : "https" }

    /// One request; `body` is sent as application/json unless `contentType` says otherwise.
    func call(_ method: String, _ path: String, _ body: JSON? = nil, contentType: String = "application/json",
              headers: [String: String] = [:]) async throws -> Reply {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        if let body {
            request.httpBody = Data(body.serialized.utf8)
            request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        }
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var fields: [String: String] = [:]
        for (k, v) in http.allHeaderFields { fields["\(k)"] = "\(v)" }
        let text = String(decoding: data, as: UTF8.self)
        return Reply(status: http.statusCode, headers: fields, body: data.isEmpty ? nil : try? JSON.parse(Array(data)), text: text)
    }

    func get(_ path: String, link: String? = nil, accept: String? = nil) async throws -> Reply {
        var headers: [String: String] = [:]
        if let link { headers["Link"] = link }
        if let accept { headers["Accept"] = accept }
        return try await call("GET", path, headers: headers)
    }

    /// Sensors announced so far per agent: a birth lists all of an agent's sensors, as agents do.
    let announced = Mutex<[String: [SensorInfo]]>([:])

    /// Puts a sensor's readings in the twin store as ingest would, and projects them.
    func ingest(agent: String, sensor: String, type: String, readings: [(attribute: String, unit: String, time: Int64, value: Double)],
                sequence: UInt64, latitude: Double = 45.4642, longitude: Double = 9.1919) throws {
        let attributes = Dictionary(readings.map { ($0.attribute, $0.unit) }, uniquingKeysWith: { a, _ in a })
        let birth = AgentBirth(agentID: agent, bootEpoch: 1, version: "0.1.0",
                               site: Site(id: "site-\(agent)", kind: .fiveGTower, latitude: latitude, longitude: longitude),
                               sensors: announced.withLock { known in
                                   known[agent, default: []].removeAll { $0.id == sensor }
                                   known[agent, default: []].append(SensorInfo(id: sensor, entityType: type,
                                       attributes: attributes.sorted { $0.key < $1.key }.map { .init(name: $0.key, unit: $0.value) }))
                                   return known[agent]!
                               },
                               time: 1)
        _ = try store.recordBirth(birth, now: 1)
        var batch = Batch(agentID: agent, bootEpoch: 1, sequence: sequence, createdAt: 1)
        var lookup: [SeriesInfo: UInt32] = [:]
        for r in readings {
            batch.append(Reading(series: SeriesInfo(name: "\(sensor)/\(r.attribute)", unit: r.unit), timestamp: r.time, value: r.value), lookup: &lookup)
        }
        twin.projection.agentBorn(agent)
        // As IngestService does: the notifications commit with the batch.
        var prepared: TwinProjection.Prepared?
        _ = try store.ingest(batch, receivedAt: 2) { db in prepared = try self.twin.projection.prepare(agent: agent, in: db) }
        if let prepared { twin.projection.commit(prepared) }
    }

    /// Validates replies with the ETSI JSON Schema validator in ../shared.
    static func expectValid(_ kind: String, _ values: [JSON], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let failure = try StandardValidators.ngsild(kind, values.map(\.serialized))
        #expect(failure == nil, "\(failure ?? "")", sourceLocation: sourceLocation)
    }
}
