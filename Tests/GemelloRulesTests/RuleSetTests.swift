import GemelloCore
import GemelloRules
import Testing

struct RuleSetTests {
    @Test func parsesEveryCondition() throws {
        let set = try RuleSet.parse("""
            late-after: 10m
            rules:
              - name: pm25-eu-daily-limit
                match:
                  entity-type: WeatherObserved
                  attribute: pm25
                mean:
                  window: 24h
                  above: 25
                  clear-below: 20
                clear-for: 6h
                severity: moderate
                category: health
                headline:
                  it: "PM2.5 media 24 h {value}"
                  en: "PM2.5 24 h mean {value}"
                description:
                  it: "Limite UE"
              - name: battery-low
                match:
                  series: "replay-solar-*/*/battery*"
                threshold:
                  below: 3.5
                  clear-above: 3.7
                for: 10m
                area:
                  name: Milano
                  circle: "45.4642,9.19 12"
              - name: surge
                match:
                  attribute: level
                rate:
                  window: 10m
                  rise: 0.5
              - name: quiet
                match:
                  attribute: "*"
                silent: 15m
              - name: offline
                agent-offline: true
                for: 60s
              - name: cut
                agents-offline:
                  count: 3
                  within: 1m
            """, file: "rules.yaml")
        #expect(set.rules.count == 6 && set.lateAfterMilliseconds == 600_000)
        #expect(set.rules[0].condition == .mean(window: 86_400_000, above: true, raise: 25, clear: 20))
        #expect(set.rules[0].texts.map(\.language) == ["it", "en"] && set.rules[0].texts[0].description == "Limite UE")
        #expect(set.rules[1].condition == .threshold(above: false, raise: 3.5, clear: 3.7) && set.rules[1].forMilliseconds == 600_000)
        #expect(set.rules[2].condition == .rate(window: 600_000, raise: 0.5, clear: 0.25))
        #expect(set.rules[3].condition == .silent(900_000) && set.rules[5].condition == .agentsOffline(count: 3, within: 60_000))
        #expect(set.rules[1].match.matches(agent: "replay-solar-node", sensor: "box", attribute: "batteryVoltage", entityType: nil))
    }

    @Test(arguments: [
        ("rules:\n  - name: a\n    match:\n      attribute: x\n    threshold:\n      above: 2\n      clear-below: 3\n", 7, "rules[0].threshold.clear-below"),
        ("rules:\n  - name: a\n    match:\n      attribute: x\n    threshold:\n      above: 2\n    silent: 5m\n", 7, "rules[0].silent"),
        ("rules:\n  - name: Bad Name\n    silent: 5m\n", 2, "rules[0].name"),
        ("rules:\n  - name: a\n    silent: 5m\n", 2, "rules[0].match"),
        ("rules:\n  - name: a\n    agent-offline: true\n    severty: minor\n", 4, "rules[0].severty"),
    ])
    func refusesWithFileLineAndKey(text: String, line: Int, key: String) {
        do {
            _ = try RuleSet.parse(text, file: "rules.yaml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.file == "rules.yaml" && error.key == key, "\(error)")
            #expect(error.line == line, "\(error)")
            #expect(error.fix != nil)
        }
    }
}
