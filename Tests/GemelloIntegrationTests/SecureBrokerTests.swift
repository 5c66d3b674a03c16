import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GemelloCore
import GemelloMosquitto
import GemelloNGSILD
import GemelloTesting
import Synchronization
import Testing

/// Hostile clients against a real mosquitto with the TLS listeners, ACLs, password file and CRL
/// that `gemello pki init` writes, a real `gemello-aggregator` with `security.enrolment`, and
/// real agents (docs/security.md).
@Suite(.serialized) struct SecureBrokerTests {
    /// A PKI folder made by the CLI, and a broker running its configuration.
    final class SecureSite {
        let folder: URL
        let pki: URL
        let broker: BrokerHarness
        let passwordPort: Int

        init(_ name: String) throws {
            folder = try Repository.temporaryFolder(name)
            pki = folder.appendingPathComponent("pki")
            let tls = try FreePort.find()
            var password = try FreePort.find()
            while password == tls { password = try FreePort.find() }
            passwordPort = password
            let pidFile = folder.appendingPathComponent("mosquitto.pid")
            let made = try RulesCLITests.gemello(["pki", "init", "--pki", pki.path, "--port", "\(tls)", "--password-port", "\(password)",
                                                  "--reload-command", "kill -HUP $(cat \(pidFile.path))"])
            guard made.status == 0 else { throw Failure("pki init failed: \(made.output)") }
            broker = try BrokerHarness(secureConfig: pki.appendingPathComponent("mosquitto.conf"), pidFile: pidFile)
        }

        func file(_ name: String) -> String { pki.appendingPathComponent(name).path }

        /// `gemello agent enroll`; returns the configuration lines it prints.
        func enroll(_ agent: String, password: Bool = false) throws -> String {
            let run = try RulesCLITests.gemello(["agent", "enroll", agent, "--pki", pki.path] + (password ? ["--password"] : []))
            guard run.status == 0, run.output.contains("broker reloaded") else { throw Failure("enroll \(agent) failed: \(run.output)") }
            return run.output.split(separator: "\n").filter { !$0.hasPrefix("#") }.joined(separator: "\n") + "\n"
        }

        func revoke(_ agent: String) throws {
            let run = try RulesCLITests.gemello(["agent", "revoke", agent, "--pki", pki.path])
            guard run.status == 0 else { throw Failure("revoke \(agent) failed: \(run.output)") }
        }

        var aggregatorAccess: String {
            """
            broker: mqtts://localhost:\(broker.port)
            broker-tls:
              ca-file: \(file("ca.crt"))
              cert-file: \(file("aggregator.crt"))
              key-file: \(file("aggregator.key"))
            security:
              enrolment: \(file("agents.txt"))

            """
        }

