import ArgumentParser
import Foundation
import GemelloCore

struct AgentAdminCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Enrol, list and revoke agents' identities (certificate or password, batch key, broker rights).",
        subcommands: [EnrolCommand.self, RevokeCommand.self, EnrolledCommand.self])
}

struct EnrolCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Give an agent its identity: a certificate (CN = agent id) or a password, a batch-signing key, and its topics on the broker.",
        discussion: """
            Prints the lines to put in the agent's configuration and the files to copy to it. The \
            broker is reloaded so the agent's rights apply at once; the aggregator sees the new \
            entry in security.enrolment within a second.
            """)

    @OptionGroup var location: PKIOptions
    @Argument(help: "The agent id (as in its configuration's agent-id).")
    var agentID: String
    @Flag(name: .long, help: "A generated MQTT password instead of a client certificate (the broker's --password-port listener).")
    var password = false
    @Flag(name: .long, help: "Replace the identity and key of an agent already enrolled (its old certificate is revoked).")
    var renew = false
    @Option(name: .long, help: "Where the agent will keep these files; the printed configuration names them there (default: where they are written).")
    var installDir: String?
    @Option(name: .long, help: "Validity of the certificate, in days.")
    var days = 825
    @Option(name: .long, help: "Also write the configuration lines to this file, for gemello-agent --access.")
    var output: String?

    func validate() throws {
        guard Topics.isValidAgentID(agentID) else {
            throw ValidationError("'\(agentID)' is not a valid agent id: use 1-64 lowercase letters, digits, '-', '_' or '.'")
        }
        guard agentID != PKI.aggregatorIdentity else { throw ValidationError("'\(agentID)' is the aggregator's identity") }
        guard (1...3650).contains(days) else { throw ValidationError("--days must be 1-3650 (got \(days))") }
    }

    func run() throws {
        try reportingErrors {
            let pki = PKI(folder: location.folder)
            try pki.requireExisting()
            var registry = try pki.loadRegistry()
            if let existing = registry[agentID], existing.status == .active, !renew {
                throw CLIError("agent '\(agentID)' is already enrolled (since \(existing.enrolledAt)). Fix: pass --renew to issue a new identity and key, or revoke it first")
            }
            if let serial = registry[agentID]?.serial, registry[agentID]?.status == .active { try pki.revokeCertificate(serial: serial) }
            let base = pki.folder.appendingPathComponent("agents/\(agentID)").path
            for ext in [".crt", ".key", ".password", ".batchkey"] { try? FileManager.default.removeItem(atPath: base + ext) }
            var serial: String?
            if password {
                guard pki.brokerPorts.password != nil else {
                    throw CLIError("this PKI has no password listener. Fix: enrol with a certificate (drop --password), or re-create the PKI with --password-port")
                }
                try addPassword(pki)
            } else {
                serial = try pki.issue(commonName: agentID, keyPath: base + ".key", certPath: base + ".crt", extensions: "client",
                                       altNames: nil, days: days)
                try removePassword(pki)
            }
            var key = [UInt8](repeating: 0, count: BatchKey.length)
            var generator = SystemRandomNumberGenerator()
            for i in key.indices { key[i] = generator.next() }
            try pki.write("agents/\(agentID).batchkey", key.hexString + "\n", mode: 0o600)
            registry.upsert(.init(agentID: agentID, batchKey: key, serial: serial, enrolledAt: Timestamp.iso8601(milliseconds: SystemWallClock().nowMilliseconds())))
            try pki.saveRegistry(registry)
            try pki.saveACL(registry)
            var reloaded = true
            do { try pki.reloadBroker() } catch {
                reloaded = false
                Console.error("gemello: warning: \(error). The agent can connect only after the broker re-reads its files: reload it by hand")
            }
            let dir = installDir ?? pki.folder.appendingPathComponent("agents").path
            let ports = pki.brokerPorts
            let caPath = installDir.map { "\($0)/ca.crt" } ?? pki.path("ca.crt")
            var snippet = "broker: mqtts://\(ports.host):\(password ? ports.password ?? ports.tls : ports.tls)\nbroker-tls:\n  ca-file: \(caPath)\n"
            if password {
                snippet += "broker-username: \(agentID)\nbroker-password-file: \(dir)/\(agentID).password\n"
            } else {
                snippet += "  cert-file: \(dir)/\(agentID).crt\n  key-file: \(dir)/\(agentID).key\n"
            }
            snippet += "batch-key-file: \(dir)/\(agentID).batchkey\n"
            let files = (password ? [".password", ".batchkey"] : [".crt", ".key", ".batchkey"]).map { base + $0 } + [pki.path("ca.crt")]
            print("# agent \(agentID) enrolled\(serial.map { " (certificate serial \($0))" } ?? " (password)")\(reloaded ? "; broker reloaded" : "")")
            if installDir != nil {
                print("# copy to \(dir) on the agent (mode 0600, owned by the gemello user): \(files.joined(separator: " "))")
            }
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: Data(("# \(agentID): from gemello agent enroll\n" + snippet).utf8),
                                                     attributes: [.posixPermissions: 0o644]) else {
                    throw CLIError("cannot write \(output)")
                }
                print("# written to \(output): run the agent with --access \(output), or add these lines to its configuration:")
            } else {
                print("# add to the agent's configuration (replacing its broker: line), or save as a file for gemello-agent --access:")
            }
            print(snippet, terminator: "")
        }
    }

    /// Adds the agent to the broker's password file: the password is hashed by
    /// `mosquitto_passwd -U` on a private copy, never passed on a command line.
    private func addPassword(_ pki: PKI) throws {
        var bytes = [UInt8](repeating: 0, count: 24)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = generator.next() }
        let secret = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        try pki.write("agents/\(agentID).password", secret + "\n", mode: 0o600)
        let scratch = pki.folder.appendingPathComponent("agents/.passwd-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        guard FileManager.default.createFile(atPath: scratch, contents: Data("\(agentID):\(secret)\n".utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CLIError("cannot write \(scratch)")
        }
        let result: Subprocess.Result
        do { result = try Subprocess.run("/usr/bin/mosquitto_passwd", ["-U", scratch]) } catch {
            throw CLIError("cannot run mosquitto_passwd. Fix: apt-get install mosquitto")
        }
        guard result.status == 0, let hashed = try? String(contentsOfFile: scratch, encoding: .utf8) else {
            throw CLIError("mosquitto_passwd -U failed (exit \(result.status)): \(result.errors)")
        }
        let others = try passwordLines(pki).filter { !$0.hasPrefix(agentID + ":") }
        try pki.write("passwd", (others + [hashed.trimmingCharacters(in: .newlines)]).joined(separator: "\n") + "\n", mode: 0o600)
    }

    private func removePassword(_ pki: PKI) throws {
        let lines = try passwordLines(pki)
        let kept = lines.filter { !$0.hasPrefix(agentID + ":") }
        if kept.count != lines.count { try pki.write("passwd", kept.map { $0 + "\n" }.joined(), mode: 0o600) }
    }
}

