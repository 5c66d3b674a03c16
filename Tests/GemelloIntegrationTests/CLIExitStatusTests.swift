import Foundation
import GemelloTesting
import Testing

/// `gemello`'s exit status (docs/OPERATIONS.md, "The CLI's exit status"): 0 done, 1 a failure or
/// what is not found, 64 a wrong command line, 78 a wrong configuration file; each error one
/// `gemello:` line with its fix, and a usage line only for what ArgumentParser itself refused.
@Suite struct CLIExitStatusTests {
    /// Off the cooperative pool (GemelloTesting's offPool): a test blocking one of its two threads
    /// on CI starves the servers other tests run.
    static func gemello(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await offPool { try RulesCLITests.gemello(arguments) }
    }

    @Test func usageConfigurationAndUnreachableWithoutAnAggregator() async throws {
        #expect(try await Self.gemello(["--help"]).status == 0)
        #expect(try await Self.gemello(["--version"]).status == 0)
        let unknown = try await Self.gemello(["fleet", "--bogus"])
        #expect(unknown.status == 64 && unknown.output.contains("Usage: gemello fleet list"), "\(unknown.output)")
        let badURL = try await Self.gemello(["fleet", "--aggregator", "not-a-url"])
        #expect(badURL.status == 64 && badURL.output.contains("Fix: pass --aggregator http://host:port"), "\(badURL.output)")
        #expect(!badURL.output.contains("Usage: gemello <subcommand>"), "\(badURL.output)")
        let unreachable = try await Self.gemello(["fleet", "--aggregator", "http://127.0.0.1:1"])
        #expect(unreachable.status == 1 && unreachable.output.hasPrefix("gemello: cannot reach the aggregator"), "\(unreachable.output)")
        #expect(unreachable.output.contains("Fix:") && !unreachable.output.contains("Usage:"), "\(unreachable.output)")
        let time = try await Self.gemello(["twin", "history", "tower-duomo-01:davis-vp2", "temperature", "--from", "yesterday",
                                     "--aggregator", "http://127.0.0.1:1"])
        #expect(time.status == 64 && time.output.contains("is not a time") && !time.output.contains("Usage:"), "\(time.output)")
        let rules = try await Self.gemello(["rules", "check", "/nonexistent/rules.yaml"])
        #expect(rules.status == 78 && rules.output.contains("Fix:"), "\(rules.output)")
        let replay = try await Self.gemello(["rules", "test", "aggregator-config/rules.yaml", "--replay", "agent-config/tower-duomo-01.yaml"])
        #expect(replay.status == 78 && replay.output.contains("no csv-replay input"), "\(replay.output)")
    }

    /// Under a descriptor limit too low for its connections, `simulate` says so and exits 1
    /// before connecting anything (it died of SIGILL once).
    @Test func simulateRefusesAFleetTheDescriptorLimitCannotHold() async throws {
        let binary = Repository.root.appendingPathComponent(".build/debug/gemello").path
        let (status, output) = try await runProgram("/bin/sh", [
            "-c", "ulimit -n 200 && exec \"$0\" simulate --agents 100 --broker mqtt://127.0.0.1:1 --duration 2", binary])
        // (exec: the status is the program's own; a death by signal would not be 1.)
        #expect(status == 1, "\(output)")
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
        let entity = try await Self.gemello(["twin", "entity", "no-such-entity", "--aggregator", api])
        #expect(entity.status == 1 && entity.output.contains("no entity id ends with 'no-such-entity'") && entity.output.contains("Fix:"),
                "\(entity.output)")
        #expect(!entity.output.contains("Usage:"), "\(entity.output)")
        let agent = try await Self.gemello(["fleet", "show", "no-such-agent", "--aggregator", api])
        #expect(agent.status == 1 && agent.output.contains("no agent id contains 'no-such-agent'") && !agent.output.contains("Usage:"), "\(agent.output)")
        let alert = try await Self.gemello(["alerts", "show", "no-such-alert", "--aggregator", api])
        #expect(alert.status == 1 && !alert.output.contains("Usage:"), "\(alert.output)")
        #expect(try await Self.gemello(["health", "--aggregator", api]).status == 0)
    }
}