        /// An MQTT client of our wrapper with `credentials`; the first event that settles its
        /// connection: connected, or the refusal with its reason.
        func connect(_ credentials: MQTTCredentials, port: Int? = nil, host: String = "localhost") async throws -> (connected: Bool, reason: String) {
            let client = try MQTTClient(options: .init(clientID: "probe-\(UUID().uuidString.prefix(8))", credentials: credentials))
            defer { client.disconnect() }
            let address = BrokerAddress(host: host, port: port ?? broker.port, tls: credentials.usesTLS)
            let starting = Task { try await client.start(broker: address, retryDelay: .seconds(5)) }
            // At most 20 s: a connection that neither succeeds nor fails in that time is a failure to report.
            let deadline = Task { try await Task.sleep(for: .seconds(20)); client.disconnect() }
            defer { deadline.cancel(); starting.cancel() }
            for await event in client.events {
                switch event {
                case .connected: return (true, "")
                case .connectRefused(let reason): return (false, reason)
                case .disconnected(let expected, let reason) where !reason.contains("unreachable"):
                    return (false, expected ? "no answer within 20 s" : reason)
                default: continue
                }
            }
            if case .failure(let error) = await starting.result { return (false, "start failed: \(error)") }
            return (false, "no event")
        }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func health(_ port: Int) async throws -> [String: Any] {
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/health")!)
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    static func fleetAgents(_ port: Int) async throws -> [String: Int64] {
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/fleet")!)
        let top = try JSONSerialization.jsonObject(with: data)
        let agents = (top as? [[String: Any]]) ?? ((top as? [String: Any])?["agents"] as? [[String: Any]]) ?? []
        var readings: [String: Int64] = [:]
        for agent in agents {
            if let id = agent["id"] as? String { readings[id] = (agent["readingsReceived"] as? NSNumber)?.int64Value ?? 0 }
        }
        return readings
    }

    /// Who may connect at all, and the errors a wrong CA, an expired or a foreign certificate give.
    @Test(.timeLimit(.minutes(2)))
    func onlyEnrolledIdentitiesConnectAndTLSFailuresSayWhy() async throws {
        let site = try SecureSite("secure-connect")
        defer { site.broker.stop() }
        _ = try site.enroll("site-a")
        _ = try site.enroll("site-p", password: true)
        let ca = site.file("ca.crt")

        // Anonymous: no certificate on the certificate listener, no credentials on the password listener.
        #expect(try await site.connect(MQTTCredentials(caFile: ca)).connected == false)
        let anonymous = try await site.connect(MQTTCredentials(caFile: ca), port: site.passwordPort)
        #expect(!anonymous.connected && anonymous.reason.lowercased().contains("not authori"), "\(anonymous.reason)")
        // Plain MQTT to a TLS listener.
        #expect(try await site.connect(MQTTCredentials()).connected == false)
        // The enrolled identities.
        #expect(try await site.connect(MQTTCredentials(caFile: ca, certFile: site.file("agents/site-a.crt"),
                                                       keyFile: site.file("agents/site-a.key"))).connected)
        let password = try String(contentsOfFile: site.file("agents/site-p.password"), encoding: .utf8).trimmingCharacters(in: .newlines)
        let withPassword = try await site.connect(MQTTCredentials(caFile: ca, username: "site-p", password: password), port: site.passwordPort)
        #expect(withPassword.connected, "\(withPassword.reason)")
        let wrong = try await site.connect(MQTTCredentials(caFile: ca, username: "site-p", password: "guess"), port: site.passwordPort)
        #expect(!wrong.connected && !wrong.reason.contains("guess"), "\(wrong.reason)")

