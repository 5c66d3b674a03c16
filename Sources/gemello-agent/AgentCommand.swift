import ArgumentParser
import GemelloAgent
import GemelloCore
import Logging

/// `gemello-agent --config FILE`: the field daemon. Parse flags, load config, run services.
@main
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemello-agent",
        abstract: "Read sensors, buffer every reading durably, publish batches to the aggregator.",
        version: GemelloVersion.current)

    @Option(name: .long, help: "The agent's YAML configuration file (see agent-config/).")
    var config: String

    @Option(name: .long, help: "Override the config's broker URL (mqtts://host:port, or mqtt:// to a broker on this machine).")
    var broker: String?

    @Option(name: .long, help: "A file with this agent's broker identity (broker, broker-tls, broker-username, broker-password-file, batch-key-file; as 'gemello agent enroll --output' writes it), replacing the config's.")
    var access: String?

    @Option(name: .long, help: "Override the config's buffer.path.")
    var buffer: String?

    @Option(name: .long, help: "Override publisher.drain-timeout in seconds (how long a stop waits for the buffer to empty).")
    var drainTimeout: Double?

    @Option(name: .long, help: "Override the speed of every csv-replay input: data seconds per second, or 'max'.")
    var replaySpeed: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Flag(name: .long, help: "Only validate the configuration and exit.")
    var check = false

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var configuration: AgentConfiguration
        do {
            configuration = try AgentConfiguration.load(path: config)
        } catch {
            Console.error("gemello-agent: invalid configuration: \(error)")
            throw ExitCode(78)  // EX_CONFIG
        }
        if let access {
            do { try configuration.applyAccess(path: access) } catch {
                Console.error("gemello-agent: invalid access file: \(error)")
                throw ExitCode(78)
            }
        }
        if let broker { configuration.broker.url = broker }
        do { _ = try configuration.broker.address() } catch {
            Console.error("gemello-agent: invalid configuration: \(error)")
            throw ExitCode(78)
        }
        if let buffer { configuration.buffer.path = buffer }
        if let drainTimeout { configuration.publisher.drainTimeout = .milliseconds(Int64(drainTimeout * 1000)) }
        if let replaySpeed {
            guard replaySpeed == "max" || (Double(replaySpeed).map { $0 > 0 && $0.isFinite } ?? false) else {
                Console.error("gemello-agent: --replay-speed must be a positive number or 'max' (got '\(replaySpeed)')")
                throw ExitCode(64)
            }
            configuration.inputs = configuration.inputs.map { input in
                guard var replay = input.options as? CSVReplayInput.Configuration else { return input }
                replay.speed = replaySpeed == "max" ? nil : Double(replaySpeed)
                return InputConfiguration(replay)
            }
        }
        if check {
            print("gemello-agent: \(config) is valid (agent \(configuration.agentID), \(configuration.inputs.count) inputs)")
            return
        }
        let agent: Agent
        do {
            agent = try Agent(configuration: configuration, logger: Logger(label: "gemello.agent"))
        } catch {
            Console.error("gemello-agent: \(error)")
            throw ExitCode(74)  // EX_IOERR
        }
        try await agent.run()
        // One parseable line for scripts (ops/demo sums these).
        Console.error("gemello-agent: stopped agent=\(configuration.agentID) accepted=\(agent.counters.accepted.load(ordering: .relaxed)) "
                   + "delivered=\(agent.counters.delivered.load(ordering: .relaxed)) buffered=\(agent.buffer.bufferedReadings) "
                   + "dropped=\(agent.counters.dropped.load(ordering: .relaxed)) droppedTotal=\(agent.buffer.droppedReadings)")
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

