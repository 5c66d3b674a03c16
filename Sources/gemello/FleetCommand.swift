import ArgumentParser
import Foundation
import GemelloCore

struct FleetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet", abstract: "The agents: status, site, last seen, backlog, drops, version.",
        subcommands: [FleetListCommand.self, FleetShowCommand.self], defaultSubcommand: FleetListCommand.self)
}

struct FleetListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List every agent (the default of 'gemello fleet').")

    @OptionGroup var options: AggregatorOptions
    @OptionGroup var watching: WatchOptions

    func run() async throws {
        let terminal = watching.watch && isatty(STDOUT_FILENO) == 1 && !options.json
        try await watching.run {
            guard terminal else { return try await printOnce() }
            let (_, fleet) = try await options.client.get("/fleet", as: [FleetAgentSummary].self)
            print("\u{1B}[H\u{1B}[2J", terminator: "")  // home + clear: redraw in place
            print(Self.render(fleet), terminator: "")
            print("\(Timestamp.iso8601(milliseconds: SystemWallClock().nowMilliseconds()))  every \(watching.interval) s; Ctrl-C stops")
        }
    }

    func printOnce() async throws {
        let (data, fleet) = try await options.client.get("/fleet", as: [FleetAgentSummary].self)
        if options.json {
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(Self.render(fleet), terminator: "")
        }
    }

    /// Problems first (offline, stale), then by id.
    static func render(_ fleet: [FleetAgentSummary]) -> String {
        guard !fleet.isEmpty else { return "no agents have reported yet\n" }
        let order: [FleetAgentSummary.Status: Int] = [.offline: 0, .stale: 1, .online: 2]
        let sorted = fleet.sorted { (order[$0.status] ?? 0, $0.id) < (order[$1.status] ?? 0, $1.id) }
        var table = Table(["AGENT", "STATUS", "SITE", "LAST SEEN", "BACKLOG", "OLDEST", "DROPPED", "EPOCH", "VERSION"])
        for agent in sorted {
            table.add([agent.id, agent.status.rawValue, agent.siteID ?? "-",
                       agent.secondsSinceLastSeen.map { Table.ago($0) } ?? "never",
                       agent.readingsBuffered.map { "\($0)" } ?? "-",
                       agent.health?.oldestUnsentSeconds.map { Table.duration($0) } ?? "-",
                       agent.health?.readingsDropped.map { "\($0)" } ?? "-",
                       "\(agent.bootEpoch)", agent.version ?? "-"])
        }
        let counts = FleetAgentSummary.Status.allCases.map { status in "\(fleet.count { $0.status == status }) \(status.rawValue)" }
        return table.render() + "\(fleet.count) agents: " + counts.joined(separator: ", ") + "\n"
    }
}

