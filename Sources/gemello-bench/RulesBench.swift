import ArgumentParser
import Foundation
import GemelloCore
import GemelloRules

/// `gemello-bench rules`: rule evaluation alone (the engine and the alert lifecycle, no I/O) over
/// the four shared datasets, as the aggregator runs it per ingest: each 1,000-reading batch split
/// per series in observation order. The rules are made from the data: per series a threshold at
/// its 95th percentile, a 1 h and a 24 h mean over its 90th, and a 1 h rise of its 90th-percentile
/// hourly change, until there are `--rules` of them. The baseline, in the same run, walks the same
/// batches with no rule (the cost of the split and the slot lookup).
struct RulesBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules", abstract: "Rule evaluation throughput on one core (median of N runs), with a no-rule baseline.")

    @Option(help: "Repetitions; the median is reported.")
    var runs = 5
    @Option(help: "How many rules (made from the datasets' own percentiles).")
    var rules = 100

    struct Prepared {
        var ref: SeriesRef
        var times: [Int64]
        var values: [Double]
    }

    func run() async throws {
        let datasets = try await SharedDataset.loadAll()
        var batches: [[Prepared]] = []
        var perSeries: [SeriesRef: [Double]] = [:]
        var total = 0
        for dataset in datasets {
            for batch in dataset.batches(target: 1000) {
                var groups: [Int: Prepared] = [:]
                for i in 0..<batch.count {
                    let s = Int(batch.seriesIndex[i])
                    let info = batch.series[s]
                    if groups[s] == nil {
                        groups[s] = Prepared(ref: SeriesRef(agent: dataset.agentID, sensor: String(info.sensor), attribute: String(info.attribute),
                                                            entityType: dataset.sensor.entityType, unit: info.unit), times: [], values: [])
                    }
                    groups[s]!.times.append(batch.millisecondTimestamp(i))
                    groups[s]!.values.append(batch.values[i])
                    perSeries[groups[s]!.ref, default: []].append(batch.values[i])
                }
                batches.append(groups.keys.sorted().map { groups[$0]! })
                total += batch.count
            }
        }
        let set = Self.makeRules(count: rules, series: perSeries)
        var baseline: [Double] = [], judged: [Double] = [], alone: [Double] = []
        var events = 0
        var raised = 0, evaluations = 0
        for _ in 0..<runs {
            baseline.append(Self.time(batches, RuleSet(rules: [])).seconds)
            let engineOnly = Self.time(batches, set, lifecycle: false)
            alone.append(engineOnly.seconds)
            events = engineOnly.raised
            let run = Self.time(batches, set)
            judged.append(run.seconds)
            (raised, evaluations) = (run.raised, run.evaluations)
        }
        let rate = Double(total) / median(judged), base = Double(total) / median(baseline)
        print(String(format: "rules: %d rules, %d readings, %.1f rule evaluations per reading, alerts raised %d", set.rules.count, total,
                     Double(evaluations) / Double(total), raised))
        print(String(format: "rules: conditions alone %.2f M readings/s (%d rule events); baseline without rules %.2f M readings/s",
                     Double(total) / median(alone) / 1e6, events, base / 1e6))
        print(String(format: "rules: evaluation %.2f M readings/s with %d rules (conditions and the alert lifecycle; median of %d, one core)",
                     rate / 1e6, set.rules.count, runs))
    }

    static func time(_ batches: [[Prepared]], _ set: RuleSet, lifecycle: Bool = true) -> (seconds: Double, raised: Int, evaluations: Int) {
        var engine = RuleEngine(rules: set.rules)
        var book = AlertBook(lateAfter: .max)
        var raised = 0, evaluations = 0
        var events: [RuleEvent] = []
        let start = ContinuousClock.now
        for batch in batches {
            events.removeAll(keepingCapacity: true)
            for p in batch {
                let slot = engine.slot(p.ref, now: 0)
                guard engine.watches(slot) else { continue }
                engine.observe(slot, times: p.times, values: p.values, now: p.times.last ?? 0, into: &events)
            }
            guard lifecycle else { raised += events.count; continue }
            for e in events { book.apply(e, rule: engine.rules[e.rule], now: 0, location: nil) }
            raised += book.drain().messages.count { $0.kind == .alert }
        }
        let elapsed = ContinuousClock.now - start
        for batch in batches {
            for p in batch {
                let matching = set.rules.count { $0.match.matches(agent: p.ref.agent, sensor: Substring(p.ref.sensor),
                                                                  attribute: Substring(p.ref.attribute), entityType: p.ref.entityType) }
                evaluations += matching * p.times.count
            }
        }
        return (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, raised, evaluations)
    }

    /// Rules from the data's percentiles, cycling through the series and four condition kinds.
    static func makeRules(count: Int, series: [SeriesRef: [Double]]) -> RuleSet {
        let refs = series.keys.sorted { $0.name < $1.name }
        var rules: [AlertRule] = []
        var k = 0
        while rules.count < count && !refs.isEmpty {
            let ref = refs[k % refs.count]
            let kind = (k / refs.count) % 4
            let values = series[ref]!.sorted()
            func q(_ p: Double) -> Double { values[min(values.count - 1, Int(Double(values.count) * p))] }
            let match = AlertRule.Match(series: Glob(ref.name))
            let condition: AlertRule.Condition
            switch kind {
            case 0: condition = .threshold(above: true, raise: q(0.95), clear: q(0.9))
            case 1: condition = .mean(window: 3_600_000, above: true, raise: q(0.9), clear: q(0.8))
            case 2: condition = .mean(window: 86_400_000, above: true, raise: q(0.9), clear: q(0.8))
            default:
                let spread = max(q(0.9) - q(0.1), 1e-9)
                condition = .rate(window: 3_600_000, raise: spread / 2, clear: spread / 4)
            }
            rules.append(AlertRule(name: "bench-\(rules.count)", match: match, condition: condition))
            k += 1
        }
        return RuleSet(rules: rules)
    }
}
