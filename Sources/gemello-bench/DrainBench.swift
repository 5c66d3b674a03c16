import ArgumentParser
import Foundation
import GemelloAgent
import GemelloAggregator
import GemelloCore
import GemelloTesting
import Logging
import ServiceLifecycle

/// After an outage: an agent whose buffer holds a backlog of real readings (the shared datasets,
/// accepted an hour ago) reconnects while a live sensor keeps reporting. Measured per sending
/// mode, in one run against one real mosquitto and an in-process aggregator: seconds from
/// reconnect until the twin shows a live reading taken after the reconnect ("current"), and the
/// backlog drain rate (readings and bytes per second until the twin holds all of it).
struct DrainBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain",
        abstract: "Backlog drain after an outage: seconds until the twin is current, drain rate with and without the rate cap.")

    @Option(help: "Readings in the backlog (the shared datasets, repeated with shifted timestamps as needed).")
    var readings = 1_000_000

    @Option(help: "Repetitions of every mode; medians are reported.")
    var runs = 3

    @Option(help: "Folder for the temporary buffers and twin stores.")
    var scratch = FileManager.default.temporaryDirectory.path

    struct Mode {
        let name: String
        let liveWindow: String
        let rate: String
    }

    static let modes = [
        Mode(name: "acceptance order, no cap", liveWindow: "0s", rate: "unlimited"),
        Mode(name: "live first, no cap", liveWindow: "30s", rate: "unlimited"),
        Mode(name: "live first, 256KiB/s (default)", liveWindow: "30s", rate: "256KiB/s"),
        Mode(name: "live first, 64KiB/s", liveWindow: "30s", rate: "64KiB/s"),
    ]

    struct Result {
        var current: Double
        var drain: Double
        var bytes: Int64
    }

    func run() async throws {
        let backlog = try await Self.backlog(count: readings)
        print("backlog: \(backlog.count) readings of the shared datasets, accepted one hour before the reconnect")
        let broker = try BrokerHarness()
        defer { broker.stop() }
        var results = Array(repeating: [Result](), count: Self.modes.count)
        for run in 1...runs {
            for (index, mode) in Self.modes.enumerated() {
                let result = try await measure(mode, tag: "\(run)-\(index)", backlog: backlog, broker: broker.url)
                results[index].append(result)
                print(String(format: "run %d, %@: current after %.2f s, drained in %.2f s (%.0f readings/s, %.0f B/s)",
                             run, mode.name, result.current, result.drain, Double(backlog.count) / result.drain,
                             Double(result.bytes) / result.drain))
            }
        }
        var summary: [String] = []
        for (index, mode) in Self.modes.enumerated() {
            let current = median(results[index].map(\.current)), drain = median(results[index].map(\.drain))
            let bytesPerSecond = median(results[index].map { Double($0.bytes) / $0.drain })
            summary.append(String(format: "%@: current %.2f s, drain %.0f readings/s, %.0f B/s",
                                  mode.name, current, Double(backlog.count) / drain, bytesPerSecond))
        }
        print("drain (\(backlog.count) readings, median of \(runs)): " + summary.joined(separator: "; "))
    }

    /// The datasets in acceptance order, again with timestamps moved on by ten years per pass
    /// until `count` readings are reached.
    static func backlog(count: Int) async throws -> [Reading] {
        let datasets = try await SharedDataset.loadAll()
        var result: [Reading] = []
        result.reserveCapacity(count)
        var pass: Int64 = 0
        while result.count < count {
            let shift = pass * 10 * 365 * 86_400_000
            for dataset in datasets {
                for reading in dataset.readings where result.count < count {
                    result.append(Reading(series: reading.series, timestamp: reading.timestamp + shift, value: reading.value))
                }
            }
            pass += 1
        }
        return result
    }

    func measure(_ mode: Mode, tag: String, backlog: [Reading], broker: String) async throws -> Result {
        let folder = URL(fileURLWithPath: scratch).appendingPathComponent("gemello-drain-\(getpid())-\(tag)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let wall = SystemWallClock()
        let bufferPath = folder.appendingPathComponent("agent.sqlite").path
        do {
            let buffer = try ReadingBuffer(path: bufferPath)
            let acceptedDuringOutage = wall.nowMilliseconds() - 3_600_000
            for start in stride(from: 0, to: backlog.count, by: 5000) {
                try buffer.append(Array(backlog[start..<min(start + 5000, backlog.count)]), now: acceptedDuringOutage)
            }
        }
        var logger = Logger(label: "drain-bench")
        logger.logLevel = .error
        let store = try TwinStore(path: folder.appendingPathComponent("twin.sqlite").path)
        let ingestCounters = IngestCounters()
        let ingest = IngestService(configuration: AggregatorConfiguration(broker: broker, clientID: "drain-aggregator-\(tag)",
                                                                          storePath: store.path, httpPort: 0),
                                   store: store, counters: ingestCounters, logger: logger)
        let aggregator = ServiceGroup(configuration: .init(services: [.init(service: ingest)], logger: logger))
        let agentID = "drain-\(tag)"
        let yaml = """
            agent-id: \(agentID)
            site:
              id: drain
              kind: 5g-tower
              latitude: 45.46
              longitude: 9.19
            broker: \(broker)
            buffer:
              path: \(bufferPath)
              flush-interval: 200ms
            publisher:
              live-window: \(mode.liveWindow)
              backlog-rate: \(mode.rate)
            inputs:
              - type: simulated
                sensor: live
                profile: weather
                interval: 200ms
            """
        let agent = try Agent(configuration: try AgentConfiguration.decode(yaml, file: folder.appendingPathComponent("agent.yaml").path),
                              logger: logger)
        let agentGroup = try agent.makeServiceGroup(signals: [])
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await aggregator.run() }
            while !ingestCounters.subscribed.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(10)) }
            let start = ContinuousClock.now
            let reconnectedAt = wall.nowMilliseconds()
            group.addTask { try await agentGroup.run() }
            var current: Duration?
            var drained: Duration?
            let deadline = start + .seconds(600)
            while current == nil || drained == nil {
                guard ContinuousClock.now < deadline else { throw BenchError("\(mode.name): not drained after 600 s") }
                try await Task.sleep(for: .milliseconds(20))
                let counts = try store.seriesCounts(agent: agentID)
                let live = counts.keys.filter { $0.hasPrefix("live/") }
                if current == nil, !live.isEmpty,
                   try live.allSatisfy({ (try store.history(agent: agentID, series: $0).last?.timestamp ?? 0) >= reconnectedAt }) {
                    current = ContinuousClock.now - start
                }
                if drained == nil, counts.filter({ !$0.key.hasPrefix("live/") }).values.reduce(0, +) >= Int64(backlog.count) {
                    drained = ContinuousClock.now - start
                }
            }
            let bytes = agent.counters.bytesSent.load(ordering: .relaxed)
            await agentGroup.triggerGracefulShutdown()
            await aggregator.triggerGracefulShutdown()
            try await group.waitForAll()
            return Result(current: current!.seconds, drain: drained!.seconds, bytes: bytes)
        }
    }
}
