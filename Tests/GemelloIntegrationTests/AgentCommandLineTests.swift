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

    /// `--state-dir` (and GEMELLO_STATE_DIR, which it wins over) puts the buffer in a folder it
    /// makes, under the configured file name; a folder it cannot make exits 73 naming it.
    @Test func stateDirectoryHoldsTheBuffer() async throws {
        let folder = try Repository.temporaryFolder("agent-state-dir")
        let state = folder.appendingPathComponent("a/b")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.agent)
        process.arguments = ["--config", Repository.root.appendingPathComponent("agent-config/replay-solar-node.yaml").path,
                             "--state-dir", state.path, "--broker", "mqtt://127.0.0.1:1", "--replay-speed", "1", "--drain-timeout", "0"]
        process.environment = ["GEMELLO_STATE_DIR": folder.appendingPathComponent("not-this").path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let buffer = state.appendingPathComponent("replay-solar-node.sqlite").path
        try await waitUntil(.seconds(20)) { FileManager.default.fileExists(atPath: buffer) }
        process.terminate()
        try await offPool { process.waitUntilExit() }  // off the cooperative pool: it has two threads on CI
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("not-this").path))
        let blocked = folder.appendingPathComponent("file")
        _ = FileManager.default.createFile(atPath: blocked.path, contents: nil)
        let refused = try await runProgram(Self.agent, ["--config", Repository.root.appendingPathComponent("agent-config/replay-solar-node.yaml").path,
                                                        "--state-dir", blocked.appendingPathComponent("x").path])
        #expect(refused.status == 73 && refused.output.contains("--state-dir") && refused.output.contains("Fix:"), "\(refused.output)")
    }
}
