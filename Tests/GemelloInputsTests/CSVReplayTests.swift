import Foundation
@testable import GemelloInputs
import GemelloCore
import GemelloTesting
import Synchronization
import Testing

/// Collects what an input produces.
final class CollectingSink: ReadingSink {
    let readings = Mutex<[Reading]>([])
    /// Each delivery: how many readings had been delivered after it, and its checkpoint.
    let deliveries = Mutex<[(total: Int, checkpoint: InputCheckpoint?)]>([])
    func accept(_ batch: [Reading], checkpoint: InputCheckpoint?) async throws {
        readings.withLock { all in
            all.append(contentsOf: batch)
            let total = all.count
            deliveries.withLock { $0.append((total, checkpoint)) }
        }
    }
    var all: [Reading] { readings.withLock { $0 } }
}

@Suite struct CSVReplayTests {
    static func replay(_ config: String) async throws -> (InputSummary, [Reading]) {
        let sink = CollectingSink()
        let summary = try await CSVReplayInput(configuration: try CSVReplayResumeTests.configuration(config)).run(into: sink)
        return (summary, sink.all)
    }

    /// Counts non-missing cells of `columns` with a deliberately naive, independent reader.
    static func independentCount(_ file: String, separator: Character, columns: [String], missing: Set<String>, decimalComma: Bool = false) throws -> Int {
        let text = try String(contentsOf: Repository.dataset(file), encoding: .utf8)
        let lines = text.split(whereSeparator: \.isNewline)
        let header = lines[0].split(separator: separator, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let indexes = columns.map { header.firstIndex(of: $0)! }
        var count = 0
        for line in lines.dropFirst() {
            let cells = line.split(separator: separator, omittingEmptySubsequences: false).map(String.init)
            guard cells.count > indexes.max()!, !cells[0].isEmpty || file.hasPrefix("ENO") else { continue }
            for index in indexes {
                let cell = cells[index].trimmingCharacters(in: .whitespaces)
                let number = Double(decimalComma ? cell.replacingOccurrences(of: ",", with: ".") : cell)
                if missing.contains(cell) || number == -200 && missing.contains("-200") || number == nil { continue }
                count += 1
            }
        }
        return count
    }

    @Test func milanReplaysEveryPresentCellOnce() async throws {
        let (summary, readings) = try await Self.replay("replay-milano-arpa.yaml")
        #expect(readings.count == 172_800)  // 43,824 rows × 4 columns − 2,496 empty cells (SOURCES.md)
        #expect(summary["rows"] == 43_824)
        #expect(summary["missing"] == 2_496)
        let expected = try Self.independentCount("milano_senato_arpa_hourly_2017_2021.csv", separator: ",",
                                                 columns: ["pm25", "temperature", "windSpeed", "rain"], missing: [""])
        #expect(readings.count == expected)
        // First row: 2016-12-31,23:00:00,139.0,3.7,0.6,0.0 (UTC)
        #expect(readings[0] == Reading(series: SeriesInfo(name: "arpa-senato/pm25", unit: "GQ"), timestamp: 1_483_225_200_000, value: 139))
        #expect(readings[1].value == 3.7 && readings[2].value == 0.6 && readings[3].value == 0)
    }

    @Test func airQualityHandlesSemicolonsDecimalCommasAndMinus200() async throws {
        let (summary, readings) = try await Self.replay("replay-air-quality.yaml")
        let columns = ["CO(GT)", "PT08.S1(CO)", "NMHC(GT)", "C6H6(GT)", "PT08.S2(NMHC)", "NOx(GT)", "PT08.S3(NOx)", "NO2(GT)",
                       "PT08.S4(NO2)", "PT08.S5(O3)", "T", "RH", "AH"]
        let expected = try Self.independentCount("AirQualityUCI.csv", separator: ";", columns: columns, missing: ["", "-200"], decimalComma: true)
        #expect(readings.count == expected)
        #expect(summary["rows"] == 9_357)
        #expect(summary["skippedRows"] == 114)  // the trailing rows made only of separators
        #expect(summary["invalid"] == 0)
        #expect(!readings.contains { $0.value == -200 })
        // 10/03/2004 18.00.00 at +01:00 is 17:00 UTC; CO(GT) 2,6 and AH 0,7578.
        #expect(readings[0].timestamp == 1_078_938_000_000)
        #expect(readings[0].value == 2.6)
        #expect(readings.first { $0.series.name == "multisensor/absoluteHumidity" }?.value == 0.7578)
    }

    @Test func trafficKeepsRepeatedTimestamps() async throws {
        let (summary, readings) = try await Self.replay("replay-traffic-i94.yaml")
        #expect(summary["rows"] == 48_204)
        let volume = readings.filter { $0.series.name == "atr301/intensity" }
        #expect(volume.count == 48_204)
        #expect(Set(volume.map(\.timestamp)).count == 40_575)  // distinct hours (SOURCES.md)
    }

    @Test func solarNodeParsesUTCSuffixAndScientificNotation() async throws {
        let (summary, readings) = try await Self.replay("replay-solar-node.yaml")
        #expect(summary["rows"] == 4_359)
        #expect(readings.contains { $0.series.name == "eno-3b06/energyGenerated" && $0.value == 3.3e-05 })
        #expect(readings[0].timestamp == 1_488_292_888_000)  // 2017-02-28 14:41:28 UTC
    }

    @Test func pacingFollowsTheSpeed() async throws {
        var pacer = ReplayPacer(speed: 3600)
        let start = ContinuousClock.now
        #expect(pacer.delay(forDataTime: 0, now: start) == nil)
        #expect(pacer.delay(forDataTime: 3_600_000, now: start) == .seconds(1))  // an hour of data per second
        #expect(pacer.delay(forDataTime: 3_600_000, now: start + .seconds(2)) == nil)
    }

    @Test func timestampFormatsAndOffsets() throws {
        let european = try #require(TimestampFormat(pattern: "dd/MM/yyyy HH.mm.ss", zone: "+01:00"))
        #expect(european.parse(Array("10/03/2004 18.00.00".utf8)) == 1_078_938_000_000)
        #expect(european.parse(Array("31/02/2004 18.00.00".utf8)) == nil)
        #expect(european.parse(Array("10/03/2004".utf8)) == nil)
        let minnesota = try #require(TimestampFormat(pattern: "yyyy-MM-dd HH:mm:ss", zone: "-06:00"))
        #expect(minnesota.parse(Array("2012-10-02 09:00:00".utf8)) == 1_349_190_000_000)
        #expect(TimestampFormat(pattern: "HH:mm", zone: "UTC") == nil)
        #expect(TimestampFormat(pattern: "yyyy-MM-dd", zone: "Europe/Rome") == nil)
    }
}

/// A replay resumed from any checkpoint it delivered continues with exactly the readings that
/// followed that checkpoint: nothing skipped, nothing read twice (the agent commits the checkpoint
/// in the same transaction as the readings before it).
@Suite struct CSVReplayResumeTests {
    static func configuration(_ name: String) throws -> CSVReplayInput.Configuration {
        guard var replay = try InputFixtures.inputs(ofAgentConfig: name).first?.options as? CSVReplayInput.Configuration else {
            throw InputError("\(name): not a replay")
        }
        replay.speed = nil
        return replay
    }