        // A CA that is not the broker's: the client refuses the broker, and says what to check.
        let other = site.folder.appendingPathComponent("other-ca")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        _ = try RulesCLITests.gemello(["pki", "init", "--pki", other.path, "--reload-command", "true"])
        let wrongCA = try await site.connect(MQTTCredentials(caFile: other.appendingPathComponent("ca.crt").path,
                                                             certFile: site.file("agents/site-a.crt"), keyFile: site.file("agents/site-a.key")))
        #expect(!wrongCA.connected && wrongCA.reason.contains("certificate verify failed") && wrongCA.reason.contains("broker-tls.ca-file"),
                "\(wrongCA.reason)")
        // A certificate from another CA: the broker refuses the client.
        let foreign = try await site.connect(MQTTCredentials(caFile: ca, certFile: other.appendingPathComponent("aggregator.crt").path,
                                                             keyFile: other.appendingPathComponent("aggregator.key").path))
        #expect(!foreign.connected)
        // A name the broker's certificate does not carry.
        let name = try await site.connect(MQTTCredentials(caFile: ca, certFile: site.file("agents/site-a.crt"), keyFile: site.file("agents/site-a.key")),
                                          host: "127.0.0.2")
        #expect(!name.connected, "\(name.reason)")

        // An expired certificate of our own CA.
        let expiredKey = site.folder.appendingPathComponent("expired.key").path
        let csr = site.folder.appendingPathComponent("expired.csr").path
        let expired = site.folder.appendingPathComponent("expired.crt").path
        try Self.openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", expiredKey,
                          "-out", csr, "-subj", "/CN=site-a"])
        try Self.openssl(["ca", "-batch", "-notext", "-config", site.file("openssl.cnf"), "-in", csr, "-out", expired,
                          "-startdate", "20200101000000Z", "-enddate", "20200201000000Z", "-extensions", "client"])
        let old = try await site.connect(MQTTCredentials(caFile: ca, certFile: expired, keyFile: expiredKey))
        // TLS 1.3 reports the broker's refusal after the handshake: OpenSSL's alert ("certificate
        // expired") when it arrives before the connection closes, else our hint; both name the certificate.
        #expect(!old.connected && (old.reason.lowercased().contains("expired") || old.reason.contains("check this client's certificate")),
                "\(old.reason)")

        // A configuration naming a CA file that is not there fails at once, naming it.
        #expect(throws: MQTTError.self) {
            _ = try MQTTClient(options: .init(clientID: "x", credentials: MQTTCredentials(caFile: "/nonexistent/ca.crt")))
        }
    }

    static func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw Failure("openssl \(arguments.joined(separator: " ")) failed") }
    }

    /// Agent A's identity cannot publish as B (the broker's ACL), a real agent's readings reach
    /// the twin over TLS with signed batches, and a revoked agent is cut off at once.
    @Test(.timeLimit(.minutes(3)))
    func eachAgentIsConfinedToItsTopicsAndRevocationCutsItOff() async throws {
        let site = try SecureSite("secure-acl")
        defer { site.broker.stop() }
        let accessA = try site.enroll("site-a")
        _ = try site.enroll("site-b")
        let config = site.folder.appendingPathComponent("aggregator.yaml")
        try ("client-id: secure-aggregator\n" + site.aggregatorAccess).write(to: config, atomically: true, encoding: .utf8)
        let log = site.folder.appendingPathComponent("aggregator.log")
        let aggregator = try AlertDeliveryTests.Aggregator(config: config, broker: "mqtts://localhost:\(site.broker.port)",
                                                           store: site.folder.appendingPathComponent("twin.sqlite"), folder: site.folder, log: log)
        defer { aggregator.kill9() }
        let port = try await aggregator.port()

        // A real agent with its enrolment's lines: 600 readings, one a second of data, replayed fast.
        let csv = site.folder.appendingPathComponent("levels.csv")
        try AlertDeliveryTests.levels(start: 1_700_000_000_000, seconds: 600).write(to: csv, atomically: true, encoding: .utf8)
        let agent = try AlertDeliveryTests.gaugeAgent("site-a", site: "a", at: (45.46, 9.19), csv: csv, speed: "60", broker: "", folder: site.folder,
                                                      access: accessA)
        defer { kill(agent.processIdentifier, SIGKILL) }
        try await waitUntilAsync(.seconds(30)) { ((try? await Self.fleetAgents(port))?["site-a"] ?? 0) > 0 }

        // site-a's identity publishing a batch as site-b, signed with site-a's key: the broker drops it.
        let keyA = try BatchKey.load(site.file("agents/site-a.batchkey"), file: "test")
        let forger = try MQTTClient(options: .init(clientID: "forger", credentials: MQTTCredentials(
            caFile: site.file("ca.crt"), certFile: site.file("agents/site-a.crt"), keyFile: site.file("agents/site-a.key"))))
        defer { forger.disconnect() }
        try await forger.start(broker: BrokerAddress(host: "localhost", port: site.broker.port, tls: true))
        for await event in forger.events { if case .connected = event { break } }
        var forged = Batch(agentID: "site-b", bootEpoch: 1, sequence: 1, createdAt: 1)
        var lookup: [SeriesInfo: UInt32] = [:]
        forged.append(Reading(series: SeriesInfo(name: "gauge/level", unit: "MTR"), timestamp: 1_700_000_000_000, value: 99), lookup: &lookup)
        try forger.publish(topic: Topics.data(agent: "site-b"), payload: try WireFormat.encode(forged, signingKey: keyA))
        try forger.publish(topic: Topics.birth(agent: "site-b"), payload: Array("{}".utf8), retain: true)

        // Revoke site-a while it runs: its readings stop at once; its certificate no longer connects.
        try await Task.sleep(for: .seconds(2))
        let keyCopy = site.folder.appendingPathComponent("site-a.key.copy").path
        try FileManager.default.copyItem(atPath: site.file("agents/site-a.key"), toPath: keyCopy)
        try site.revoke("site-a")
        try await Task.sleep(for: .seconds(1))
        let atRevocation = try await Self.fleetAgents(port)["site-a"] ?? 0
        try await Task.sleep(for: .seconds(4))
        let after = try await Self.fleetAgents(port)
        #expect(after["site-a"] == atRevocation, "readings still arrive after revocation: \(atRevocation) -> \(after["site-a"] ?? 0)")
        #expect(atRevocation > 0 && atRevocation < 600)
        #expect(after["site-b"] == nil, "the forged batch or birth reached the twin: \(after)")
        let health = try await Self.health(port)
        #expect((health["rejectedBatches"] as? NSNumber)?.intValue == 0, "the broker let the forged batch through: \(health)")
        let reconnect = try await site.connect(MQTTCredentials(caFile: site.file("ca.crt"), certFile: site.file("agents/site-a.crt"),
                                                               keyFile: keyCopy))
        #expect(!reconnect.connected)
    }

    /// A broker misconfigured to let anyone publish anywhere: the aggregator's enrolment check
    /// still refuses a batch published as another agent, an unsigned one and a revoked agent's,
    /// and a replayed batch is a duplicate, never a second copy.
    @Test(.timeLimit(.minutes(2)))
    func theAggregatorRefusesWhatAnOpenBrokerLetsThrough() async throws {
        let broker = try BrokerHarness()  // allow_anonymous, no ACL: the misconfiguration
        defer { broker.stop() }
        let folder = try Repository.temporaryFolder("secure-open-broker")
        let pki = folder.appendingPathComponent("pki")
        let made = try RulesCLITests.gemello(["pki", "init", "--pki", pki.path, "--reload-command", "true"])
        #expect(made.status == 0, "\(made.output)")
        for agent in ["site-a", "site-b"] { _ = try RulesCLITests.gemello(["agent", "enroll", agent, "--pki", pki.path]) }
        let config = folder.appendingPathComponent("aggregator.yaml")
        try "client-id: open-broker-aggregator\nsecurity:\n  enrolment: \(pki.path)/agents.txt\n".write(to: config, atomically: true, encoding: .utf8)
        let log = folder.appendingPathComponent("aggregator.log")
        let aggregator = try AlertDeliveryTests.Aggregator(config: config, broker: broker.url, store: folder.appendingPathComponent("twin.sqlite"),
                                                           folder: folder, log: log)
        defer { aggregator.kill9() }
        let port = try await aggregator.port()
        let keyA = try BatchKey.load(pki.appendingPathComponent("agents/site-a.batchkey").path, file: "test")

        let client = try MQTTClient(options: .init(clientID: "intruder"))
        defer { client.disconnect() }
        try await client.start(broker: try #require(BrokerAddress(url: broker.url)))
        for await event in client.events { if case .connected = event { break } }
        try await waitUntilAsync(.seconds(20)) { (try? await Self.health(port))?["brokerConnected"] as? Bool == true }
        try await Task.sleep(for: .milliseconds(500))

        func batch(_ agent: String, sequence: UInt64, value: Double) -> Batch {
            var b = Batch(agentID: agent, bootEpoch: 1, sequence: sequence, createdAt: 1)
            var lookup: [SeriesInfo: UInt32] = [:]
            b.append(Reading(series: SeriesInfo(name: "gauge/level", unit: "MTR"), timestamp: 1_700_000_000_000 + Int64(sequence) * 1000, value: value),
                     lookup: &lookup)
            return b
        }
        func counts() async throws -> (batches: Int, duplicates: Int, rejected: Int) {
            let h = try await Self.health(port)
            return ((h["batchesIngested"] as? NSNumber)?.intValue ?? -1, (h["duplicateBatches"] as? NSNumber)?.intValue ?? -1,
                    (h["rejectedBatches"] as? NSNumber)?.intValue ?? -1)
        }

        // 1. A genuine batch of site-a: stored. 2. The same bytes again (a replay): a duplicate.
        let genuine = try WireFormat.encode(batch("site-a", sequence: 1, value: 1), signingKey: keyA)
        try client.publish(topic: Topics.data(agent: "site-a"), payload: genuine)
        try await waitUntilAsync(.seconds(10)) { (try? await counts())?.batches == 1 }
        try client.publish(topic: Topics.data(agent: "site-a"), payload: genuine)
        try await waitUntilAsync(.seconds(10)) { (try? await counts())?.duplicates == 1 }
        // 3. site-a's key on site-b's topic with site-b's header. 4. Unsigned. 5. Not enrolled. 6. Altered in flight.
        try client.publish(topic: Topics.data(agent: "site-b"), payload: try WireFormat.encode(batch("site-b", sequence: 1, value: 9), signingKey: keyA))
        try client.publish(topic: Topics.data(agent: "site-a"), payload: try WireFormat.encode(batch("site-a", sequence: 2, value: 9)))
        try client.publish(topic: Topics.data(agent: "site-z"), payload: try WireFormat.encode(batch("site-z", sequence: 1, value: 9), signingKey: keyA))
        var altered = try WireFormat.encode(batch("site-a", sequence: 3, value: 1), signingKey: keyA)
        altered[altered.count / 2] ^= 1
        try client.publish(topic: Topics.data(agent: "site-a"), payload: altered)
        try await waitUntilAsync(.seconds(10)) { (try? await counts())?.rejected == 4 }

        // 7. Revoked: refused within a second or two of `gemello agent revoke`, no restart.
        let revoked = try RulesCLITests.gemello(["agent", "revoke", "site-a", "--pki", pki.path])
        #expect(revoked.status == 0, "\(revoked.output)")
        try await Task.sleep(for: .milliseconds(1500))
        try client.publish(topic: Topics.data(agent: "site-a"), payload: try WireFormat.encode(batch("site-a", sequence: 4, value: 1), signingKey: keyA))
        try await waitUntilAsync(.seconds(10)) { (try? await counts())?.rejected == 5 }
        let final = try await counts()
        #expect(final.batches == 1 && final.duplicates == 1, "\(final)")
        let readings = try await Self.fleetAgents(port)
        // Enrolled agents are listed with their rejected batches (an operator sees the attempts), without
        // forged readings; a topic of an agent nobody enrolled adds no fleet row.
        #expect(readings["site-a"] == 1 && readings["site-b"] == 0 && readings["site-z"] == nil, "\(readings)")
        let text = try String(contentsOf: log, encoding: .utf8)
        #expect(text.contains("another identity") && text.contains("not signed") && text.contains("not enrolled") && text.contains("revoked"))
        // Secrets stay out of the log: it names the registry, never a key.
        #expect(!text.contains(keyA.hexString) && text.contains("agents.txt"))
    }

    /// NGSI-LD subscriptions with an `mqtts://` endpoint are delivered over TLS to a broker whose
    /// certificate chains to `subscriptions.mqtt-ca-file`.
    @Test(.timeLimit(.minutes(1)))
    func mqttsEndpointsAreNotifiedOverTLS() async throws {
        let folder = try Repository.temporaryFolder("mqtts-endpoint")
        let pki = folder.appendingPathComponent("pki")
        #expect(try RulesCLITests.gemello(["pki", "init", "--pki", pki.path, "--reload-command", "true"]).status == 0)
        let port = try FreePort.find()
        let config = folder.appendingPathComponent("endpoint.conf")
        // A TLS listener open to anonymous clients: the Control Room's own broker, say.
        try """
            listener \(port)
            cafile \(pki.path)/ca.crt
            certfile \(pki.path)/broker.crt
            keyfile \(pki.path)/broker.key
            allow_anonymous true
            """.write(to: config, atomically: true, encoding: .utf8)
        let broker = try BrokerHarness(secureConfig: config, pidFile: folder.appendingPathComponent("pid"))
        defer { broker.stop() }
        let listener = try MQTTClient(options: .init(clientID: "tls-listener", credentials: MQTTCredentials(caFile: "\(pki.path)/ca.crt")))
        let received = Mutex<[String]>([])
        let listening = Task {
            for await event in listener.events {
                switch event {
                case .connected: _ = try? listener.subscribe("cr/notifications")
                case .message(let m): received.withLock { $0.append(String(decoding: m.payload, as: UTF8.self)) }
                default: break
                }
            }
        }
        Task { try? await listener.start(broker: BrokerAddress(host: "localhost", port: port, tls: true)) }
        defer { listener.disconnect(); listening.cancel() }
        try await TwinAPI.with(configure: { $0.subscriptionsMQTTCAFile = "\(pki.path)/ca.crt" }) { api in
            let body: JSON = ["type": "Subscription", "entities": [["type": "Building"]],
                              "notification": ["endpoint": ["uri": .string("mqtts://localhost:\(port)/cr/notifications")]]]
            #expect(try await api.call("POST", "/subscriptions", body).status == 201)
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await api.call("POST", "/entities", ["id": "urn:ngsi-ld:Building:pirelli", "type": "Building",
                                                              "height": ["type": "Property", "value": 127]]).status == 201)
            try await waitUntil(.seconds(15)) { received.withLock { !$0.isEmpty } }
            let first = try #require(received.withLock { $0.first })
            #expect(first.contains("urn:ngsi-ld:Building:pirelli"))
            let status = try await api.get("/subscriptions").body?.arrayValue?.first?["notification"]
            #expect(status?["timesSent"]?.numberValue ?? 0 >= 1, "\(status?.serialized ?? "")")
        }
    }
}
