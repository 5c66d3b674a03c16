import Foundation
@testable import GemelloAgent
import GemelloCore
import GemelloTesting
import Logging
import Synchronization
import Testing

/// The `modbus` input through libmodbus against a real Modbus server (pymodbus playing a DC plant
/// controller), a device that hangs, one that goes away and comes back, and an agent whose other
/// inputs go on meanwhile.
@Suite(.serialized) struct ModbusInputTests {
    /// `Tests/GemelloInputsTests/Golden/modbus/server.py` on a free port, until the value is released.
    final class ModbusServer: Sendable {
        let port: Int
        let process: ChildProcess

        private init(port: Int, process: ChildProcess) {
            self.port = port
            self.process = process
        }

        /// Starts it and waits (off the cooperative pool) until it says it is ready.
        static func start(silent: Bool = false, port fixed: Int? = nil) async throws -> ModbusServer {
            let folder = try Repository.temporaryFolder("modbus-server")
            let log = folder.appendingPathComponent("server.log")
            let script = Repository.root.appendingPathComponent("Tests/GemelloInputsTests/Golden/modbus/server.py").path
            let port = try fixed ?? FreePort.find()
            let process = try ChildProcess("/usr/bin/env", ["python3", script, String(port)] + (silent ? ["--silent"] : []), log: log)
            let deadline = ContinuousClock.now + .seconds(30)
            while !((try? String(contentsOf: log, encoding: .utf8))?.contains("ready") ?? false) {
                guard ContinuousClock.now < deadline, process.isRunning else {
                    process.stop()
                    throw InputError("the pymodbus server did not start (run ops/test, which installs pymodbus): "
                                     + ((try? String(contentsOf: log, encoding: .utf8)) ?? ""))
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            return ModbusServer(port: port, process: process)
        }

        func stop() { process.stop() }
        deinit { process.stop() }
    }

    static func configuration(port: Int, extra: String = "") throws -> ModbusInput.Configuration {
        let yaml = """
            inputs:
              - type: modbus
                sensor: rectifier
                device: tcp://127.0.0.1:\(port)
                interval: 100ms
                timeout: 300ms
                retries: 1
            \(extra)
                registers:
                  - attribute: outputVoltage
                    address: 0
                    scale: 0.01
                    unit: VLT
                  - attribute: batteryCurrent
                    address: 1
                    type: int16
                    scale: 0.1
                    unit: AMP
                  - attribute: loadPower
                    address: 2
                    type: float32
                    unit: WTT
                  - attribute: loadPowerCDAB
                    address: 4
                    type: float32
                    word-order: little
                    unit: WTT
                  - attribute: energy
                    address: 10
                    type: uint32
                    unit: WHR
                  - attribute: batteryTemperature
                    address: 12
                    type: float64
                    unit: CEL
                  - attribute: rectifiers
                    table: input
                    address: 0
                  - attribute: mainsPresent
                    table: coil
                    address: 0
                  - attribute: alarm
                    table: discrete
                    address: 1
            """
        let root = try ConfigSection.parse(yaml, file: "/tmp/modbus.yaml")
        return try #require(try InputRegistry.decode(try root.sections("inputs")[0]).options as? ModbusInput.Configuration)
    }

    static func input(_ configuration: ModbusInput.Configuration) -> ModbusInput {
        ModbusInput(configuration: configuration, context: InputContext(clock: SystemWallClock(), modbus: LibModbusConnector()))
    }

    @Test(.timeLimit(.minutes(1)))
    func readsEveryTypeFromARealDeviceAndReconnectsAfterItComesBack() async throws {
        var server = try await ModbusServer.start()
        let port = server.port
        var poller = try Self.input(try Self.configuration(port: port)).makePoller()
        let readings = try await poller.poll(now: 42)
        let values = Dictionary(readings.map { (String($0.series.attribute), $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(values == ["outputVoltage": 53.5, "batteryCurrent": -12.5, "loadPower": 1234.5, "loadPowerCDAB": 1234.5,
                           "energy": 70_000, "batteryTemperature": 23.25, "rectifiers": 3, "mainsPresent": 1, "alarm": 0])
        #expect(readings.allSatisfy { $0.timestamp == 42 && $0.series.name.hasPrefix("rectifier/") })

        // The device goes away: the poll fails with libmodbus's reason, after its retries.
        let gone = server
        try await offPool { gone.stop() }
        await #expect { _ = try await poller.poll(now: 43) } throws: {
            let text = "\($0)"
            return text.contains("tcp://127.0.0.1:\(port)") && text.contains("after 2 attempts")
        }
        // It comes back on the same port: the next poll reconnects.
        server = try await ModbusServer.start(port: port)
        #expect(try await poller.poll(now: 44).count == 9)
        let last = server
        try await offPool { last.stop() }
    }

    /// A device that accepts the connection and never answers: each poll ends at its timeout
    /// with the reason in health, and the agent's other input keeps its pace meanwhile.
    @Test(.timeLimit(.minutes(1)))
    func aHungDeviceIsReportedAndNeverBlocksTheOtherInputs() async throws {
        let hung = try await ModbusServer.start(silent: true)
        defer { hung.stop() }
        let folder = try Repository.temporaryFolder("modbus-agent")
        let reservation = try FreePort.reserve()  // no broker: the agent buffers
        defer { reservation.release() }
        var configuration = try AgentConfiguration.decode("""
            agent-id: modbus-site
            site:
              id: s
              kind: 5g-tower
              latitude: 45.46
              longitude: 9.19
            broker: mqtt://127.0.0.1:\(reservation.port)
            buffer:
              path: \(folder.appendingPathComponent("buffer.sqlite").path)
              flush-interval: 50ms
            inputs:
              - type: simulated
                sensor: live
                profile: power
                interval: 50ms
            """, file: folder.appendingPathComponent("agent.yaml").path)
        configuration.inputs.append(InputConfiguration(try Self.configuration(port: hung.port)))
        configuration.publisher.drainTimeout = .zero
        var logger = Logger(label: "modbus")
        logger.logLevel = .critical
        let agent = try Agent(configuration: configuration, logger: logger)
        let group = try agent.makeServiceGroup(signals: [])
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Task.sleep(for: .seconds(3))
            let health = agent.inputHealth
            #expect(health.map(\.type) == ["simulated", "modbus"])
            let modbus = try #require(health.last)
            #expect(modbus.errors >= 2 && modbus.lastSuccess == nil && modbus.readings == 0)
            #expect(modbus.lastError?.contains("timed out") == true, "\(modbus.lastError ?? "no error")")
            #expect(health[0].errors == 0 && health[0].readings > 0 && health[0].lastSuccess != nil)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        // ~60 samples of 3 channels in 3 s while every Modbus poll hung for 2 × 300 ms.
        #expect(agent.buffer.bufferedReadings >= 100, "the simulated input kept its pace: \(agent.buffer.bufferedReadings)")
        #expect(agent.counters.accepted.load(ordering: .relaxed) == agent.buffer.bufferedReadings, "no Modbus readings")
    }
}
