import Foundation
import GemelloCore
@testable import GemelloInputs
import GemelloTesting
import Synchronization
import Testing

/// The `exec` input with real programs: each output format, each way a command fails, the
/// timeout that kills a hung one, and the shared poll loop around it.
@Suite struct ExecInputTests {
    static func poller(_ yaml: String) throws -> ExecInput.Poller {
        try #require(try InputFixtures.input(yaml).makeInput(clock: SystemWallClock()) as? ExecInput).makePoller()
    }

    static func values(_ readings: [Reading]) -> [String: Double] {
        Dictionary(readings.map { (String($0.series.attribute), $0.value) }, uniquingKeysWith: { a, _ in a })
    }

    @Test func influxOutputWithTimestampsAndNameTags() async throws {
        let file = InputFixtures.golden("exec/ups.influx").path
        var poller = try Self.poller("""
            - type: exec
              sensor: ups
              command: [/bin/cat, \(file)]
              format: influx
              precision: s
              name-tags: [ups]
              units:
                battery_charge_ups1: P1
                input_voltage_ups1: VLT
            """)
        let readings = try await poller.poll(now: 5)
        #expect(Self.values(readings) == ["battery_charge_ups1": 98, "battery_runtime_ups1": 3120, "input_voltage_ups1": 229.6,
                                          "input_frequency_ups1": 50.02, "status_online_ups1": 1])
        #expect(readings.allSatisfy { $0.timestamp == 1_764_445_200_000 }, "the line's own time, in seconds")
        #expect(readings.first { $0.series.attribute == "input_voltage_ups1" }?.series.unit == "VLT")
        #expect(readings.first { $0.series.attribute == "battery_runtime_ups1" }?.series.unit == "C62")
        #expect(readings.allSatisfy { $0.series.name.hasPrefix("ups/") })
    }

    @Test func linesThroughAShellAndJSONWithoutOne() async throws {
        var lines = try Self.poller("""
            - type: exec
              sensor: tank
              shell: true
              command: "echo '# level sensor'; echo 'level 1.25 MTR'; echo 'flow 3.5'"
            """)
        let a = try await lines.poll(now: 7)
        #expect(Self.values(a) == ["level": 1.25, "flow": 3.5])
        #expect(a.allSatisfy { $0.timestamp == 7 })
        #expect(a.first { $0.series.attribute == "level" }?.series.unit == "MTR")

        var json = try Self.poller("""
            - type: exec
              sensor: box
              format: json
              command: [/usr/bin/printf, '{"battery": {"voltage": 12.6, "charging": true}, "name": "x", "9lives": 9}']
            """)
        let b = try await json.poll(now: 8)
        #expect(Self.values(b) == ["battery_voltage": 12.6, "battery_charging": 1, "m9lives": 9])
    }

    @Test func failuresSayWhy() async throws {
        var failing = try Self.poller("- type: exec\n  sensor: f\n  shell: true\n  command: \"echo working >&2; echo 'disk not ready' >&2; exit 3\"")
        await #expect { _ = try await failing.poll(now: 1) } throws: { "\($0)".contains("status 3: disk not ready") }

        var garbled = try Self.poller("- type: exec\n  sensor: g\n  shell: true\n  command: \"echo 'level 1.0'; echo 'oops'\"")
        await #expect { _ = try await garbled.poll(now: 1) } throws: { "\($0)".contains("line 2") && "\($0)".contains("name value") }

        var badUnit = try Self.poller("- type: exec\n  sensor: u\n  shell: true\n  command: \"echo 'level 1.0 metres'\"")
        await #expect { _ = try await badUnit.poll(now: 1) } throws: { "\($0)".contains("UN/CEFACT") }

        // A hung command is stopped at its timeout, with its children (its process group).
        var hung = try Self.poller("- type: exec\n  sensor: h\n  shell: true\n  timeout: 300ms\n  interval: 1s\n  command: \"sleep 30 & sleep 30\"")
        let start = ContinuousClock.now
        await #expect { _ = try await hung.poll(now: 1) } throws: { "\($0)".contains("did not finish within") }
        #expect(ContinuousClock.now - start < .seconds(5))

        #expect { _ = try InputFixtures.input("- type: exec\n  sensor: n\n  command: [no-such-program-here]") } throws: {
            "\($0)".contains("not found") && "\($0)".contains("command")
        }
        #expect { _ = try InputFixtures.input("- type: exec\n  sensor: t\n  command: [/bin/true]\n  interval: 1s\n  timeout: 5s") } throws: {
            "\($0)".contains("timeout")
        }
    }

    /// The shared loop: polls at the interval, reports each outcome, and an input that can wait
    /// does not run its command while the sink is paused.
    @Test(.timeLimit(.minutes(1)))
    func thePollLoopReportsOutcomesAndPausesWithTheBuffer() async throws {
        let folder = try Repository.temporaryFolder("exec-loop")
        let counter = folder.appendingPathComponent("runs").path
        let input = try #require(try InputFixtures.input("""
            - type: exec
              sensor: loop
              shell: true
              interval: 50ms
              timeout: 50ms
              command: "echo run >> \(counter); echo 'value 1'"
            """).makeInput(clock: SystemWallClock()) as? ExecInput)
        #expect(input.canWait)
        let sink = RecordingSink()
        func runs() -> Int { ((try? String(contentsOfFile: counter, encoding: .utf8)) ?? "").split(separator: "\n").count }
        let task = Task { try await input.run(into: sink) }
        try await waitFor(.seconds(10)) { runs() >= 3 }
        sink.paused.store(true, ordering: .relaxed)
        // The run in flight reaches accept and waits there; from then on no run starts.
        var runsWhenPaused = runs()
        try await waitFor(.seconds(10)) {
            try await Task.sleep(for: .milliseconds(300))
            defer { runsWhenPaused = runs() }
            return runs() == runsWhenPaused
        }
        try await Task.sleep(for: .milliseconds(400))
        #expect(runs() == runsWhenPaused, "no runs while paused")
        sink.paused.store(false, ordering: .relaxed)
        try await waitFor(.seconds(10)) { runs() > runsWhenPaused }
        task.cancel()
        let summary = try await task.value
        #expect(sink.all.count == summary["readings"])
        #expect(sink.outcomes.withLock { $0 }.allSatisfy { $0 == nil })
        #expect((summary["skippedPolls"] ?? 0) > 0, "the ticks missed while paused are skipped, not caught up")
    }

    private func waitFor(_ timeout: Duration, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else { Issue.record("not within \(timeout)"); return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// The line protocol parser on the cases its reference spells out.
@Suite struct InfluxLineProtocolTests {
    @Test func escapesTypesAndTimestamps() throws {
        let text = #"""
            # a comment
            weather,location=us\,midwest,site=a\ b temperature=82,humidity=71i,ok=t,note="said \"hi\"" 1465839830100400200

            my\ measurement,tag\=key=v field\,key=-1.5e3,u=7u
            """#
        let points = try InfluxLineProtocol.parse(Array(text.utf8))
        #expect(points.count == 2)
        #expect(points[0].measurement == "weather")
        #expect(points[0].tags.map(\.1) == ["us,midwest", "a b"])
        #expect(points[0].fields.map(\.0) == ["temperature", "humidity", "ok", "note"])
        #expect(points[0].fields.map(\.1) == [.number(82), .number(71), .bool(true), .string(#"said "hi""#)])
        #expect(points[0].timestamp == 1_465_839_830_100_400_200)
        #expect(points[1].measurement == "my measurement" && points[1].tags[0].0 == "tag=key")
        #expect(points[1].fields.map(\.1) == [.number(-1500), .number(7)] && points[1].timestamp == nil)
        #expect(InfluxLineProtocol.Precision.ns.milliseconds(1_465_839_830_100_400_200) == 1_465_839_830_100)
        #expect(InfluxLineProtocol.Precision(influx: "u") == .us)
    }

    @Test(arguments: ["cpu", "cpu value=", "cpu,host value=1", "cpu value=1 notanumber", "cpu value=\"open", "cpu value=abc", ",t=1 v=1"])
    func malformedLinesAreRefusedWithTheLineNumber(_ line: String) {
        #expect { _ = try InfluxLineProtocol.parse(Array(("ok value=1\n" + line).utf8)) } throws: { "\($0)".hasPrefix("line 2:") }
    }
}
