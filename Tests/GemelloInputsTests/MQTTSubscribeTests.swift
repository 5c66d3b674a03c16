import Foundation
import GemelloCore
@testable import GemelloInputs
import GemelloTesting
import Synchronization
import Testing

/// The MQTT 3.1.1 subscriber session without I/O: packets byte by byte, against the standard.
@Suite struct MQTTSubscriberSessionTests {
    @Test func connectAndSubscribeBytesAreTheStandards() {
        // §3.1: fixed header 0x10, "MQTT", level 4, flags (persistent session: 0; user+password: 0xC0), keepalive 60.
        #expect(MQTTSubscriberSession.connect(clientID: "ab", cleanSession: false, keepAliveSeconds: 60)
                == [0x10, 14, 0, 4, 77, 81, 84, 84, 4, 0x00, 0, 60, 0, 2, 97, 98])
        let withCredentials = MQTTSubscriberSession.connect(clientID: "a", cleanSession: true, keepAliveSeconds: 5, username: "u", password: "p")
        #expect(withCredentials[9] == 0xC2 && withCredentials.suffix(6) == [0, 1, 117, 0, 1, 112])
        var session = MQTTSubscriberSession()
        let subscribe = session.subscribe(["site/+/level"])
        #expect(subscribe.bytes == [0x82, 17, 0, 1, 0, 12] + Array("site/+/level".utf8) + [1])
        #expect(MQTTSubscriberSession.puback(0x1234) == [0x40, 2, 0x12, 0x34])
        // A 200-byte body needs two bytes of remaining length (§2.2.3): 200 = 0xC8 0x01.
        #expect(Array(MQTTSubscriberSession.packet(0x30, [UInt8](repeating: 0, count: 200)).prefix(3)) == [0x30, 0xC8, 0x01])
    }

    @Test func packetsArriveInAnyPieces() throws {
        var session = MQTTSubscriberSession()
        let stream: [UInt8] = [0x20, 2, 1, 0]                                  // CONNACK, session present
            + [0x90, 3, 0, 1, 1]                                                // SUBACK, QoS 1 granted
            + [0x32, 9, 0, 3] + Array("a/b".utf8) + [0x12, 0x34] + Array("42".utf8)  // PUBLISH QoS 1, id 0x1234
            + [0x31, 5, 0, 1] + Array("t".utf8) + Array("on".utf8)              // PUBLISH QoS 0, retained
            + [0xD0, 0]                                                         // PINGRESP
        var events: [MQTTSubscriberSession.Event] = []
        for byte in stream { events += try session.received([byte]) }
        #expect(events == [.connected(sessionPresent: true), .subscribed(packetID: 1, grantedQoS: [1]),
                           .message(topic: "a/b", payload: Array("42".utf8), packetID: 0x1234, retained: false),
                           .message(topic: "t", payload: Array("on".utf8), packetID: nil, retained: true), .pong])
        var refused = MQTTSubscriberSession()
        #expect(try refused.received([0x20, 2, 0, 5]) == [.refused(code: 5)])
        var qos2 = MQTTSubscriberSession()
        #expect(throws: MQTTSubscriberSession.ProtocolError.self) { _ = try qos2.received([0x34, 5, 0, 1, 116, 0, 1]) }
    }

    @Test func topicFiltersMatchAsTheStandardSays() {
        // §4.7 examples.
        #expect(MQTTSubscriberSession.matches("sport/tennis/player1/#", "sport/tennis/player1"))
        #expect(MQTTSubscriberSession.matches("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"))
        #expect(MQTTSubscriberSession.matches("sport/#", "sport"))
        #expect(MQTTSubscriberSession.matches("sport/tennis/+", "sport/tennis/player1"))
        #expect(!MQTTSubscriberSession.matches("sport/tennis/+", "sport/tennis/player1/ranking"))
        #expect(MQTTSubscriberSession.matches("+/+", "/finance"))
        #expect(!MQTTSubscriberSession.matches("#", "$SYS/uptime"))
        #expect(!MQTTSubscriberSession.matches("+/monitor/Clients", "$SYS/monitor/Clients"))
    }
}

/// Payloads of real devices (The Things Stack v3 uplink; RFC 8428's own SenML example).
@Suite struct MQTTPayloadTests {
    static func subscription(_ yaml: String) throws -> MQTTSubscription {
        let c = try InputFixtures.input("- type: mqtt-subscribe\n  sensor: lora\n  subscriptions:\n" + yaml)
        return try #require((c.options as? MQTTSubscribeInput.Configuration)?.subscriptions.first)
    }

