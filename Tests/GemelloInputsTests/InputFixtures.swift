import Foundation
import GemelloCore
@testable import GemelloInputs
import GemelloTesting
import Synchronization

enum InputFixtures {
    /// The inputs of a shipped agent configuration, decoded by the registry as the agent does.
    static func inputs(ofAgentConfig name: String) throws -> [InputConfiguration] {
        let root = try ConfigSection.load(path: Repository.root.appendingPathComponent("agent-config/\(name)").path)
        return try root.sections("inputs").map { section throws(CoreError) in try InputRegistry.decode(section) }
    }

    /// One input entry written inline as a list item (`- type: ...`), decoded by the registry.
    static func input(_ yaml: String, folder: URL? = nil) throws -> InputConfiguration {
        let file = (folder ?? FileManager.default.temporaryDirectory).appendingPathComponent("input.yaml").path
        let root = try ConfigSection.parse("inputs:\n" + yaml.split(separator: "\n", omittingEmptySubsequences: false)
            .map { "  " + $0 }.joined(separator: "\n"), file: file)
        return try InputRegistry.decode(try root.sections("inputs")[0])
    }

    /// A golden file under Tests/GemelloInputsTests/Golden.
    static func golden(_ path: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(path)")
    }
}

/// A sink whose buffer is "full" until told otherwise: it holds inputs that can wait inside
/// `accept` and records every poll outcome.
final class RecordingSink: ReadingSink {
    let readings = Mutex<[Reading]>([])
    let outcomes = Mutex<[String?]>([])
    let paused = Atomic<Bool>(false)

    func accept(_ batch: [Reading], checkpoint: InputCheckpoint?) async throws {
        while paused.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(5)) }
        readings.withLock { $0.append(contentsOf: batch) }
    }
    var isPaused: Bool { paused.load(ordering: .relaxed) }
    func report(error: (any Error)?) { outcomes.withLock { $0.append(error.map { "\($0)" }) } }
    var all: [Reading] { readings.withLock { $0 } }
}