func passwordLines(_ pki: PKI) throws -> [String] {
    ((try? String(contentsOfFile: pki.path("passwd"), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
}

struct RevokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Cut an agent off: its broker rights and password go, its certificate joins the CRL, and the aggregator refuses its batches.",
        discussion: """
            Takes effect at once on the broker (reloaded: the agent can no longer publish, and cannot \
            connect again) and within a second at the aggregator (security.enrolment), which also \
            refuses the agent's batches should a broker still let them through. Readings the agent \
            buffered stay on the agent; re-enrolling it ('gemello agent enroll --renew') lets them flow.
            """)

    @OptionGroup var location: PKIOptions
    @Argument(help: "The agent id.")
    var agentID: String

    func run() throws {
        try reportingErrors {
            let pki = PKI(folder: location.folder)
            try pki.requireExisting()
            var registry = try pki.loadRegistry()
            guard var record = registry[agentID] else {
                throw CLIError("agent '\(agentID)' is not enrolled in \(pki.folder.path). Fix: 'gemello agent list --pki \(pki.folder.path)' shows who is")
            }
            guard record.status == .active else {
                throw CLIError("agent '\(agentID)' was already revoked at \(record.revokedAt ?? "?")")
            }
            if let serial = record.serial { try pki.revokeCertificate(serial: serial) }
            record.status = .revoked
            record.revokedAt = Timestamp.iso8601(milliseconds: SystemWallClock().nowMilliseconds())
            registry.upsert(record)
            try pki.saveRegistry(registry)
            try pki.saveACL(registry)
            let lines = try passwordLines(pki)
            let kept = lines.filter { !$0.hasPrefix(agentID + ":") }
            if kept.count != lines.count { try pki.write("passwd", kept.map { $0 + "\n" }.joined(), mode: 0o600) }
            for ext in [".key", ".password", ".batchkey"] {
                try? FileManager.default.removeItem(atPath: pki.folder.appendingPathComponent("agents/\(agentID)\(ext)").path)
            }
            do { try pki.reloadBroker() } catch {
                throw CLIError("agent '\(agentID)' is revoked in the registry, the acl and the CRL, and the aggregator refuses its batches, but the broker was NOT reloaded: \(error). Fix: reload the broker now (SIGHUP) so it cuts the agent off")
            }
            print("agent \(agentID) revoked at \(record.revokedAt ?? ""); broker reloaded")
        }
    }
}

struct EnrolledCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "The agents enrolled in the PKI folder and their status.")
    @OptionGroup var location: PKIOptions
    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            let pki = PKI(folder: location.folder)
            try pki.requireExisting()
            let registry = try pki.loadRegistry()
            if json {
                let items = registry.records.map { r in
                    var w = JSONWriter()
                    w.field("agentId", r.agentID)
                    w.field("status", r.status.rawValue)
                    w.field("identity", r.serial == nil ? "password" : "certificate")
                    if let serial = r.serial { w.field("serial", serial) }
                    w.field("enrolledAt", r.enrolledAt)
                    if let revokedAt = r.revokedAt { w.field("revokedAt", revokedAt) }
                    return w.finished()
                }
                print("[" + items.joined(separator: ",") + "]")
                return
            }
            guard !registry.records.isEmpty else { print("no agents enrolled in \(pki.folder.path)"); return }
            var table = Table(["AGENT", "STATUS", "IDENTITY", "ENROLLED", "REVOKED"])
            for r in registry.records {
                table.add([r.agentID, r.status.rawValue, r.serial.map { "cert \($0)" } ?? "password", r.enrolledAt, r.revokedAt ?? ""])
            }
            print(table.render())
        }
    }
}

