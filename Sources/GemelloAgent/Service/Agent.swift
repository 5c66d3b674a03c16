import GemelloCore
import GemelloMosquitto
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// A configured agent: buffer, inputs, writer and publisher, run as one `ServiceGroup`.
///
/// Services start in list order and stop in reverse: inputs stop first, the writer commits what
/// they produced, the publisher drains the buffer (bounded by `drain-timeout`), and the buffer
/// closes when the agent is released.
public final class Agent: Sendable {
    public let configuration: AgentConfiguration
    public let buffer: ReadingBuffer
    public let counters = AgentCounters()
    private let logger: Logger
    private let clock: any WallClock
    /// The running inputs' health report (set when the service group is made).
    private let inputReport = Mutex<(@Sendable () -> (paused: Bool, inputs: [InputHealth]))?>(nil)

    /// Each input's self-metrics as the next health message will carry them.
    public var inputHealth: [InputHealth] { inputReport.withLock { $0 }?().inputs ?? [] }

    public init(configuration: AgentConfiguration, logger: Logger, clock: any WallClock = SystemWallClock()) throws(AgentError) {
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        buffer = try ReadingBuffer(path: configuration.buffer.path, epochSeed: UInt64(max(0, clock.nowMilliseconds() / 1000)),
                                   limits: configuration.buffer.limits)
    }

    /// Runs until SIGTERM/SIGINT (or until the surrounding task is cancelled / shut down).
    public func run(signals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        try await makeServiceGroup(signals: signals).run()
    }

    /// The agent's services as one group; `triggerGracefulShutdown()` on it stops the agent
    /// as SIGTERM would.
    public func makeServiceGroup(signals: [UnixSignal] = [.sigterm, .sigint]) throws -> ServiceGroup {
        let c = configuration
        let broker: BrokerAddress
        var settings: Publisher.Settings
        do {
            broker = try c.broker.address()
            settings = .init(agentID: c.agentID, broker: broker, site: c.site, sensors: c.inputs.map(\.sensor),
                             publisher: c.publisher, healthInterval: c.healthInterval, configHash: c.configHash)
            settings.healthFullInterval = c.healthFullInterval
            settings.credentials = try c.broker.credentials()
            settings.signingKey = try c.batchKeyFile.map { path throws(CoreError) in try BatchKey.load(path, file: c.sourceFile) }
        } catch {
            throw AgentError(.configuration, "\(error)")
        }
        var agentLogger = logger
        agentLogger[metadataKey: "agent"] = "\(c.agentID)"
        if let aside = buffer.movedAside {
            agentLogger.error("the buffer database was corrupt: moved aside, continuing with a fresh buffer", metadata: [
                "movedTo": "\(aside)", "buffer": "\(buffer.path)",
                "fix": "readings in the moved file were not delivered; inspect or salvage it with sqlite3 '.recover'"])
        }
        if let warning = c.broker.insecureWarning { agentLogger.warning("\(warning)") }
        agentLogger.info("agent starting", metadata: [
            "epoch": "\(buffer.bootEpoch)", "buffer": "\(buffer.path)", "buffered": "\(buffer.bufferedReadings)",
            "broker": "\(broker)", "identity": "\(settings.credentials.certFile != nil ? "certificate" : settings.credentials.username != nil ? "password" : "none")",
            "signed": "\(settings.signingKey != nil)", "inputs": "\(c.inputs.count)"])

        let writer = BufferWriter(buffer: buffer, counters: counters, flushInterval: c.buffer.flushInterval,
                                  flushReadings: c.buffer.flushReadings, clock: clock, logger: agentLogger)
        let inputs = c.inputs.map { configuration in
            InputService(input: configuration.makeInput(InputContext(clock: clock, modbus: LibModbusConnector())),
                         type: configuration.type, writer: writer, clock: clock, logger: agentLogger)
        }
        // The overflow policy never drops what an input that can wait handed over (back-pressure).
        buffer.protect(sensors: Set(inputs.filter { $0.input.canWait }.map { $0.input.sensor.id }))
        let report: @Sendable () -> (paused: Bool, inputs: [InputHealth]) = { [writer] in
            let paused = writer.isPaused
            return (paused, inputs.map { $0.stats.health(paused: paused, canWait: $0.input.canWait) })
        }
        settings.inputHealth = report
        inputReport.withLock { $0 = report }
        let publisher = Publisher(
            settings: settings,
            buffer: buffer, counters: counters, clock: clock, logger: agentLogger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: publisher), .init(service: writer),
        ]
        for input in inputs {
            services.append(.init(service: input, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore))
        }
        return ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: signals, logger: agentLogger))
    }
}
