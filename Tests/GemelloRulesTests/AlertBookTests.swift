import GemelloCore
import GemelloRules
import GemelloTesting
import Foundation
import Testing

/// The lifecycle: one open alert per (rule, subject), updates damped, clears, folding of late episodes, CAP.
struct AlertBookTests {
    static let ref = SeriesRef(agent: "fiber-node-navigli", sensor: "sewer", attribute: "level", entityType: "WaterObserved", unit: "MTR")

    static var rule: AlertRule {
        var rule = AlertRule(name: "sewer-level", match: .init(attribute: Glob("level")), condition: .threshold(above: true, raise: 2, clear: 1.8))
        rule.severity = .moderate
        rule.escalation = .init(value: 2.5, severity: .severe)
        rule.category = .infra
        rule.updateEveryMilliseconds = 60_000
        rule.texts = [.init(language: "it", headline: "Livello fogna {value} {unit} a {agent}", description: "Soglia 2 m superata <&>"),
                      .init(language: "en", headline: "Sewer level {value} {unit} at {agent}")]
        return rule
    }

    func feed(_ book: inout AlertBook, _ readings: [(Int64, Double)], now: Int64, engine: inout RuleEngine) {
        let slot = engine.slot(Self.ref, now: 0)
        var events: [RuleEvent] = []
        engine.observe(slot, times: readings.map { $0.0 * 1000 }, values: readings.map(\.1), now: now, into: &events)
        for e in events { book.apply(e, rule: engine.rules[e.rule], now: now, location: .init(latitude: 45.45, longitude: 9.17)) }
    }

    @Test func raiseUpdateEscalateClear() {
        var engine = RuleEngine(rules: [Self.rule])
        var book = AlertBook(lateAfter: 300_000)
        feed(&book, [(0, 1), (10, 2.2)], now: 10_000, engine: &engine)
        var (alerts, messages) = book.drain()
        #expect(messages.map(\.kind) == [.alert])
        #expect(alerts.count == 1 && alerts[0].status == .open && alerts[0].late == false)
        let id = alerts[0].id
        // Values within update-every are not sent; escalation past 2.5 is, at once.
        feed(&book, [(20, 2.3), (30, 2.4)], now: 30_000, engine: &engine)
        #expect(book.drain().messages.isEmpty)
        feed(&book, [(40, 2.6)], now: 40_000, engine: &engine)
        (alerts, messages) = book.drain()
        #expect(messages.map(\.kind) == [.update])
        #expect(messages[0].alert.severity == .severe && messages[0].id == "\(id).1")
        #expect(messages[0].references.map(\.id) == ["\(id).0"])
        feed(&book, [(50, 1.5)], now: 50_000, engine: &engine)
        (alerts, messages) = book.drain()
        #expect(messages.map(\.kind) == [.cancel])
        #expect(messages[0].references.map(\.id) == ["\(id).0", "\(id).1"])
        #expect(alerts[0].status == .cleared && alerts[0].clearedAt == 50_000 && alerts[0].id == id)
        #expect(book.open.isEmpty)
    }

    @Test func aBacklogRaisedAndClearedInOnePassIsOneLateMessage() {
        var engine = RuleEngine(rules: [Self.rule])
        var book = AlertBook(lateAfter: 300_000)
        // Readings of an hour ago arrive now: the episode is over, one message says so.
        feed(&book, [(0, 1), (60, 2.2), (120, 2.7), (180, 1.0)], now: 3_600_000, engine: &engine)
        let (alerts, messages) = book.drain()
        #expect(messages.count == 1)
        #expect(messages[0].kind == .alert && messages[0].alert.status == .cleared && messages[0].alert.late)
        #expect(messages[0].alert.raisedAt == 60_000 && messages[0].alert.clearedAt == 180_000)
        #expect(alerts.count == 1)
    }

    @Test func aRestoredOpenAlertIsNotRaisedTwice() {
        var engine = RuleEngine(rules: [Self.rule])
        var book = AlertBook()
        var alert = Alert(id: "a1", rule: "sewer-level", subject: "series:" + Self.ref.name, entityID: Self.ref.entityID,
                          entityType: "WaterObserved", severity: .moderate, value: 2.2, raisedAt: 0)
        alert.revision = 1
        book.restore(alert)
        engine.restore(rule: 0, subject: .series(Self.ref), active: true)
        feed(&book, [(10, 2.2)], now: 10_000, engine: &engine)
        #expect(book.drain().messages.isEmpty)
        feed(&book, [(20, 1.0)], now: 20_000, engine: &engine)
        let messages = book.drain().messages
        #expect(messages.map(\.kind) == [.cancel] && messages[0].id == "a1.1")
    }

