import ArgumentParser
import Foundation
import GemelloAgent
import GemelloCore
import GemelloRules
import Synchronization

/// `gemello rules`: check a rules file, and try it on real data before it goes live.
struct RulesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules", abstract: "Check alert rules, and replay data through them to see what would fire.",
        subcommands: [RulesCheckCommand.self, RulesTestCommand.self])
}

struct RulesCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Validate a rules file (exit 0 valid, 78 invalid: file:line, the key and the fix).")
    @Argument(help: "The rules file (aggregator-config/rules.yaml).")
    var file: String
    @Option(help: "The comuni's outlines, for rules whose area names a comune (the aggregator's alerts.geodata).")
    var geodata: String?

    func run() throws {
        let set: RuleSet
        do { set = try RuleSet.load(path: file, areas: try geodata.map { path throws(CoreError) in try AreaIndex.load(path: path) }) } catch {
            Console.error("gemello: \(error)")
            throw ExitCode(78)
        }
        print("\(file): \(set.rules.count) rules, valid (late after \(set.lateAfterMilliseconds / 1000) s)")
        for rule in set.rules { print("  \(rule.name): \(RulesTestCommand.describe(rule))") }
    }
}

struct RulesTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run the rules over a dataset as fast as it reads and print every alert they would raise and clear.",
        discussion: """
            --replay names an agent configuration whose csv-replay inputs say which dataset to read and how
            (agent-config/replay-*.yaml for the shared datasets). Times are observation times; silence and
            fleet rules need a live fleet and are not judged here.
            """)
    @Argument(help: "The rules file.")
    var file: String
    @Option(name: .long, help: "An agent configuration with csv-replay inputs (e.g. agent-config/replay-milano-arpa.yaml).")
    var replay: String
    @Flag(name: .long, help: "Also print updates (escalations, flaps).")
    var updates = false
    @Flag(name: .long, help: "Print each alert message as JSON (one per line) instead of text.")
    var json = false
    @Option(help: "The comuni's outlines, for rules whose area names a comune (the aggregator's alerts.geodata).")
    var geodata: String?

    func run() async throws {
        let set: RuleSet
        do { set = try RuleSet.load(path: file, areas: try geodata.map { path throws(CoreError) in try AreaIndex.load(path: path) }) } catch {
            Console.error("gemello: \(error)")
            throw ExitCode(78)
        }
        let agent: AgentConfiguration
        do { agent = try AgentConfiguration.load(path: replay) } catch {
            Console.error("gemello: \(error)")
            throw ExitCode(78)
        }
        let replays = agent.inputs.compactMap { input -> CSVReplayInput.Configuration? in
            if var c = input.options as? CSVReplayInput.Configuration { c.speed = nil; return c }
            return nil
        }
        guard !replays.isEmpty else {
            Console.error("gemello: \(replay) has no csv-replay input. Fix: name an agent configuration that replays a dataset (agent-config/replay-*.yaml)")
            throw ExitCode(78)
        }
        let judge = Judge(set: set, agent: agent.agentID, site: agent.site, updates: updates, json: json)
        for c in replays {
            judge.entityType.withLock { $0 = c.sensor.entityType }
            do { _ = try await CSVReplayInput(configuration: c).run(into: judge, resumingFrom: nil) } catch {
                Console.error("gemello: cannot replay \(c.file): \(error)")
                throw ExitCode(1)
            }
        }
        judge.finish()
    }

    static func describe(_ rule: AlertRule) -> String {
        let what: String
        switch rule.condition {
        case .threshold(let above, let raise, let clear): what = "\(above ? ">" : "<") \(raise) (clears \(above ? "<" : ">") \(clear))"
        case .mean(let w, let above, let raise, let clear): what = "mean over \(w / 1000) s \(above ? ">" : "<") \(raise) (clears at \(clear))"
        case .rate(let w, let raise, let clear): what = "change over \(w / 1000) s \(raise >= 0 ? "≥" : "≤") \(raise) (clears within \(clear))"
        case .silent(let ms): what = "no reading for \(ms / 1000) s"
        case .agentOffline: what = "an agent offline"
        case .agentsOffline(let n, let within): what = "\(n)+ agents offline within \(within / 1000) s"
        }
        var parts = [what]
        if rule.forMilliseconds > 0 { parts.append("for \(rule.forMilliseconds / 1000) s") }
        if rule.clearForMilliseconds > 0 { parts.append("clear-for \(rule.clearForMilliseconds / 1000) s") }
        parts.append(rule.severity.rawValue)
        return parts.joined(separator: ", ")
    }

    /// Feeds the replayed readings to the rules and prints the messages they cause.
    final class Judge: ReadingSink {
        let entityType = Mutex("DeviceMeasurement")
        private let state: Mutex<(engine: RuleEngine, book: AlertBook, counts: [String: (raised: Int, cleared: Int)], readings: Int)>
        let agent: String
        let site: Site
        let updates: Bool
        let json: Bool

        init(set: RuleSet, agent: String, site: Site, updates: Bool, json: Bool) {
            state = Mutex((RuleEngine(rules: set.rules), AlertBook(lateAfter: .max), [:], 0))
            self.agent = agent
            self.site = site
            self.updates = updates
            self.json = json
        }

        func accept(_ readings: [Reading], checkpoint: InputCheckpoint?) async throws {
            let type = entityType.withLock { $0 }
            let lines = state.withLock { s -> [String] in
                s.readings += readings.count
                var events: [RuleEvent] = []
                var bySeries: [SeriesInfo: [Reading]] = [:]
                for r in readings { bySeries[r.series, default: []].append(r) }
                for (info, list) in bySeries.sorted(by: { $0.key.name < $1.key.name }) {
                    let ref = SeriesRef(agent: agent, sensor: String(info.sensor), attribute: String(info.attribute), entityType: type, unit: info.unit)
                    let sorted = list.sorted { $0.timestamp < $1.timestamp }
                    let slot = s.engine.slot(ref, now: sorted.first?.timestamp ?? 0)
                    guard s.engine.watches(slot) else { continue }
                    s.engine.observe(slot, times: sorted.map(\.timestamp), values: sorted.map(\.value), now: sorted.last?.timestamp ?? 0, into: &events)
                }
                let location = AlertRule.Point(latitude: site.latitude, longitude: site.longitude)
                for e in events {
                    let at: Int64
                    switch e.edge {
                    case .raise(let t, _), .hold(let t, _, _), .clear(let t, _): at = t
                    }
                    s.book.apply(e, rule: s.engine.rules[e.rule], now: at, location: location, site: site.id)
                }
                var out: [String] = []
                for m in s.book.drain().messages {
                    if m.kind == .alert { s.counts[m.alert.rule, default: (0, 0)].raised += 1 }
                    if m.kind == .cancel { s.counts[m.alert.rule, default: (0, 0)].cleared += 1 }
                    if m.kind == .update && !updates { continue }
                    out.append(json ? m.json(rule: s.engine.rules.first { $0.name == m.alert.rule }) : Self.line(m))
                }
                return out
            }
            for line in lines { print(line) }
        }

        static func line(_ m: AlertMessage) -> String {
            let a = m.alert
            let at = m.kind == .cancel ? a.clearedAt ?? a.updatedAt : m.kind == .update ? a.updatedAt : a.raisedAt
            let verb = m.kind == .alert ? "RAISED " : m.kind == .cancel ? "CLEARED" : "UPDATED"
            let value = AlertText.number(m.kind == .cancel ? a.peak : a.value)
            let unit = a.unit.map { " " + UnitCode.symbol($0) } ?? ""
            var text = "\(Timestamp.iso8601(milliseconds: at).prefix(19))Z  \(verb)  \(a.rule)  \(a.subject.dropFirst("series:".count))  "
            text += (m.kind == .cancel ? "peak " : "") + value + unit + "  \(a.severity.rawValue)"
            if a.count > 1 { text += "  (raised \(a.count) times)" }
            return text
        }

        func finish() {
            let (counts, open, readings, rules) = state.withLock { ($0.counts, $0.book.open.values.map(\.rule), $0.readings, $0.engine.rules) }
            print("")
            print("\(readings) readings judged by \(rules.count) rules")
            for rule in rules {
                let c = counts[rule.name] ?? (0, 0)
                let stillOpen = open.filter { $0 == rule.name }.count
                print("  \(rule.name): raised \(c.raised), cleared \(c.cleared)\(stillOpen > 0 ? ", open at the end \(stillOpen)" : "")")
            }
        }
    }
}
