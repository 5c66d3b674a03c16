import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GemelloCore
import GemelloTesting
import Testing

/// A real `gemello-aggregator` process frozen (SIGSTOP) past every agent's offline threshold,
/// then continued, while a real agent keeps talking: the aggregator's own gap is not the agent's
/// silence, so the fleet records no stale or offline transition (before the fix: every agent went
/// `offline (silent N s)` and a second later `online (heard again)`), and no fleet or silence
/// alert fires.
@Suite struct FrozenAggregatorTests {
    @Test(.timeLimit(.minutes(2)))
    func aFrozenAggregatorMarksNoAgentOffline() async throws {
        let binary = Repository.root.appendingPathComponent(".build/debug/gemello-aggregator")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else { throw FleetTests.CLIMissing(path: binary.path) }
        let broker = try BrokerHarness()
        defer { broker.stop() }
        let folder = try Repository.temporaryFolder("frozen")
        let portFile = folder.appendingPathComponent("port")
        // The shipped configuration, with rules that would fire on any silence counted across the freeze.
        let rules = folder.appendingPathComponent("rules.yaml")
        try """
            rules:
              - name: offline-at-once
                agent-offline: true
              - name: silent-sewer
                match:
                  series: "sewer-frozen/*/*"
                silent: 10s
            """.write(to: rules, atomically: true, encoding: .utf8)
        let shipped = try String(contentsOf: Repository.root.appendingPathComponent("aggregator-config/aggregator.yaml"), encoding: .utf8)
        let config = folder.appendingPathComponent("aggregator.yaml")
        // The shipped configuration, its API open (this test reads /fleet without a token) and its alerts on test rules.
        let open = shipped.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.contains("tokens-file:") }.joined(separator: "\n")
        try (String(open[..<(open.range(of: "\nalerts:")?.lowerBound ?? open.endIndex)]) + "\nalerts:\n  rules: \(rules.path)\n")
            .write(to: config, atomically: true, encoding: .utf8)
        let aggregator = Process()
        aggregator.executableURL = binary
        aggregator.arguments = ["--config", config.path,
                                "--broker", broker.url, "--store", folder.appendingPathComponent("twin.sqlite").path,
                                "--http-port", "0", "--port-file", portFile.path, "--log-level", "warning"]
        aggregator.standardOutput = FileHandle.nullDevice
        aggregator.standardError = FileHandle.nullDevice
        try aggregator.run()
        defer { kill(aggregator.processIdentifier, SIGCONT); aggregator.terminate() }
        let agent = try FleetTests.startAgent(id: "sewer-frozen", broker: broker.url, folder: folder)
        defer { kill(agent.processIdentifier, SIGKILL) }

        try await waitUntil(.seconds(20)) { (try? String(contentsOf: portFile, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } != nil }
        let port = try #require(Int(try String(contentsOf: portFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        func detail() async throws -> FleetAgentDetail? {
            let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/fleet/sewer-frozen")!)
            guard (response as? HTTPURLResponse)?.statusCode == 200 else { return nil }
            return try JSONDecoder().decode(FleetAgentDetail.self, from: data)
        }
        var online = false
        for _ in 0..<200 where !online {
            online = try await detail()?.agent.status == .online
            if !online { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(online)

        // Frozen for 1.5× the offline threshold (1.5 × the 8 s keepalive), then continued.
        kill(aggregator.processIdentifier, SIGSTOP)
        try await Task.sleep(for: .seconds(18))
        kill(aggregator.processIdentifier, SIGCONT)
        try await Task.sleep(for: .seconds(3))
        let after = try #require(try await detail())
        #expect(after.agent.status == .online)
        #expect(after.transitions.map(\.reason) == ["birth"], "\(after.transitions.map { "\($0.to): \($0.reason)" })")
        // Nor any alert: the agent was never offline or silent, the aggregator was.
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/alerts?all=true")!)
        #expect(String(decoding: data, as: UTF8.self) == "[]")
    }
}
