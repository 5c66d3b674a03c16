import ArgumentParser
import GemelloCore

struct FleetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet", abstract: "List the agents: status, site, last seen, throughput, backlog.")

    @OptionGroup var options: AggregatorOptions

    func run() async throws {
        let (data, fleet) = try await options.client.get("/fleet", as: [FleetAgentSummary].self)
        if options.json {
            print(String(decoding: data, as: UTF8.self))
            return
        }
        guard !fleet.isEmpty else {
            print("no agents have reported yet")
            return
        }
        var table = Table(["AGENT", "STATUS", "SITE", "KIND", "LAST SEEN", "BATCHES", "READINGS", "BUFFERED", "DUPES", "REJECTED", "VERSION"])
        for agent in fleet {
            table.add([agent.id, agent.status.rawValue, agent.siteID ?? "-", agent.siteKind ?? "-",
                       agent.secondsSinceLastSeen.map { Table.ago($0) } ?? "never",
                       "\(agent.batchesReceived)", "\(agent.readingsReceived)", agent.readingsBuffered.map { "\($0)" } ?? "-",
                       "\(agent.duplicateBatches)", "\(agent.rejectedBatches)", agent.version ?? "-"])
        }
        print(table.render(), terminator: "")
        let counts = FleetAgentSummary.Status.allCases.map { status in "\(fleet.filter { $0.status == status }.count) \(status.rawValue)" }
        print("\(fleet.count) agents: " + counts.joined(separator: ", "))
    }
}
