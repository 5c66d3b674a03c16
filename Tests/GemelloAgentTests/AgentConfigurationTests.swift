import Foundation
@testable import GemelloAgent
import GemelloBrokerAccess
import GemelloCore
import GemelloTesting
import Testing

@Suite struct AgentConfigurationTests {
    static let valid = """
        agent-id: tower-1
        site:
          id: duomo
          kind: 5g-tower
          latitude: 45.46
          longitude: 9.19
        inputs:
          - type: simulated
            sensor: air
            profile: air-quality
        """

    /// Valid, and named after the agent it runs (`tower-duomo-01.yaml` runs agent `tower-duomo-01`).
    @Test func everyShippedExampleIsValidAndNamedAfterItsAgent() throws {
        let folder = Repository.root.appendingPathComponent("agent-config")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 6)
        for file in files {
            let configuration = try AgentConfiguration.load(path: folder.appendingPathComponent(file).path)
            #expect(!configuration.inputs.isEmpty)
            #expect(configuration.agentID + ".yaml" == file)
        }
    }

    @Test func appliesDefaults() throws {
        let c = try AgentConfiguration.decode(Self.valid, file: "a.yaml")
        #expect(c.broker.url == "mqtt://127.0.0.1:1883")
        #expect(c.broker.insecureWarning == nil)
        #expect(c.batchKeyFile == nil)
        #expect(c.buffer.flushInterval == .seconds(1))
        #expect(c.publisher.batchSize == 1000)
        #expect(c.site.kind == .fiveGTower)
        #expect(c.inputs[0].sensor.entityType == "AirQualityObserved")
    }

    func error(_ text: String) -> CoreError? {
        #expect(throws: CoreError.self) { try AgentConfiguration.decode(text, file: "/etc/gemello/agent.yaml") }
    }

    @Test func bufferLimitsHaveDefaultsAndParseSizesAgesAndPolicies() throws {
        let defaults = try AgentConfiguration.decode(Self.valid, file: "a.yaml").buffer.limits
        #expect(defaults == .init(maxBytes: 1 << 30, maxAge: .seconds(30 * 86_400), whenFull: .dropOldest))
        let text = Self.valid + "\nbuffer:\n  max-bytes: 64MiB\n  max-age: 7d\n  when-full: drop-newest\n"
        let limits = try AgentConfiguration.decode(text, file: "a.yaml").buffer.limits
        #expect(limits == .init(maxBytes: 64 << 20, maxAge: .seconds(7 * 86_400), whenFull: .dropNewest))
        let badSize = error(Self.valid + "\nbuffer:\n  max-bytes: 64 potatoes\n")
        #expect(badSize?.key == "buffer.max-bytes" && badSize?.fix?.contains("512MiB") == true)
        let tooSmall = error(Self.valid + "\nbuffer:\n  max-bytes: 4KB\n")
        #expect(tooSmall?.message.contains("out of range") == true)
        let badPolicy = error(Self.valid + "\nbuffer:\n  when-full: panic\n")
        #expect(badPolicy?.fix?.contains("drop-oldest") == true)
    }

    @Test func liveFirstAndTheBacklogRateHaveDefaultsAndParse() throws {
        let defaults = try AgentConfiguration.decode(Self.valid, file: "a.yaml").publisher
        #expect(defaults.liveWindow == .seconds(30) && defaults.backlogRate == Int64(256 << 10))
        let set = try AgentConfiguration.decode(Self.valid + "\npublisher:\n  live-window: 0s\n  backlog-rate: 2MB/s\n", file: "a.yaml").publisher
        #expect(set.liveWindow == nil && set.backlogRate == Int64(2_000_000))
        let unlimited = try AgentConfiguration.decode(Self.valid + "\npublisher:\n  backlog-rate: unlimited\n", file: "a.yaml").publisher
        #expect(unlimited.backlogRate == nil)
        let bad = error(Self.valid + "\npublisher:\n  backlog-rate: fast\n")
        #expect(bad?.key == "publisher.backlog-rate" && bad?.fix?.contains("256KiB/s") == true)
        let tiny = error(Self.valid + "\npublisher:\n  backlog-rate: 10B/s\n")
        #expect(tiny?.message.contains("out of range") == true)
    }

    @Test func unknownKeyNamesFileKeyAndSuggestion() {
        let e = error(Self.valid + "\nflush-interval: 2s\n")
        #expect(e?.file == "/etc/gemello/agent.yaml")
        #expect(e?.key == "flush-interval")
        #expect(e?.description.contains("unknown key") == true)
        let nested = error(Self.valid.replacingOccurrences(of: "  latitude: 45.46", with: "  latitud: 45.46"))
        #expect(nested?.key == "site.latitud" || nested?.key == "site.latitude")
    }

    @Test func badValuesNameTheKeyValueAndFix() {
        let kind = error(Self.valid.replacingOccurrences(of: "5g-tower", with: "6g-tower"))
        #expect(kind?.key == "site.kind")
        #expect(kind?.value == "6g-tower")
        #expect(kind?.fix?.contains("5g-tower, fiber-node") == true)
        let latitude = error(Self.valid.replacingOccurrences(of: "45.46", with: "145.46"))
        #expect(latitude?.key == "site.latitude")
        let broker = error(Self.valid + "\nbroker: http://x\n")
        #expect(broker?.key == "broker")
        let id = error(Self.valid.replacingOccurrences(of: "tower-1", with: "Tower/1"))
        #expect(id?.key == "agent-id")
        let type = error(Self.valid.replacingOccurrences(of: "type: simulated", with: "type: simulate"))
        #expect(type?.key == "inputs[0].type")
        let profile = error(Self.valid.replacingOccurrences(of: "air-quality", with: "air"))
        #expect(profile?.key == "inputs[0].profile")
    }

    /// Plain MQTT only to this machine, TLS files only with mqtts://, secrets only from files.
    @Test func brokerSecurityRules() throws {
        let remote = error(Self.valid + "\nbroker: mqtt://broker.smartland.example:1883\n")
        #expect(remote?.key == "broker")
        #expect(remote?.message.contains("in clear") == true)
        #expect(remote?.fix?.contains("mqtts://") == true)
        #expect(remote?.fix?.contains("broker-insecure: true") == true)

        let accepted = try AgentConfiguration.decode(Self.valid + "\nbroker: mqtt://10.1.2.3\nbroker-insecure: true\n", file: "a.yaml")
        #expect(accepted.broker.insecureWarning?.contains("INSECURE") == true)
        #expect(try accepted.broker.address().port == 1883)

        let tlsOnPlain = error(Self.valid + "\nbroker: mqtt://127.0.0.1:1883\nbroker-tls:\n  ca-file: ca.crt\n")
        #expect(tlsOnPlain?.message.contains("plain mqtt://") == true)
        #expect(tlsOnPlain?.fix?.contains("mqtts://127.0.0.1:8883") == true)

        let halfIdentity = error(Self.valid + "\nbroker: mqtts://b.example\nbroker-tls:\n  ca-file: ca.crt\n  cert-file: a.crt\n")
        #expect(halfIdentity?.key == "broker-tls.key-file")

        let noUser = error(Self.valid + "\nbroker: mqtts://b.example\nbroker-password-file: pw\n")
        #expect(noUser?.key == "broker-password-file")

        let tls = try AgentConfiguration.decode(Self.valid + """

            broker: mqtts://b.example
            broker-tls:
              ca-file: pki/ca.crt
              cert-file: pki/tower-1.crt
              key-file: pki/tower-1.key
            batch-key-file: pki/tower-1.batchkey
            """, file: "/etc/gemello/agent.yaml")
        let address = try tls.broker.address()
        #expect(address.tls && address.port == 8883 && address.host == "b.example")
        #expect(tls.broker.caFile == "/etc/gemello/pki/ca.crt")
        #expect(tls.batchKeyFile == "/etc/gemello/pki/tower-1.batchkey")
        #expect(tls.broker.insecureWarning == nil)
        // The CA is read when the client starts: a missing one is named with the fix.
        #expect(throws: CoreError.self) { try BrokerAccess(url: "mqtts://b", passwordFile: "/nonexistent/pw").credentials() }
    }

    @Test func missingSectionsAreExplained() {
        let noSite = error("agent-id: a\ninputs:\n  - type: simulated\n    sensor: s\n    profile: weather\n")
        #expect(noSite?.key == "site")
        let noInputs = error(Self.valid.components(separatedBy: "inputs:")[0])
        #expect(noInputs?.key == "inputs")
    }

    @Test func csvReplayChecksFileUnitAndFormat() throws {
        let folder = Repository.root.appendingPathComponent("agent-config").path
        let base = try String(contentsOfFile: folder + "/replay-milano-arpa.yaml", encoding: .utf8)
        func check(_ text: String) -> CoreError? {
            #expect(throws: CoreError.self) { try AgentConfiguration.decode(text, file: folder + "/x.yaml") }
        }
        #expect(check(base.replacingOccurrences(of: "unit: GQ", with: "unit: ugm3"))?.key == "inputs[0].columns.pm25.unit")
        #expect(check(base.replacingOccurrences(of: "milano_senato", with: "nope"))?.key == "inputs[0].file")
        #expect(check(base.replacingOccurrences(of: "yyyy-MM-dd HH:mm:ss", with: "HH:mm"))?.key == "inputs[0].timestamp.format")
        #expect(check(base.replacingOccurrences(of: "speed: 2000000", with: "speed: fast"))?.key == "inputs[0].speed")
    }
}
