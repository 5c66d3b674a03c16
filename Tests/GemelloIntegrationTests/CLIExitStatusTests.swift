import Foundation
import GemelloTesting
import Testing

/// `gemello`'s exit status (docs/OPERATIONS.md, "The CLI's exit status"): 0 done, 1 a failure or
/// what is not found, 64 a wrong command line, 78 a wrong configuration file; each error one
/// `gemello:` line with its fix, and a usage line only for what ArgumentParser itself refused.
@Suite struct CLIExitStatusTests {
    static func gemello(_ arguments: [String]) throws -> (status: Int32, output: String) { try RulesCLITests.gemello(arguments) }

    @Test func usageConfigurationAndUnreachableWithoutAnAggregator() throws {
        #expect(try Self.gemello(["--help"]).status == 0)
        #expect(try Self.gemello(["--version"]).status == 0)
        let unknown = try Self.gemello(["fleet", "--bogus"])
        #expect(unknown.status == 64 && unknown.output.contains("Usage: gemello fleet list"), "\(unknown.output)")
        let badURL = try Self.gemello(["fleet", "--aggregator", "not-a-url"])
        #expect(badURL.status == 64 && badURL.output.contains("Fix: pass --aggregator http://host:port"), "\(badURL.output)")
        #expect(!badURL.output.contains("Usage: gemello <subcommand>"), "\(badURL.output)")
        let unreachable = try Self.gemello(["fleet", "--aggregator", "http://127.0.0.1:1"])
        #expect(unreachable.status == 1 && unreachable.output.hasPrefix("gemello: cannot reach the aggregator"), "\(unreachable.output)")
        #expect(unreachable.output.contains("Fix:") && !unreachable.output.contains("Usage:"), "\(unreachable.output)")
        let time = try Self.gemello(["twin", "history", "tower-duomo-01:davis-vp2", "temperature", "--from", "yesterday",
                                     "--aggregator", "http://127.0.0.1:1"])
        #expect(time.status == 64 && time.output.contains("is not a time") && !time.output.contains("Usage:"), "\(time.output)")
        let rules = try Self.gemello(["rules", "check", "/nonexistent/rules.yaml"])
        #expect(rules.status == 78 && rules.output.contains("Fix:"), "\(rules.output)")
        let replay = try Self.gemello(["rules", "test", "aggregator-config/rules.yaml", "--replay", "agent-config/tower-duomo-01.yaml"])
        #expect(replay.status == 78 && replay.output.contains("no csv-replay input"), "\(replay.output)")
    }

    /// Under a descriptor limit too low for its connections, `simulate` says so and exits 1
    /// before connecting anything (it died of SIGILL once).
    @Test func simulateRefusesAFleetTheDescriptorLimitCannotHold() throws {
        let binary = Repository.root.appendingPathComponent(".build/debug/gemello").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "ulimit -n 200 && exec \"$0\" simulate --agents 100 --broker mqtt://127.0.0.1:1 --duration 2", binary]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 1, "\(output)")
        #expect(output.contains("need 364 file descriptors") && output.contains("--agents 45 or fewer") && !output.contains("simulate: starting"),
                "\(output)")
    }

    /// Against a running aggregator: what it does not have is 1, with the fix.
    @Test(.timeLimit(.minutes(2)))
    func notFoundIsOneWithTheFix() async throws {
        let broker = try BrokerHarness()
        defer { broker.stop() }
        let folder = try Repository.temporaryFolder("cli-exit")
        let config = folder.appendingPathComponent("aggregator.yaml")
        try "client-id: cli-exit-aggregator\n".write(to: config, atomically: true, encoding: .utf8)
        let aggregator = try AlertDeliveryTests.Aggregator(config: config, broker: broker.url, store: folder.appendingPathComponent("twin.sqlite"),
                                                           folder: folder, log: folder.appendingPathComponent("aggregator.log"))
        defer { aggregator.kill9() }
        let api = "http://127.0.0.1:\(try await aggregator.port())"
        let entity = try Self.gemello(["twin", "entity", "no-such-entity", "--aggregator", api])
        #expect(entity.status == 1 && entity.output.contains("no entity id ends with 'no-such-entity'") && entity.output.contains("Fix:"),
                "\(entity.output)")
        #expect(!entity.output.contains("Usage:"), "\(entity.output)")
        let agent = try Self.gemello(["fleet", "show", "no-such-agent", "--aggregator", api])
        #expect(agent.status == 1 && agent.output.contains("no agent id contains 'no-such-agent'") && !agent.output.contains("Usage:"), "\(agent.output)")
        let alert = try Self.gemello(["alerts", "show", "no-such-alert", "--aggregator", api])
        #expect(alert.status == 1 && !alert.output.contains("Usage:"), "\(alert.output)")
        #expect(try Self.gemello(["health", "--aggregator", api]).status == 0)
    }
}