    static func payload(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: InputFixtures.golden("mqtt/\(name)"))) }

    @Test func theThingsStackUplinkWithFieldsAndItsTime() throws {
        let s = try Self.subscription("""
                - topic: v3/+/devices/+/up
                  time-path: received_at
                  fields:
                    uplink_message.decoded_payload.temperature:
                      attribute: "{3}_temperature"
                      unit: CEL
                    uplink_message.decoded_payload.battery:
                      attribute: "{3}_battery"
                      unit: VLT
                    uplink_message.rx_metadata.0.rssi:
                      attribute: "{3}_rssi"
                      unit: 2N
            """)
        var decoder = MQTTPayloadDecoder(mapper: ReadingMapper(sensorID: "lora"))
        let outcome = try decoder.readings(s, topic: "v3/milano-sewer@ttn/devices/sewer-07/up", payload: try Self.payload("ttn-uplink.json"), arrival: 1)
        #expect(outcome.readings.map { "\($0.series.name) \($0.value) \($0.series.unit)" }
                == ["lora/sewer_07_temperature 14.5 CEL", "lora/sewer_07_battery 3.61 VLT", "lora/sewer_07_rssi -97.0 2N"])
        #expect(outcome.readings.allSatisfy { $0.timestamp == 1_795_946_400_123 })
        // Without fields: every number, nested keys joined.
        var all = MQTTPayloadDecoder(mapper: ReadingMapper(sensorID: "lora"))
        let flat = try all.readings(try Self.subscription("    - topic: x"), topic: "x", payload: try Self.payload("ttn-uplink.json"), arrival: 5)
        #expect(flat.readings.contains { $0.series.name == "lora/uplink_message_decoded_payload_temperature" && $0.value == 14.5 })
        #expect(flat.readings.contains { $0.series.name == "lora/uplink_message_settings_data_rate_lora_spreading_factor" && $0.value == 9 })
    }

    @Test func senmlResolvesBaseFieldsTimesAndUnits() throws {
        var decoder = MQTTPayloadDecoder(mapper: ReadingMapper(sensorID: "node"))
        let outcome = try decoder.readings(try Self.subscription("    - topic: senml/#\n      format: senml"), topic: "senml/a",
                                           payload: try Self.payload("senml-rfc8428.json"), arrival: 9)
        let base = "urn_dev_ow_10e2073a0108006_"
        #expect(outcome.readings.map { "\($0.series.attribute) \($0.value) \($0.series.unit) \($0.timestamp)" } == [
            "\(base)voltage 120.1 VLT 1276020076001", "\(base)current 1.2 AMP 1276020071001",
            "\(base)current 1.3 AMP 1276020072001", "\(base)open 1.0 AMP 1276020076001"])  // bu applies where u is absent
        #expect(outcome.skipped == 1, "the string value")
    }

    @Test func plainValuesAndTemplates() throws {
        var decoder = MQTTPayloadDecoder(mapper: ReadingMapper(sensorID: "s"))
        let s = try Self.subscription("    - topic: sewer/+/level\n      format: value\n      attribute: \"level_{1}\"\n      unit: MTR")
        let r = try decoder.readings(s, topic: "sewer/north/level", payload: Array(" 1.25\n".utf8), arrival: 3).readings
        #expect(r.map { "\($0.series.name) \($0.value) \($0.series.unit) \($0.timestamp)" } == ["s/level_north 1.25 MTR 3"])
        #expect { _ = try decoder.readings(s, topic: "sewer/north/level", payload: Array("high".utf8), arrival: 3) } throws: { "\($0)".contains("not a number") }
    }
}

/// A real mosquitto as the site's broker: messages published while the input was down arrive when
/// it comes back (persistent session), and messages the buffer could not store are not
/// acknowledged, so they come again after a restart.
@Suite(.serialized) struct MQTTSubscribeTests {
    static func publish(_ port: Int, _ topic: String, _ payloads: [String]) async throws {
        for payload in payloads {
            let result = try await runProgram("/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", String(port), "-q", "1", "-t", topic, "-m", payload])
            #expect(result.status == 0, "\(result.output)")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func nothingIsLostAcrossRestartsAndAFullBuffer() async throws {
        let broker = try BrokerHarness()
        defer { broker.stop() }
        let options = try #require(try InputFixtures.input("""
            - type: mqtt-subscribe
              sensor: site
              broker: mqtt://127.0.0.1:\(broker.port)
              client-id: gemello-test-site
              keepalive: 5s
              subscriptions:
                - topic: sewer/+/level
                  format: value
                  attribute: "level_{1}"
                  unit: MTR
            """).options as? MQTTSubscribeInput.Configuration)
        let input = MQTTSubscribeInput(configuration: options, clock: SystemWallClock())

        func run(_ sink: RecordingSink, atMost limit: Duration = .seconds(15), until condition: @escaping @Sendable () -> Bool) async throws {
            let task = Task { try await input.run(into: sink) }
            let deadline = ContinuousClock.now + limit
            while !condition() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            try await Task.sleep(for: .milliseconds(300))  // acknowledgements out
            task.cancel()
            _ = try await task.value
        }

        // First run: the session is made; one message.
        let first = RecordingSink()
        let firstTask = Task { try await input.run(into: first) }
        try await Task.sleep(for: .milliseconds(700))
        try await Self.publish(broker.port, "sewer/north/level", ["1.0"])
        for _ in 0..<100 where first.all.count < 1 { try await Task.sleep(for: .milliseconds(50)) }
        try await Task.sleep(for: .milliseconds(300))
        firstTask.cancel()
        _ = try await firstTask.value
        #expect(first.all.map(\.value) == [1.0])

        // Published while the agent is down: kept by the broker for the persistent session.
        try await Self.publish(broker.port, "sewer/north/level", ["2.0", "3.0"])
        // A run whose buffer is full: the commit never completes, nothing is acknowledged.
        let full = RecordingSink()
        full.paused.store(true, ordering: .relaxed)
        try await run(full, atMost: .seconds(2)) { false }  // long enough to connect and be sent both
        #expect(full.all.isEmpty)
        // The next run gets them all again, in order, and acknowledges them.
        let second = RecordingSink()
        try await run(second) { second.all.count >= 2 }
        #expect(second.all.map(\.value) == [2.0, 3.0])
        #expect(second.all.allSatisfy { $0.series.name == "site/level_north" && $0.series.unit == "MTR" })
        // Acknowledged: a further run gets nothing old.
        let third = RecordingSink()
        try await run(third, atMost: .seconds(2)) { false }
        #expect(third.all.isEmpty)
    }
}
