import GemelloCore
import GemelloNGSILD
import Testing

/// When a subscription fires (clause 5.8.6) and what its notification carries (clause 5.11).
@Suite struct SubscriptionMatcherTests {
    static let context = try! ContextResolver(loader: nil, now: { 0 }).core
    let parser = EntityParser(context: context, now: 0)

    func subscription(_ body: [String: JSON]) throws -> SubscriptionMatcher {
        var o: [String: JSON] = ["type": "Subscription", "notification": ["endpoint": ["uri": "http://127.0.0.1:1/n"]]]
        for (k, v) in body { o[k] = v }
        let s = try Subscription.parse(.object(o), context: Self.context, contextReference: nil, id: "urn:ngsi-ld:Subscription:t", now: 0)
        return try SubscriptionMatcher(s, context: Self.context)
    }

    func room(_ temperature: Double, humidity: Double = 40, observedAt: String = "2024-05-01T10:00:00Z") throws -> Entity {
        try parser.entity(["id": "urn:ngsi-ld:Room:1", "type": "Room",
                           "temperature": ["type": "Property", "value": .number(temperature), "observedAt": .string(observedAt)],
                           "humidity": .number(humidity)])
    }

    @Test func watchedAttributesQAndSelectors() throws {
        let m = try subscription(["entities": [["type": "Room", "idPattern": "^urn:ngsi-ld:Room:"]], "watchedAttributes": ["temperature"],
                                  "q": "temperature>20"])
        #expect(m.selectedTypes == [Self.context.expand("Room")])
        #expect(try m.triggers(before: nil, after: room(25)))                                   // new, matching
        #expect(try !m.triggers(before: nil, after: room(15)))                                  // new, q false
        #expect(try m.triggers(before: room(25), after: room(26)))                              // watched value changed
        #expect(try m.triggers(before: room(25), after: room(25, observedAt: "2024-05-01T11:00:00Z")))  // metadata changed
        #expect(try !m.triggers(before: room(25), after: room(25, humidity: 50)))               // unwatched change
        #expect(try !m.triggers(before: room(25), after: room(25)))                             // nothing changed
        let other = try parser.entity(["id": "urn:ngsi-ld:Hall:1", "type": "Hall", "temperature": 30])
        #expect(!m.triggers(before: nil, after: other))
        let anyChange = try subscription(["entities": [["type": "Room"]]])
        #expect(try anyChange.triggers(before: room(25), after: room(25, humidity: 50)))
        let byAttribute = try subscription(["watchedAttributes": ["humidity"]])
        #expect(byAttribute.selectedTypes == nil)
        #expect(try byAttribute.triggers(before: room(25), after: room(25, humidity: 41)))
    }

    @Test func notificationsCarryTheAskedFormAndChanges() throws {
        let m = try subscription(["entities": [["type": "Room"]],
                                  "notification": ["attributes": ["temperature"], "showChanges": true,
                                                   "endpoint": ["uri": "http://127.0.0.1:1/n"]]])
        let rendered = try m.render(before: room(25), after: room(26))
        #expect(rendered == ["id": "urn:ngsi-ld:Room:1", "type": "Room",
                             "temperature": ["type": "Property", "value": 26, "previousValue": 25, "observedAt": "2024-05-01T10:00:00.000Z"]])
        let simple = try subscription(["entities": [["type": "Room"]],
                                       "notification": ["format": "keyValues", "endpoint": ["uri": "http://127.0.0.1:1/n"]]])
        #expect(try simple.render(before: nil, after: room(26)) == ["id": "urn:ngsi-ld:Room:1", "type": "Room", "temperature": 26, "humidity": 40])
    }

    @Test func subscriptionsRoundTripThroughTheirStoredForm() throws {
        var s = try Subscription.parse(["type": "Subscription", "entities": [["type": "Room;Hall"]], "q": "temperature>20",
                                        "throttling": 5, "expiresAt": "2030-01-01T00:00:00Z", "isActive": false,
                                        "notification": ["format": "concise", "endpoint": ["uri": "mqtt://127.0.0.1:1883/t", "accept": "application/ld+json",
                                                                                           "receiverInfo": [["key": "X-A", "value": "1"]]]]],
                                       context: Self.context, contextReference: "https://example.org/ctx.jsonld", id: "urn:ngsi-ld:Subscription:r", now: 5)
        s.timesSent = 7
        s.lastSuccess = 1_000
        let back = try #require(Subscription(stored: s.stored))
        #expect(back == s)
        #expect(back.rendered(Self.context, now: 0)["entities"] == [["type": "Room;Hall"]])
        #expect(back.status(now: 0) == .paused)
    }
}