struct FleetShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "One agent: its birth facts, latest health, status transitions and health history.")

    @OptionGroup var options: AggregatorOptions
    @Argument(help: "The agent id, or a part of it that matches exactly one agent.")
    var agent: String
    @Option(name: .long, help: "How many of the latest health reports to show.")
    var health = 20

    func run() async throws {
        let id = try await resolve(agent)
        let (data, detail) = try await options.client.get("/fleet/\(APIClient.escape(id))?health=\(max(0, health))",
                                                          as: FleetAgentDetail.self)
        if options.json { print(String(decoding: data, as: UTF8.self)); return }
        let a = detail.agent
        print("\(a.id)  \(a.status.rawValue.uppercased())\(a.statusSince.map { " since \($0)" } ?? "")")
        print("site      \(a.siteID ?? "-") (\(a.siteKind ?? "-"))  \(a.latitude.map { "\($0)" } ?? "-"), \(a.longitude.map { "\($0)" } ?? "-")")
        print("session   epoch \(a.bootEpoch), version \(a.version ?? "-"), config \(a.configHash ?? "-")")
        print("timing    health every \(a.healthIntervalSeconds.map { Table.duration($0) } ?? "-"), "
              + "keepalive \(a.keepAliveSeconds.map { "\($0) s" } ?? "-"), last seen \(a.secondsSinceLastSeen.map { Table.ago($0) } ?? "never")")
        print("ingest    \(a.batchesReceived) batches, \(a.readingsReceived) readings, \(a.duplicateBatches) duplicates, \(a.rejectedBatches) rejected")
        if let h = a.health { print("health    " + Self.describe(h)) }
        if let inputs = a.health?.inputs, !inputs.isEmpty {
            print("\nINPUTS (latest health)")
            var table = Table(["SENSOR", "TYPE", "READINGS", "ERRORS", "LAST SUCCESS", "STATE"])
            for input in inputs {
                let state = input.paused == true ? "paused: buffer full" : input.lastError.map { "failing: \($0)" } ?? "ok"
                table.add([input.sensor, input.type, "\(input.readings)", "\(input.errors)",
                           input.lastSuccess.map { Timestamp.iso8601(milliseconds: $0) } ?? "never", state])
            }
            print(table.render(), terminator: "")
        }
        print("\nTRANSITIONS (newest first)")
        if detail.transitions.isEmpty { print("  none recorded") } else {
            var table = Table(["TIME", "FROM", "TO", "EPOCH", "REASON"])
            for t in detail.transitions { table.add([t.time, t.from?.rawValue ?? "-", t.to.rawValue, "\(t.bootEpoch)", t.reason]) }
            print(table.render(), terminator: "")
        }
        print("\nHEALTH HISTORY (oldest first, last \(detail.healthHistory.count))")
        if detail.healthHistory.isEmpty { print("  none kept") } else {
            var table = Table(["TIME", "UPTIME", "BACKLOG", "BYTES", "OLDEST", "DROPPED", "DISK FREE", "RSS", "CPU", "RECONN", "ACK MS"])
            for h in detail.healthHistory {
                table.add([Timestamp.iso8601(milliseconds: h.time), Table.duration(Double(h.uptimeSeconds)), "\(h.readingsBuffered)",
                           h.bufferedBytes.map(Table.bytes) ?? "-", h.oldestUnsentSeconds.map { Table.duration($0) } ?? "-",
                           h.readingsDropped.map { "\($0)" } ?? "-", h.diskFreeBytes.map(Table.bytes) ?? "-",
                           h.rssBytes.map(Table.bytes) ?? "-", h.cpuPercent.map { "\($0) %" } ?? "-",
                           h.reconnects.map { "\($0)" } ?? "-",
                           h.ackLatencyMeanMilliseconds.map { "\(Int($0))/\(Int(h.ackLatencyMaxMilliseconds ?? $0))" } ?? "-"])
            }
            print(table.render(), terminator: "")
        }
    }

    static func describe(_ h: AgentHealth) -> String {
        var parts = ["up \(Table.duration(Double(h.uptimeSeconds)))", "backlog \(h.readingsBuffered)"]
        if let bytes = h.bufferedBytes { parts.append("buffer \(Table.bytes(bytes))") }
        if let oldest = h.oldestUnsentSeconds { parts.append("oldest unsent \(Table.duration(oldest))") }
        if let dropped = h.readingsDropped { parts.append("dropped \(dropped)") }
        if let disk = h.diskFreeBytes { parts.append("disk free \(Table.bytes(disk))") }
        if let rss = h.rssBytes { parts.append("RSS \(Table.bytes(rss))") }
        if let cpu = h.cpuPercent { parts.append("CPU \(cpu) %") }
        if let reconnects = h.reconnects { parts.append("reconnects \(reconnects)") }
        if let ack = h.ackLatencyMeanMilliseconds { parts.append("ack \(Int(ack)) ms (max \(Int(h.ackLatencyMaxMilliseconds ?? ack)))") }
        if h.bufferPaused == true { parts.append("BUFFER FULL: inputs that can wait are paused") }
        if let failing = h.inputs?.filter({ $0.lastError != nil }), !failing.isEmpty {
            parts.append("inputs failing: \(failing.map(\.sensor).joined(separator: ", "))")
        }
        return parts.joined(separator: ", ")
    }

    /// An exact id, or the one agent whose id contains `text`.
    func resolve(_ text: String) async throws -> String {
        let (_, fleet) = try await options.client.get("/fleet", as: [FleetAgentSummary].self)
        if fleet.contains(where: { $0.id == text }) { return text }
        let matches = fleet.filter { $0.id.contains(text) }
        guard matches.count == 1 else {
            throw CLIError(matches.isEmpty
                ? "no agent id contains '\(text)'. Fix: run 'gemello fleet' for the ids (\(fleet.count) agents known)"
                : "'\(text)' matches \(matches.count) agents (\(matches.prefix(5).map(\.id).joined(separator: ", "))…); give more of the id")
        }
        return matches[0].id
    }
}
