import ArgumentParser
import Foundation
import GemelloCore

/// `gemello alerts`: the Control Room's alerts as the aggregator keeps them.
struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts", abstract: "Open alerts (newest first), one alert, or acknowledge one.",
        subcommands: [AlertsListCommand.self, AlertsShowCommand.self, AlertsAckCommand.self], defaultSubcommand: AlertsListCommand.self)
}

/// An alert as `GET /alerts` gives it.
struct AlertView: Decodable {
    var id: String
    var rule: String
    var status: String
    var severity: String
    var entityId: String
    var agent: String?
    var attribute: String?
    var unitCode: String?
    var value: Double
    var peak: Double?
    var count: Int
    var raisedAt: String
    var updatedAt: String
    var clearedAt: String?
    var late: Bool
    var acknowledgedAt: String?
    var acknowledgedBy: String?
    var site: String?
    var agents: [String]?
    var texts: [String: [String: String]]?

    /// The headline in English if the rule has one, else its first language's.
    var headline: String { texts?["en"]?["headline"] ?? texts?.values.first?["headline"] ?? "\(rule) \(entityId)" }
}

struct AlertsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Open alerts, newest first (the default of 'gemello alerts').")

    @OptionGroup var options: AggregatorOptions
    @Flag(name: .long, help: "Include the cleared alerts the aggregator keeps.")
    var all = false
    @Option(name: .long, help: "At most this many alerts.")
    var limit = 200
    @OptionGroup var watching: WatchOptions

    func validate() throws {
        guard limit >= 1 else { throw ValidationError("--limit must be at least 1 (got \(limit))") }
    }

    func run() async throws {
        let terminal = watching.watch && isatty(STDOUT_FILENO) == 1 && !options.json
        try await watching.run { try await printOnce(clear: terminal) }
    }

    func printOnce(clear: Bool) async throws {
        let path = "/alerts?limit=\(limit)" + (all ? "&all=true" : "")
        let (data, alerts) = try await options.client.get(path, as: [AlertView].self)
        if options.json {
            print(String(decoding: data, as: UTF8.self))
            return
        }
        if clear { print("\u{1B}[H\u{1B}[2J", terminator: "") }
        print(Self.render(alerts, all: all), terminator: "")
        if clear { print("\(Timestamp.iso8601(milliseconds: SystemWallClock().nowMilliseconds()))  every \(watching.interval) s; Ctrl-C stops") }
    }

    static func render(_ alerts: [AlertView], all: Bool) -> String {
        guard !alerts.isEmpty else { return all ? "no alerts kept\n" : "no open alerts\n" }
        var table = Table(["ID", "SEVERITY", "STATUS", "RULE", "RAISED", "COUNT", "VALUE", "HEADLINE"])
        for a in alerts {
            var status = a.status
            if a.acknowledgedBy != nil && a.status == "open" { status = "acked" }
            if a.late { status += " (late)" }
            table.add([a.id, a.severity, status, a.rule, String(a.raisedAt.prefix(19)), "\(a.count)",
                       Self.number(a.status == "cleared" ? a.peak ?? a.value : a.value), a.headline])
        }
        return table.render() + "\(alerts.count) alerts\n"
    }

    static func number(_ v: Double) -> String {
        let r = (v * 100).rounded() / 100
        return r == r.rounded() && abs(r) < 1e15 ? String(Int64(r)) : String(r)
    }
}

struct AlertsShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One alert with its texts.")
    @OptionGroup var options: AggregatorOptions
    @Argument(help: "The alert id (as 'gemello alerts' lists it).")
    var id: String

    func run() async throws {
        let (data, list): (Data, [AlertView])
        do { (data, list) = try await options.client.get("/alerts/\(APIClient.escape(id))", as: [AlertView].self) } catch let e as CLIError where e.isNotFound {
            Console.error("gemello: no alert with id \(id). Fix: 'gemello alerts --all' lists the ids")
            throw ExitCode(1)
        }
        if options.json { print(String(decoding: data, as: UTF8.self)); return }
        guard let a = list.first else { throw ExitCode(1) }
        print("\(a.id)  \(a.severity.uppercased())  \(a.status)\(a.late ? " (late: from a backlog)" : "")")
        print("rule      \(a.rule)   subject \(a.entityId)\(a.attribute.map { " \($0)" } ?? "")")
        print("raised    \(a.raisedAt)   updated \(a.updatedAt)\(a.clearedAt.map { "   cleared \($0)" } ?? "")")
        print("value     \(AlertsListCommand.number(a.value))\(a.unitCode.map { " \(UnitCode.symbol($0))" } ?? "")   peak \(AlertsListCommand.number(a.peak ?? a.value))   raised \(a.count) time(s)")
        if let by = a.acknowledgedBy { print("acked     by \(by) at \(a.acknowledgedAt ?? "-")") }
        if let agents = a.agents, !agents.isEmpty { print("agents    \(agents.joined(separator: ", "))") }
        for (language, text) in (a.texts ?? [:]).sorted(by: { $0.key < $1.key }) {
            print("[\(language)] \(text["headline"] ?? "")")
            if let d = text["description"] { print("     \(d)") }
        }
    }
}

struct AlertsAckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ack", abstract: "Acknowledge an open alert: it stays open until its condition clears; every sink is told who took it.")
    @OptionGroup var options: AggregatorOptions
    @Argument(help: "The alert id (as 'gemello alerts' lists it).")
    var id: String
    @Option(name: .long, help: "Who acknowledges (default: $USER).")
    var by: String?

    func run() async throws {
        let who = by ?? Environment.value("USER") ?? "operator"
        let body = try JSONSerialization.data(withJSONObject: ["by": who])
        let data: Data
        do { data = try await options.client.post("/alerts/\(APIClient.escape(id))/ack", json: body) } catch let e as CLIError where e.isNotFound {
            Console.error("gemello: no alert with id \(id). Fix: 'gemello alerts' lists the open ones")
            throw ExitCode(1)
        }
        if options.json { print(String(decoding: data, as: UTF8.self)); return }
        let alert = try JSONDecoder().decode([AlertView].self, from: data).first
        if let alert, alert.status == "cleared" {
            print("\(id) had already cleared at \(alert.clearedAt ?? "-"); nothing to acknowledge")
        } else {
            print("\(id) acknowledged by \(alert?.acknowledgedBy ?? who)")
        }
    }
}
