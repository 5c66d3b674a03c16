import Foundation
import GemelloCore
@testable import GemelloInputs
import GemelloTesting
import Testing

/// The `system` input on a golden copy of a box's /proc and /sys, against figures computed by hand.
@Suite struct SystemInputTests {
    /// The golden tree copied to a temporary folder (the test swaps proc/stat between polls).
    static func tree() throws -> URL {
        let folder = try Repository.temporaryFolder("system-input").appendingPathComponent("box")
        try FileManager.default.copyItem(at: InputFixtures.golden("system"), to: folder)
        return folder
    }

    static func expected() throws -> [(String, Double, String)] {
        try String(contentsOf: InputFixtures.golden("system/expected.txt"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") }
            .map { line in
                let f = line.split(separator: " ")
                return (String(f[0]), Double(f[1])!, String(f[2]))
            }
    }

    @Test func secondPollOfTheGoldenTreeGivesTheHandComputedFigures() async throws {
        let box = try Self.tree()
        let configuration = try InputFixtures.input("""
            - type: system
              sensor: box
              interval: 1s
              collect: [cpu, memory, load, uptime, interfaces, temperatures, power]
              proc-root: \(box.path)/proc
              sys-root: \(box.path)/sys
            """)
        let input = try #require(configuration.makeInput(clock: SystemWallClock()) as? SystemInput)
        var poller = input.makePoller()
        let first = try await poller.poll(now: 1_000)
        #expect(!first.contains { $0.series.name.hasPrefix("box/cpu") }, "CPU usage needs two samples")
        try FileManager.default.removeItem(at: box.appendingPathComponent("proc/stat"))
        try FileManager.default.copyItem(at: box.appendingPathComponent("proc/stat.next"), to: box.appendingPathComponent("proc/stat"))
        let second = try await poller.poll(now: 2_000)
        let got = second.map { (String($0.series.attribute), $0.value, $0.series.unit) }
        let want = try Self.expected()
        #expect(got.map(\.0) == want.map(\.0))
        for (g, w) in zip(got, want) {
            #expect(g.2 == w.2, "\(g.0) unit")
            #expect(abs(g.1 - w.1) <= 1e-9 * max(1, abs(w.1)), "\(g.0): \(g.1) against \(w.1)")
        }
        #expect(second.allSatisfy { $0.timestamp == 2_000 && $0.series.name.hasPrefix("box/") })
        #expect(second.allSatisfy { UnitCode.isKnown($0.series.unit) && NGSIName.isValid(String($0.series.attribute)) })
    }

    @Test func disksAndTheRealBox() async throws {
        let input = try #require(try InputFixtures.input("- type: system\n  disks: [/, /tmp]").makeInput(clock: SystemWallClock()) as? SystemInput)
        #expect(input.sensor.id == "system")
        var poller = input.makePoller()
        _ = try await poller.poll(now: 1)
        try await Task.sleep(for: .milliseconds(200))  // a few clock ticks, for the CPU's share
        let readings = try await poller.poll(now: 2)
        let byName = Dictionary(readings.map { (String($0.series.attribute), $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect((0...100).contains(byName["diskUsage_root"] ?? -1))
        #expect((byName["diskFree_tmp"] ?? -1) >= 0)
        #expect((byName["memoryTotal"] ?? 0) > 0 && (byName["uptime"] ?? 0) > 0)
        #expect(byName["cpuUsage"].map { (0...100).contains($0) } ?? false)
        #expect(!byName.keys.contains { $0.hasSuffix("_lo") }, "lo is left out by default")
    }

    @Test func aMissingProcIsAClearErrorAndBadOptionsNameTheKey() async throws {
        let input = try #require(try InputFixtures.input("- type: system\n  proc-root: /nonexistent").makeInput(clock: SystemWallClock()) as? SystemInput)
        var poller = input.makePoller()
        await #expect { _ = try await poller.poll(now: 1) } throws: { "\($0)".contains("proc-root") }
        #expect { _ = try InputFixtures.input("- type: system\n  collect: [cpu, gpu]") } throws: { "\($0)".contains("gpu") }
        #expect { _ = try InputFixtures.input("- type: system\n  disks: [var]") } throws: { "\($0)".contains("mount point") }
    }
}
