import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GemelloAgent
@testable import GemelloAggregator
import GemelloAggregatorHTTP
import GemelloCore
import GemelloNGSILD
import GemelloStoragePostgres
import GemelloTesting
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// Two aggregators of one share group on one PostgreSQL store (docs/scale-out.md), a real
/// mosquitto handing each batch to one of them, a real agent replaying the solar node's file:
/// every reading stored once, both members doing part of the work, one fleet view, one
/// subscription (made through one member) notified of what either stored, each change once.
@Suite struct ScaleOutTests {
    final class Member: Sendable {
        let configuration: AggregatorConfiguration
        let store: TwinStore
        let counters = IngestCounters()
        let twin: Twin
        let group: ServiceGroup
        let port = FleetTests.BoundPort()

        init(_ id: String, broker: String, store url: String) async throws {
            var configuration = AggregatorConfiguration(broker: broker, clientID: id, storePath: "-", httpPort: 0)
            try configuration.overrideStore(url)
            configuration.shareGroup = "twin"
            configuration.fleet = FleetStatusPolicy(staleAfter: .seconds(30), offlineAfter: .seconds(120))
            self.configuration = configuration
            let logger = EndToEndTests.logger(id)
            store = try TwinStore.open(configuration)
            twin = try await Twin.open(store: store, configuration: configuration, counters: counters, logger: logger)
            let ingest = IngestService(configuration: configuration, store: store, counters: counters, projection: twin.projection, logger: logger)
            let port = self.port
            let http = try AggregatorHTTP.application(store: store, broker: twin.broker, counters: counters, configuration: configuration,
                                                  logger: logger) { bound in port.value.store(bound, ordering: .relaxed) }
            group = ServiceGroup(configuration: .init(services: [.init(service: ingest), .init(service: twin.notifications),
                                                                 .init(service: twin.projection), .init(service: http)], logger: logger))
        }

        var base: String { "http://127.0.0.1:\(port.value.load(ordering: .relaxed))/ngsi-ld/v1" }
    }

    static let entity = "urn:ngsi-ld:DeviceMeasurement:replay-solar-node:eno-3b06"

