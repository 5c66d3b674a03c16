import Foundation
import GemelloAgent
import GemelloCore
import GemelloSQLite
import GemelloTesting
import Testing

/// `kill -9` of a real `gemello-agent` in the middle of a replay, then a restart: the buffer ends
/// up with every reading of the file exactly once (the replay position is committed in the same
/// SQLite transaction as the readings before it). No broker is running: everything stays buffered.
@Suite(.serialized) struct ReplayResumeTests {
    /// The `gemello-agent` built next to this test binary (`swift build --build-tests` builds both).
    static var agentBinary: URL {
        let runner = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).resolvingSymlinksInPath()
        var folder = runner.deletingLastPathComponent()
        while folder.pathExtension == "xctest" || folder.lastPathComponent == "MacOS" || folder.lastPathComponent == "Contents" {
            folder.deleteLastPathComponent()
        }
        return folder.appendingPathComponent("gemello-agent")
    }

    static func launch(config: URL, extra: [String], log: URL) throws -> Process {
        let process = Process()
        process.executableURL = agentBinary
        process.arguments = ["--config", config.path] + extra
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    static func count(_ sql: String, in path: String) throws -> Int64 {
        let db = try SQLiteConnection(path: path)
        return try db.scalarInt(sql) ?? -1
    }

    @Test(.timeLimit(.minutes(3)))
    func killDashNineMidReplayThenRestartKeepsEveryReadingOnce() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.agentBinary.path),
                "gemello-agent not found at \(Self.agentBinary.path); build it with `swift build --build-tests`")
        let folder = try Repository.temporaryFolder("resume")
        let buffer = folder.appendingPathComponent("agent.sqlite").path
        let config = folder.appendingPathComponent("agent.yaml")
        let reservation = try FreePort.reserve()  // nothing listens there, nor ever will: the agent stays offline
        let port = reservation.port
        defer { reservation.release() }
        try """
            agent-id: replay-resume
            site:
              id: resume-test
              kind: fiber-node
              latitude: 45.46
              longitude: 9.19
            broker: mqtt://127.0.0.1:\(port)
            buffer:
              path: \(buffer)
              flush-interval: 200ms
            publisher:
              drain-timeout: 1s
            inputs:
              - type: csv-replay
                sensor: arpa-senato
                entity-type: WeatherObserved
                file: \(Repository.dataset("milano_senato_arpa_hourly_2017_2021.csv").path)
                separator: ","
                timestamp:
                  columns: [date, time]
                  format: "yyyy-MM-dd HH:mm:ss"
                  timezone: UTC
                missing: [""]
                speed: 4000000
                columns:
                  pm25:
                    attribute: pm25
                    unit: GQ
                  temperature:
                    attribute: temperature
                    unit: CEL
                  windSpeed:
                    attribute: windSpeed
                    unit: MTS
                  rain:
                    attribute: precipitation
                    unit: MMT
            """.write(to: config, atomically: true, encoding: .utf8)
        let log = folder.appendingPathComponent("agent.log")

        // 1. Replay at 4M data s/s (the whole file would take ~40 s), killed with SIGKILL once
        //    10,000 readings are buffered: mid-replay even when a loaded machine delays this task.
        let first = try Self.launch(config: config, extra: [], log: log)
        let started = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(60) {
            try await Task.sleep(for: .milliseconds(100))
            guard FileManager.default.fileExists(atPath: buffer),
                  let buffered = try? Self.count("SELECT count(*) FROM readings", in: buffer), buffered >= 10_000 else { continue }
            break
        }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        #expect(first.terminationReason == .uncaughtSignal)
        let afterKill = try Self.count("SELECT count(*) FROM readings", in: buffer)
        #expect(afterKill > 0 && afterKill < 172_800, "the kill must land mid-replay (buffered \(afterKill))")

        // 2. Restart at full speed until the replay finishes, then a graceful stop.
        let second = try Self.launch(config: config, extra: ["--replay-speed", "max"], log: log)
        let deadline = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if text.contains("input finished") { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        kill(second.processIdentifier, SIGTERM)
        second.waitUntilExit()
        let text = try String(contentsOf: log, encoding: .utf8)
        #expect(text.contains("input resuming where the buffer ends"), "\(text.suffix(2000))")
        #expect(second.terminationStatus == 0, "\(text.suffix(2000))")

        // 3. Every reading of the file exactly once: 43,824 rows × 4 columns − 2,496 empty cells.
        #expect(try Self.count("SELECT count(*) FROM readings", in: buffer) == 172_800)
        #expect(try Self.count("SELECT count(*) FROM (SELECT DISTINCT series, ts FROM readings)", in: buffer) == 172_800)
    }
}