    @Test func capMessagesValidateAgainstTheOASISSchema() throws {
        var engine = RuleEngine(rules: [Self.rule])
        var book = AlertBook()
        var all: [AlertMessage] = []
        feed(&book, [(1_764_000_000, 2.2)], now: 1_764_000_000_000, engine: &engine)
        all += book.drain().messages
        _ = book.acknowledge(all[0].alert.id, by: "operatore 7", now: 1_764_000_100_000)
        all += book.drain().messages
        feed(&book, [(1_764_000_200, 1.0)], now: 1_764_000_200_000, engine: &engine)
        all += book.drain().messages
        #expect(all.map(\.kind) == [.alert, .update, .cancel])
        let writer = CAPWriter(sender: "aggregatore@gemello.example", senderName: "Gemello Digitale")
        var documents = all.map { writer.xml($0, rule: Self.rule) }
        var polygon = Self.rule
        polygon.area = .polygon(name: "Municipio 6", points: [.init(latitude: 45.44, longitude: 9.15), .init(latitude: 45.45, longitude: 9.18),
                                                              .init(latitude: 45.43, longitude: 9.19), .init(latitude: 45.44, longitude: 9.15)])
        documents.append(writer.xml(all[0], rule: polygon))
        #expect(try StandardValidators.cap(documents) == nil)
        #expect(documents[0].contains("<language>it-IT</language>") && documents[0].contains("<language>en-GB</language>"))
        #expect(documents[0].contains("<headline>Livello fogna 2.2 m a fiber-node-navigli</headline>"))
        #expect(documents[2].contains("<msgType>Cancel</msgType>") && documents[2].contains("<references>aggregatore@gemello.example,urn:gemello:alert:\(all[0].id),"))
        #expect(documents[0].contains("<circle>45.45,9.17 0.5</circle>") && documents[3].contains("<polygon>45.44,9.15 45.45,9.18"))
        #expect(!documents.contains { $0.contains("Z</") })
    }

    @Test func comuniFromTheSharedGeodataGiveAreasAndISTATGeocodes() throws {
        let path = Repository.root.deletingLastPathComponent().appendingPathComponent("shared/geodata/milano-comuni.geojson").path
        let areas = try AreaIndex.load(path: path)
        #expect(Set(areas.areas.map(\.code)).count == 133)
        // Milano's Duomo and the Darsena are in Milano (015146); Abbiategrasso's centre is not.
        #expect(areas.containing(.init(latitude: 45.4641, longitude: 9.1919))?.code == "015146")
        #expect(areas.containing(.init(latitude: 45.452, longitude: 9.176))?.name == "Milano")
        #expect(areas.containing(.init(latitude: 45.398, longitude: 8.918))?.name == "Abbiategrasso")
        let milano = try #require(areas.named("milano"))
        #expect(milano.ring.count == 285 && milano.simplified.count < 150 && milano.simplified.first == milano.simplified.last)
        // A rule naming a comune: its simplified outline, with the ISTAT code as CAP geocode.
        let set = try RuleSet.parse("rules:\n  - name: cut\n    agents-offline:\n      count: 3\n    area:\n      comune: \"015146\"\n",
                                    file: "rules.yaml", areas: areas)
        guard case .polygon(let name, let points, let code) = set.rules[0].area else { Issue.record("not a polygon"); return }
        #expect(name == "Milano" && code == "015146" && points.count == milano.simplified.count)
        #expect(throws: CoreError.self) { try RuleSet.parse("rules:\n  - name: cut\n    agents-offline:\n      count: 3\n    area:\n      comune: Milano\n", file: "r.yaml") }
        // An alert located in Milano carries its geocode; a rule's comune polygon is valid CAP.
        var engine = RuleEngine(rules: [Self.rule, set.rules[0]])
        var book = AlertBook()
        let slot = engine.slot(Self.ref, now: 0)
        var events: [RuleEvent] = []
        engine.observe(slot, times: [1_764_000_000_000], values: [2.4], now: 1_764_000_000_000, into: &events)
        let here = AlertRule.Point(latitude: 45.452, longitude: 9.176)
        for e in events { book.apply(e, rule: engine.rules[e.rule], now: 1_764_000_000_000, location: here, site: "navigli", area: areas.containing(here)) }
        let message = try #require(book.drain().messages.first)
        #expect(message.alert.geocode == "015146")
        let writer = CAPWriter()
        let site = writer.xml(message, rule: Self.rule)
        let comune = writer.xml(message, rule: set.rules[0])
        #expect(site.contains("<areaDesc>navigli (Milano)</areaDesc>") && site.contains("<value>015146</value>"))
        #expect(comune.contains("<areaDesc>Milano</areaDesc>") && comune.contains("<polygon>"))
        #expect(try StandardValidators.cap([site, comune]) == nil)
    }
}