    @Test(.timeLimit(.minutes(4)))
    func twoAggregatorsShareTheAgentsBatchesExactlyOnce() async throws {
        let broker = try BrokerHarness()
        defer { broker.stop() }
        let receiver = try NotificationReceiver()
        try receiver.start()
        defer { receiver.stop() }
        let url = try PostgresHarness.shared().makeDatabase("scaleout")
        let a = try await Member("aggregator-a", broker: broker.url, store: url)
        let b = try await Member("aggregator-b", broker: broker.url, store: url)
        let folder = try Repository.temporaryFolder("scale-out")
        var configuration = try solarReplayConfiguration(broker: broker.url, folder: folder)
        configuration.healthInterval = .seconds(1)
        let agent = try Agent(configuration: configuration, logger: EndToEndTests.logger("agent"))
        let agentGroup = try agent.makeServiceGroup(signals: [])
        let expected: Int64 = 34_872

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await a.group.run() }
            group.addTask { try await b.group.run() }
            try await waitUntil(.seconds(20)) {
                a.counters.subscribed.load(ordering: .relaxed) && b.counters.subscribed.load(ordering: .relaxed)
                    && a.port.value.load(ordering: .relaxed) > 0 && b.port.value.load(ordering: .relaxed) > 0
            }
            // A subscription made through member A.
            let subscription: JSON = [
                "type": "Subscription", "entities": [["type": "DeviceMeasurement"]], "watchedAttributes": ["batteryLevel"],
                "notification": ["format": "keyValues", "attributes": ["batteryLevel"],
                                 "endpoint": ["uri": .string(receiver.url), "accept": "application/json"]],
            ]
            var request = URLRequest(url: URL(string: a.base + "/subscriptions")!)
            request.httpMethod = "POST"
            request.httpBody = Data(subscription.serialized.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.setValue(TwinAPI.sdmLink, forHTTPHeaderField: "Link")
            let (_, response) = try await URLSession.shared.data(for: request)
            #expect((response as? HTTPURLResponse)?.statusCode == 201)
            try await Task.sleep(for: .milliseconds(1500))  // member B reads it within a second

            group.addTask { try await agentGroup.run() }
            try await waitUntil(.seconds(120)) { try a.store.totals().readings >= expected }
            // Both members' twins show the latest battery level (each reads what the other stored).
            let latest = try #require(try a.store.entities(agent: "replay-solar-node").first { $0.sensorID == "eno-3b06" })
            let battery = try #require(latest.attributes.first { $0.name == "batteryLevel" })
            var shown: [Int64?] = []
            for _ in 0..<100 {
                shown = [try await Self.batteryObservedAt(a), try await Self.batteryObservedAt(b)]
                if shown == [battery.observedAt, battery.observedAt] { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(shown == [battery.observedAt, battery.observedAt])
            // Every notification delivered once: the outbox drains, no change twice, the last one is the latest value.
            try await waitUntil(.seconds(30)) {
                let outbox = try a.store.read { db in try db.scalarInt("SELECT count(*) FROM ngsi_outbox") ?? -1 }
                return outbox == 0 && !receiver.received().isEmpty
            }
            try await Task.sleep(for: .milliseconds(500))
            let changes = receiver.received().compactMap { try? JSON.parse(Array($0.body.utf8)) }.flatMap { $0["data"]?.arrayValue ?? [] }
            let levels = changes.compactMap { $0["batteryLevel"]?.numberValue }
            #expect(!levels.isEmpty)
            #expect(levels.last == battery.value)

            await agentGroup.triggerGracefulShutdown()
            try await Task.sleep(for: .seconds(1))
            await a.group.triggerGracefulShutdown()
            await b.group.triggerGracefulShutdown()
            try await group.waitForAll()
        }

        // Exactly once, with the work shared.
        let totals = try a.store.totals()
        #expect(totals.readings == expected && totals.duplicates == 0 && totals.rejected == 0)
        #expect(agent.counters.delivered.load(ordering: .relaxed) == expected && agent.buffer.bufferedReadings == 0)
        let batchesA = a.counters.batches.load(ordering: .relaxed), batchesB = b.counters.batches.load(ordering: .relaxed)
        #expect(batchesA > 0 && batchesB > 0, "batches: a \(batchesA), b \(batchesB)")
        #expect(Int64(batchesA + batchesB) == totals.batches)
        for (series, count) in try a.store.seriesCounts(agent: "replay-solar-node") {
            #expect(try a.store.history(agent: "replay-solar-node", series: series).count == Int(count), "\(series)")
        }
        // One fleet: the agent's session began once (its birth heard by both members makes one transition).
        let detail = try #require(try b.store.agentDetail(id: "replay-solar-node", now: SystemWallClock().nowMilliseconds(),
                                                          policy: b.configuration.fleet))
        #expect(detail.transitions.filter { $0.reason == "birth" }.count == 1, "\(detail.transitions.map(\.reason))")
        print("scale-out: \(expected) readings once; batches a \(batchesA), b \(batchesB); \(Self.changes(receiver)) notified changes")
    }

    static func changes(_ receiver: NotificationReceiver) -> Int {
        receiver.received().compactMap { try? JSON.parse(Array($0.body.utf8)) }.flatMap { $0["data"]?.arrayValue ?? [] }.count
    }

    /// The observedAt (ms) of the battery level as a member's NGSI-LD API shows it.
    static func batteryObservedAt(_ member: Member) async throws -> Int64? {
        var request = URLRequest(url: URL(string: member.base + "/entities/" + entity)!)
        request.setValue(TwinAPI.sdmLink, forHTTPHeaderField: "Link")
        let (data, _) = try await URLSession.shared.data(for: request)
        guard let json = try? JSON.parse(Array(data)), case .string(let at)? = json["batteryLevel"]?["observedAt"] else { return nil }
        return DateTime.milliseconds(at)
    }
}
