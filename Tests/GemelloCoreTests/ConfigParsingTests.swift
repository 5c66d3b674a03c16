import GemelloCore
import Testing

@Suite struct YAMLParserTests {
    @Test func parsesNestedMappingsSequencesAndScalars() throws {
        let text = """
            # comment
            agent-id: tower-1   # trailing comment
            site:
              id: "duomo #1"
              latitude: 45.46
            list: [a, 'b c', "d"]
            inputs:
              - type: simulated
                interval: 5s
              - type: csv-replay
                columns:
                  PT08.S1(CO):
                    unit: C62
            empty:
            """
        let root = try YAMLParser.parse(text, file: "t.yaml")
        guard case .mapping(let entries) = root.value else { Issue.record("not a mapping"); return }
        #expect(entries.map(\.key) == ["agent-id", "site", "list", "inputs", "empty"])
        #expect(entries[0].node.value == .scalar("tower-1"))
        guard case .mapping(let site) = entries[1].node.value else { Issue.record("site"); return }
        #expect(site[0].node.value == .scalar("duomo #1"))
        #expect(entries[2].node.value == .sequence([YAMLNode(.scalar("a"), line: 6), YAMLNode(.scalar("b c"), line: 6), YAMLNode(.scalar("d"), line: 6)]))
        guard case .sequence(let inputs) = entries[3].node.value else { Issue.record("inputs"); return }
        #expect(inputs.count == 2)
        guard case .mapping(let second) = inputs[1].value, case .mapping(let columns) = second[1].node.value else { Issue.record("columns"); return }
        #expect(columns[0].key == "PT08.S1(CO)")
        #expect(columns[0].line == 12)
        #expect(entries[4].node.value == .empty)
    }

    @Test func reportsLineOfBadIndentationAndTabs() {
        let error = #expect(throws: CoreError.self) { try YAMLParser.parse("a: 1\n  b: 2\n", file: "x.yaml") }
        #expect(error?.line == 2)
        #expect(error?.file == "x.yaml")
        let tab = #expect(throws: CoreError.self) { try YAMLParser.parse("a:\n\tb: 2\n", file: "x.yaml") }
        #expect(tab?.description.contains("tab") == true)
        let anchor = #expect(throws: CoreError.self) { try YAMLParser.parse("a: &x 1\n", file: "x.yaml") }
        #expect(anchor?.description.contains("not supported") == true)
    }

    @Test func rejectsDuplicateKeys() {
        let error = #expect(throws: CoreError.self) { try YAMLParser.parse("a: 1\na: 2\n", file: "x.yaml") }
        #expect(error?.key == "a")
    }
}

@Suite struct ConfigSectionTests {
    @Test func suggestsTheClosestKnownKeyForATypo() throws {
        let root = try ConfigSection.parse("flush-intervl: 2s\n", file: "agent.yaml")
        _ = try root.duration("flush-interval", default: .seconds(1), range: .zero...(.seconds(60)))
        let error = #expect(throws: CoreError.self) { try root.rejectUnknownKeys() }
        #expect(error?.key == "flush-intervl")
        #expect(error?.description.contains("did you mean 'flush-interval'") == true)
        #expect(error?.description.hasPrefix("agent.yaml:1:") == true)
    }

    @Test func namesTheKeyValueAndFixForBadValues() throws {
        let root = try ConfigSection.parse("buffer:\n  flush-interval: 3x\n  size: -4\n", file: "a.yaml")
        let buffer = try #require(try root.section("buffer"))
        let duration = #expect(throws: CoreError.self) { try buffer.duration("flush-interval", default: .seconds(1), range: .zero...(.seconds(9))) }
        #expect(duration?.key == "buffer.flush-interval")
        #expect(duration?.value == "3x")
        #expect(duration?.line == 2)
        #expect(duration?.fix != nil)
        let range = #expect(throws: CoreError.self) { try buffer.int("size", range: 1...10) }
        #expect(range?.description.contains("out of range") == true)
    }

    @Test func parsesDurations() throws {
        let root = try ConfigSection.parse("a: 500ms\nb: 2m\nc: 1.5\nd: 1h\n", file: "d.yaml")
        let range = Duration.zero...(.seconds(86_400))
        #expect(try root.duration("a", default: .zero, range: range) == .milliseconds(500))
        #expect(try root.duration("b", default: .zero, range: range) == .seconds(120))
        #expect(try root.duration("c", default: .zero, range: range) == .milliseconds(1500))
        #expect(try root.duration("d", default: .zero, range: range) == .seconds(3600))
    }
}

@Suite struct TimeTests {
    @Test func civilDatesRoundTrip() {
        for days in stride(from: Int64(-800_000), through: 800_000, by: 997) {
            let (y, m, d) = CivilDate.fromDays(days)
            #expect(CivilDate.days(year: y, month: m, day: d) == days)
        }
        #expect(CivilDate.days(year: 1970, month: 1, day: 1) == 0)
        #expect(CivilDate.days(year: 2000, month: 3, day: 1) == 11_017)
        #expect(!CivilDate.isValid(year: 2021, month: 2, day: 29))
        #expect(CivilDate.isValid(year: 2020, month: 2, day: 29))
    }

    @Test func rendersISO8601() {
        #expect(Timestamp.iso8601(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.iso8601(milliseconds: 1_483_225_200_000) == "2016-12-31T23:00:00.000Z")
        #expect(Timestamp.iso8601(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
    }

    @Test func topicsParseAndValidateAgentIDs() {
        #expect(Topics.parse(Topics.data(agent: "a-1")).map { [$0.agent, $0.kind] } == ["a-1", "data"])
        #expect(Topics.parse("other/v1/agents/a/data") == nil)
        #expect(Topics.isValidAgentID("tower-duomo-01"))
        #expect(!Topics.isValidAgentID("a/b") && !Topics.isValidAgentID("+") && !Topics.isValidAgentID("") && !Topics.isValidAgentID("Upper"))
    }
}
