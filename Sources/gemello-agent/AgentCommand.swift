import GemelloAgent
import GemelloCore
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `gemello-agent --config FILE`: the field daemon. Parse flags, load config, run services.
///
/// Flags are parsed here, by hand, rather than with swift-argument-parser: it brings
/// FoundationEssentials into the process, and the agent's footprint on a tower box is measured
/// (`ops/bench/agent`, docs/BENCHMARKS.md).
@main
struct AgentCommand {
    struct Options {
        var config: String?
        var broker: String?
        var access: String?
        var buffer: String?
        var stateDir: String?
        var drainTimeout: Double?
        var replaySpeed: String?
        var logLevel: Logger.Level = .info
        var check = false
    }

    static let usage = """
        USAGE: gemello-agent --config <config> [--broker <broker>] [--access <access>] [--buffer <buffer>] [--state-dir <dir>]
                             [--drain-timeout <seconds>] [--replay-speed <speed>] [--log-level <level>] [--check]

        Read sensors, buffer every reading durably, publish batches to the aggregator.

        OPTIONS:
          --config <config>       The agent's YAML configuration file (see agent-config/).
          --broker <broker>       Override the config's broker URL (mqtts://host:port, or mqtt:// to a broker on this machine).
          --access <access>       A file with this agent's broker identity (broker, broker-tls, broker-username,
                                  broker-password-file, batch-key-file; as 'gemello agent enroll --output' writes it),
                                  replacing the config's.
          --buffer <buffer>       Override the config's buffer.path.
          --state-dir <dir>       Keep the buffer in this folder (made if missing) under its configured file name,
                                  instead of where the config says (/var/lib/gemello as shipped). Default: $GEMELLO_STATE_DIR.
          --drain-timeout <s>     Override publisher.drain-timeout in seconds (how long a stop waits for the buffer to empty).
          --replay-speed <speed>  Override the speed of every csv-replay input: data seconds per second, or 'max'.
          --log-level <level>     Log level: trace, debug, info, notice, warning, error, critical. (default: info)
          --check                 Only validate the configuration and exit.
          --version               Show the version.
          -h, --help              Show help information.

        """

