import Foundation
import GemelloCore
@testable import GemelloInputs
import GemelloTesting
import Testing

/// Every input is a folder with its code, a README naming every option and a sample entry that
/// decodes; the registry knows each one, and only those.
@Suite struct InputRegistryTests {
    static let inputsFolder = Repository.root.appendingPathComponent("Sources/GemelloInputs")

    static func folders() throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: inputsFolder, includingPropertiesForKeys: [.isDirectoryKey])
            .filter { (try? $0.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true }
            .sorted { $0.path < $1.path }
    }

    @Test func everyFolderHasAReadmeAndASampleThatDecodesAndTheRegistryKnowsThemAll() throws {
        var types: [String] = []
        for folder in try Self.folders() {
            let sample = folder.appendingPathComponent("sample.yaml")
            let readme = try String(contentsOf: folder.appendingPathComponent("README.md"), encoding: .utf8)
            let text = try String(contentsOf: sample, encoding: .utf8)
            // The sample is one entry of an agent's `inputs:` list, decoded as the agent does.
            let indented = text.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
            let root = try ConfigSection.parse("inputs:\n  -\n" + indented, file: sample.path)
            let configuration = try InputRegistry.decode(try root.sections("inputs")[0])
            types.append(configuration.type)
            #expect(readme.contains("`\(configuration.type)`"), "\(folder.lastPathComponent)/README.md names its type")
            // Every key the sample sets is documented in the README's options.
            for line in text.split(separator: "\n") where !line.hasPrefix(" ") && !line.hasPrefix("#") && line.contains(":") {
                let key = String(line.prefix { $0 != ":" })
                guard key != "type" else { continue }
                #expect(readme.contains("`\(key)") , "\(folder.lastPathComponent)/README.md documents '\(key)'")
            }
        }
        #expect(types.sorted() == InputRegistry.names.sorted(), "one folder per registered input type")
    }

    @Test func anUnknownTypeNamesTheKnownOnes() throws {
        #expect {
            _ = try InputFixtures.input("- type: modbuss\n  sensor: x")
        } throws: { error in
            let text = "\(error)"
            return text.contains("unknown input type") && InputRegistry.names.allSatisfy { text.contains($0) }
        }
    }

    @Test func jitterMustBeShorterThanTheInterval() throws {
        #expect(throws: CoreError.self) {
            _ = try InputFixtures.input("- type: simulated\n  sensor: s\n  profile: power\n  interval: 1s\n  jitter: 2s")
        }
        let ok = try InputFixtures.input("- type: simulated\n  sensor: s\n  profile: power\n  interval: 10s\n  jitter: 2s")
        #expect((ok.options as? SimulatedInput.Configuration)?.schedule == PollSchedule(interval: .seconds(10), jitter: .seconds(2)))
    }
}
