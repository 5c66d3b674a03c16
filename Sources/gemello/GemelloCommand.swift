import ArgumentParser
import Foundation
import GemelloCore

/// `gemello`: the operators' CLI. Talks to the aggregator's HTTP API only.
@main
struct GemelloCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemello",
        abstract: "Operate Gemello: fleet, twin and alerts over the aggregator's API; alert rules; fleet simulation.",
        version: GemelloVersion.current,
        subcommands: [FleetCommand.self, TwinCommand.self, AlertsCommand.self, RulesCommand.self, HealthCommand.self, SimulateCommand.self,
                      PKICommand.self, AgentAdminCommand.self, TokenCommand.self])

    /// ArgumentParser's `main`, except for what a command's `run()` throws: a ``CLIError`` is one
    /// line with its fix and its kind's exit status; a `ValidationError` thrown while running is a
    /// usage error (64) without the root command's generic usage line.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            Console.error("gemello: \(error)")
            Foundation.exit(error.exitCode)
        } catch let error as ValidationError {
            Console.error("gemello: \(error.message)")
            Foundation.exit(64)
        } catch {
            exit(withError: error)
        }
    }
}

/// Options every subcommand shares.
struct AggregatorOptions: ParsableArguments {
    @Option(name: .long, help: "The aggregator's base URL (default: $GEMELLO_AGGREGATOR or http://127.0.0.1:8080).")
    var aggregator: String?

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    @Option(name: .long, help: "A file holding the API token (default: $GEMELLO_TOKEN, or the file $GEMELLO_TOKEN_FILE names).")
    var tokenFile: String?

    func validate() throws {
        if let aggregator, !APIClient.isHTTPURL(aggregator) {
            throw ValidationError("--aggregator '\(aggregator)' is not an http:// URL. Fix: pass --aggregator http://host:port")
        }
    }

    var client: APIClient {
        get throws {
            APIClient(baseURL: aggregator ?? Environment.value("GEMELLO_AGGREGATOR") ?? "http://127.0.0.1:8080", token: try token())
        }
    }

    /// The bearer token: never from the command line (every user sees it in ps).
    func token() throws -> String? {
        if let path = tokenFile ?? (Environment.value("GEMELLO_TOKEN") == nil ? Environment.value("GEMELLO_TOKEN_FILE") : nil) {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw CLIError("cannot read the token file \(path). Fix: check --token-file / $GEMELLO_TOKEN_FILE")
            }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return Environment.value("GEMELLO_TOKEN")
    }
}

/// `--watch` and `--interval`, for the commands that list what changes (fleet, alerts).
struct WatchOptions: ParsableArguments {
    @Flag(name: .long, help: "Refresh until interrupted (Ctrl-C); with --json, one JSON document per line.")
    var watch = false
    @Option(name: .long, help: "Seconds between refreshes with --watch.")
    var interval: Double = 2

    func validate() throws {
        guard interval >= 0.2 else { throw ValidationError("--interval must be at least 0.2 seconds (got \(interval))") }
    }

    /// Runs `body` once, or every `interval` until interrupted: a watch outlives an aggregator
    /// restart (an error is printed and the watch goes on).
    func run(_ body: () async throws -> Void) async throws {
        guard watch else { return try await body() }
        while !Task.isCancelled {
            do { try await body() } catch { Console.error("gemello: \(error)") }
            fflush(nil)  // all streams: 'stdout' is a C global Swift 6 will not touch
            try await Task.sleep(for: .milliseconds(Int64(interval * 1000)))
        }
    }
}

struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "health", abstract: "The aggregator's health and totals.")
    @OptionGroup var options: AggregatorOptions

    func run() async throws {
        let (data, health) = try await options.client.get("/health", as: AggregatorHealth.self)
        if options.json { print(String(decoding: data, as: UTF8.self)); return }
        print("status \(health.status), broker \(health.brokerConnected ? "connected" : "DISCONNECTED"), up \(Int(health.uptimeSeconds)) s")
        print("agents \(health.agents), batches \(health.batchesIngested), readings \(health.readingsIngested), "
              + "duplicates \(health.duplicateBatches), rejected \(health.rejectedBatches)")
    }
}