    /// The options, or an exit: 0 after --help/--version, 64 (EX_USAGE) for a bad command line.
    static func parse(_ arguments: [String]) -> Result<Options, ExitRequest> {
        var options = Options()
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            var name = argument, inline: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inline = String(argument[argument.index(after: equals)...])
            }
            func value() -> String? { inline ?? rest.popFirst() }
            switch name {
            case "-h", "--help": return .failure(ExitRequest(code: 0, message: usage, toStandardOutput: true))
            case "--version": return .failure(ExitRequest(code: 0, message: GemelloVersion.current, toStandardOutput: true))
            case "--check": options.check = true
            case "--config", "--broker", "--access", "--buffer", "--state-dir", "--drain-timeout", "--replay-speed", "--log-level":
                guard let text = value(), !text.hasPrefix("--") || text == "-" else {
                    return .failure(.usage("missing value for '\(name) <value>'"))
                }
                switch name {
                case "--config": options.config = text
                case "--broker": options.broker = text
                case "--access": options.access = text
                case "--buffer": options.buffer = text
                case "--state-dir": options.stateDir = text
                case "--drain-timeout":
                    guard let seconds = Double(text), seconds >= 0, seconds.isFinite else {
                        return .failure(.usage("--drain-timeout takes a number of seconds (got '\(text)')"))
                    }
                    options.drainTimeout = seconds
                case "--replay-speed":
                    guard text == "max" || (Double(text).map { $0 > 0 && $0.isFinite } ?? false) else {
                        return .failure(.usage("--replay-speed must be a positive number or 'max' (got '\(text)')"))
                    }
                    options.replaySpeed = text
                default:
                    guard let level = Logger.Level(rawValue: text) else {
                        return .failure(.usage("--log-level must be one of trace, debug, info, notice, warning, error, critical (got '\(text)')"))
                    }
                    options.logLevel = level
                }
            default:
                return .failure(.usage("unknown option '\(argument)'"))
            }
        }
        guard options.config != nil else { return .failure(.usage("missing expected argument '--config <config>'")) }
        return .success(options)
    }

    /// An environment variable, when set and not empty.
    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    struct ExitRequest: Error {
        var code: Int32
        var message: String
        var toStandardOutput = false

        static func usage(_ problem: String) -> ExitRequest {
            ExitRequest(code: 64, message: "gemello-agent: \(problem)\nUsage: gemello-agent --config <config> [options]; see 'gemello-agent --help'.")
        }
    }

    static func main() async {
        switch parse(Array(CommandLine.arguments.dropFirst())) {
        case .failure(let request):
            if request.toStandardOutput { print(request.message) } else { Console.error(request.message) }
            exit(request.code)
        case .success(let options):
            exit(await run(options))
        }
    }

    /// Runs the agent; the process's exit status (0, 74 buffer, 78 configuration).
    static func run(_ o: Options) async -> Int32 {
        let level = o.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let config = o.config!
        var configuration: AgentConfiguration
        do {
            configuration = try AgentConfiguration.load(path: config)
        } catch {
            Console.error("gemello-agent: invalid configuration: \(error)")
            return 78  // EX_CONFIG
        }
        if let access = o.access {
            do { try configuration.applyAccess(path: access) } catch {
                Console.error("gemello-agent: invalid access file: \(error)")
                return 78
            }
        }
        if let broker = o.broker { configuration.broker.url = broker }
        do { _ = try configuration.broker.address() } catch {
            Console.error("gemello-agent: invalid configuration: \(error)")
            return 78
        }
        if let folder = o.stateDir ?? environment("GEMELLO_STATE_DIR"), o.buffer == nil {
            do { try FileText.makeFolder(folder) } catch {
                Console.error("gemello-agent: --state-dir: \(error.reason). Fix: name a folder this user may write")
                return 73  // EX_CANTCREAT
            }
            let name = configuration.buffer.path.split(separator: "/").last.map(String.init) ?? "\(configuration.agentID).sqlite"
            configuration.buffer.path = (folder.hasSuffix("/") ? String(folder.dropLast()) : folder) + "/" + name
        }
        if let buffer = o.buffer { configuration.buffer.path = buffer }
        if let drainTimeout = o.drainTimeout { configuration.publisher.drainTimeout = .milliseconds(Int64(drainTimeout * 1000)) }
        if let replaySpeed = o.replaySpeed {
            configuration.inputs = configuration.inputs.map { input in
                guard var replay = input.options as? CSVReplayInput.Configuration else { return input }
                replay.speed = replaySpeed == "max" ? nil : Double(replaySpeed)
                return InputConfiguration(replay)
            }
        }
        if o.check {
            print("gemello-agent: \(config) is valid (agent \(configuration.agentID), \(configuration.inputs.count) inputs)")
            return 0
        }
        let agent: Agent
        do {
            agent = try Agent(configuration: configuration, logger: Logger(label: "gemello.agent"))
        } catch {
            Console.error("gemello-agent: \(error)")
            return 74  // EX_IOERR
        }
        do {
            try await agent.run()
        } catch {
            Console.error("gemello-agent: \(error)")
            return 1
        }
        // One parseable line for scripts (ops/demo sums these).
        Console.error("gemello-agent: stopped agent=\(configuration.agentID) accepted=\(agent.counters.accepted.load(ordering: .relaxed)) "
                   + "delivered=\(agent.counters.delivered.load(ordering: .relaxed)) buffered=\(agent.buffer.bufferedReadings) "
                   + "dropped=\(agent.counters.dropped.load(ordering: .relaxed)) droppedTotal=\(agent.buffer.droppedReadings)")
        return 0
    }
}