    @Test(arguments: ["replay-solar-node.yaml", "replay-air-quality.yaml"])
    func resumesExactlyAfterEveryCheckpoint(config: String) async throws {
        let input = CSVReplayInput(configuration: try Self.configuration(config))
        let full = CollectingSink()
        _ = try await input.run(into: full)
        let all = full.all
        let deliveries = full.deliveries.withLock { $0 }
        #expect(deliveries.count > 5)
        #expect(deliveries.allSatisfy { $0.checkpoint?.key == input.checkpointKey })
        let positions = deliveries.map { $0.checkpoint!.position }
        #expect(positions == positions.sorted(), "checkpoints only move forward")
        for delivery in [deliveries[0], deliveries[deliveries.count / 2], deliveries[deliveries.count - 2], deliveries.last!] {
            let resumed = CollectingSink()
            let summary = try await input.run(into: resumed, resumingFrom: delivery.checkpoint!.position)
            #expect(resumed.all == Array(all[delivery.total...]), "resumed at byte \(delivery.checkpoint!.position)")
            #expect(summary["resumedAtByte"] == Int(delivery.checkpoint!.position))
        }
    }

    @Test func aPositionPastTheEndOfTheFileReplaysItAll() async throws {
        let input = CSVReplayInput(configuration: try Self.configuration("replay-solar-node.yaml"))
        let sink = CollectingSink()
        let summary = try await input.run(into: sink, resumingFrom: 1 << 40)
        #expect(sink.all.count == 34_872)
        #expect(summary["restartedFromTop"] == 1)
    }
}
