import Foundation
import GemelloAggregator
import GemelloCore
import GemelloMosquitto
import GemelloTesting
import GemelloZlib
import Logging
import ServiceLifecycle
import Testing

@Suite(.serialized) struct HostileInputTests {
    /// Garbage, a truncated batch, a batch claiming another agent's id and a decompression bomb
    /// are counted as rejected against the agent that sent them; the aggregator keeps ingesting.
    @Test(.timeLimit(.minutes(2)))
    func aggregatorRejectsBadBatchesAndKeepsGoing() async throws {
        let broker = try BrokerHarness()
        let folder = try Repository.temporaryFolder("hostile")
        var configuration = AggregatorConfiguration(broker: broker.url, clientID: "aggregator-hostile",
                                                    storePath: folder.appendingPathComponent("twin.sqlite").path, httpPort: 0)
        let store = try TestStore.open(&configuration)
        let counters = IngestCounters()
        var logger = Logger(label: "hostile")
        logger.logLevel = .critical
        let ingest = IngestService(configuration: configuration, store: store, counters: counters, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: ingest)], logger: logger))

        var valid = Batch(agentID: "evil", bootEpoch: 1, sequence: 1, createdAt: 0)
        var lookup: [SeriesInfo: UInt32] = [:]
        valid.append(Reading(series: SeriesInfo(name: "s/temperature", unit: "CEL"), timestamp: 1000, value: 21.5), lookup: &lookup)
        let good = try WireFormat.encode(valid)
        var impostor = valid
        impostor.agentID = "someone-else"
        let bomb: [UInt8] = try {
            var rest = ByteWriter()
            rest.writeVarint(UInt64(64 << 20))
            rest.write(try Zlib.compress([UInt8](repeating: 0, count: 64 << 20)))
            var frame = ByteWriter()
            frame.write([0x47, 0x4D, 1, 1])
            frame.writeUInt32LE(Zlib.crc32(rest.bytes))
            frame.write(rest.bytes)
            return frame.bytes
        }()
        let hostile: [[UInt8]] = [Array("not a batch".utf8), Array(good.prefix(good.count - 3)), try WireFormat.encode(impostor), bomb, []]
            + (try Self.rejectedVectors())

        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            while !counters.subscribed.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(20)) }
            let client = try MQTTClient(options: .init(clientID: "evil-client"))
            try await client.start(broker: BrokerAddress(url: broker.url)!)
            for await event in client.events { if case .connected = event { break } }
                for payload in hostile { try client.publish(topic: Topics.data(agent: "evil"), payload: payload) }
            // A real agent announces itself; then a death naming it arrives on evil's topic.
            let site = Site(id: "s", kind: .fiberNode, latitude: 45, longitude: 9)
            let birth = AgentBirth(agentID: "victim", bootEpoch: 9, version: "1", site: site, sensors: [], time: SystemWallClock().nowMilliseconds())
            try client.publish(topic: Topics.birth(agent: "victim"), payload: Array(birth.json().utf8))
            try client.publish(topic: Topics.death(agent: "evil"), payload: Array(AgentDeath(agentID: "victim", bootEpoch: 9).json().utf8))
            try client.publish(topic: Topics.data(agent: "evil"), payload: good)
            let deadline = ContinuousClock.now + .seconds(30)
            while try store.totals().readings < 1 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            client.disconnect()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let totals = try store.totals()
        #expect(totals.rejected == Int64(hostile.count))
        #expect(totals.readings == 1 && totals.batches == 1)
        #expect(counters.rejected.load(ordering: .relaxed) == Int64(hostile.count))
        let evil = try #require(try store.fleet(now: 0, policy: FleetStatusPolicy()).first { $0.id == "evil" })
        #expect(evil.rejectedBatches == Int64(hostile.count))
        let victim = try store.fleet(now: SystemWallClock().nowMilliseconds(), policy: FleetStatusPolicy()).first { $0.id == "victim" }
        #expect(victim?.status == .online)  // the spoofed death was refused
        broker.stop()
    }

    /// The frames of every test vector a decoder must reject (Tests/Fixtures/wire-vectors).
    static func rejectedVectors() throws -> [[UInt8]] {
        let folder = Repository.root.appendingPathComponent("Tests/Fixtures/wire-vectors")
        var frames: [[UInt8]] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() where file.hasSuffix(".vector") {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            // A v2 reference the aggregator does not hold is answered with a resync, not rejected.
            guard text.contains("\nerror: "), !text.contains("\nerror: unknownSeries") else { continue }
            var hex = ""
            var inFrame = false
            for line in text.split(separator: "\n") {
                if line.hasPrefix("frame: ") { hex = String(line.dropFirst(7)); inFrame = true }
                else if inFrame && line.hasPrefix("  ") { hex += line.trimmingCharacters(in: .whitespaces) }
                else { inFrame = false }
            }
            let digits = Array(hex.utf8)
            frames.append(stride(from: 0, to: digits.count - 1, by: 2).map { UInt8(String(decoding: digits[$0...$0 + 1], as: UTF8.self), radix: 16)! })
        }
        #expect(frames.count >= 9)
        return frames
    }
}
