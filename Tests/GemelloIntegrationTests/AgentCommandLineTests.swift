import Foundation
import GemelloTesting
import Testing

/// `gemello-agent`'s command line (parsed by hand, without swift-argument-parser): help and
/// version exit 0, a bad command line 64 naming the problem, a bad configuration 78.
@Suite struct AgentCommandLineTests {
    static let agent = Repository.root.appendingPathComponent(".build/debug/gemello-agent").path

    @Test func exitCodesAndMessages() async throws {
        let help = try await runProgram(Self.agent, ["--help"])
        #expect(help.status == 0 && help.output.contains("--config <config>") && help.output.contains("--replay-speed"))
        #expect(try await runProgram(Self.agent, ["--version"]).status == 0)
        let unknown = try await runProgram(Self.agent, ["--config", "x.yaml", "--brokr", "mqtt://h"])
        #expect(unknown.status == 64 && unknown.output.contains("unknown option '--brokr'"), "\(unknown.output)")
        let missing = try await runProgram(Self.agent, [])
        #expect(missing.status == 64 && missing.output.contains("--config"))
        let noValue = try await runProgram(Self.agent, ["--config"])
        #expect(noValue.status == 64 && noValue.output.contains("missing value"))
        let speed = try await runProgram(Self.agent, ["--config=agent-config/tower-duomo-01.yaml", "--replay-speed", "fast"])
        #expect(speed.status == 64 && speed.output.contains("--replay-speed"))
        let level = try await runProgram(Self.agent, ["--config", "x", "--log-level=loud"])
        #expect(level.status == 64 && level.output.contains("--log-level"))
        let badConfig = try await runProgram(Self.agent, ["--config", "/nonexistent/agent.yaml"])
        #expect(badConfig.status == 78 && badConfig.output.contains("invalid configuration"))
        let tower = Repository.root.appendingPathComponent("agent-config/tower-duomo-01.yaml").path
        let check = try await runProgram(Self.agent, ["--config=\(tower)", "--check", "--log-level", "debug"])
        #expect(check.status == 0 && check.output.contains("is valid (agent tower-duomo-01, 5 inputs)"), "\(check.output)")
    }
}
