import Foundation
import GemelloCore

/// The local certificate authority and the broker's access files in one folder, made by
/// `gemello pki init` and kept by `gemello agent enroll|revoke` (docs/security.md):
///
/// ```
/// ca.crt ca.key            the CA (EC P-256; ca.key never leaves this folder)
/// openssl.cnf index.txt serial crlnumber issued/   openssl's CA database
/// crl.pem                  revoked certificates (the broker's crlfile)
/// broker.crt broker.key    the broker's TLS certificate (its host names and addresses)
/// aggregator.crt .key      the aggregator's client certificate (CN gemello-aggregator)
/// acl                      the broker's acl_file: each identity's topics
/// passwd                   the broker's password_file (agents enrolled with --password)
/// mosquitto.conf           listeners and settings to include in the broker's configuration
/// agents.txt               the enrolment registry (mode 0600: batch keys): the aggregator's security.enrolment
/// agents/<id>.*            what each agent needs: .crt .key (or .password) and .batchkey
/// reload                   the command that makes the broker re-read acl, passwd and crl.pem
/// ```
///
/// Certificates and keys are made by Debian's `openssl` command; secrets never pass through a
/// command line (`ps` shows them to every user).
struct PKI {
    let folder: URL

    static let aggregatorIdentity = "gemello-aggregator"

    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    var exists: Bool { FileManager.default.fileExists(atPath: path("ca.crt")) && FileManager.default.fileExists(atPath: path("agents.txt")) }

    func requireExisting() throws {
        guard exists else {
            throw CLIError("\(folder.path) is not a Gemello PKI folder (no ca.crt and agents.txt). Fix: run 'gemello pki init --dir \(folder.path)' first, or pass --pki DIR")
        }
    }

    // MARK: Init

    struct InitOptions {
        var brokerHosts: [String]
        var tlsPort: Int
        var passwordPort: Int?
        var reloadCommand: String
        var caName: String
        var days: Int
    }

    func initialize(_ o: InitOptions) throws {
        let fm = FileManager.default
        guard !fm.fileExists(atPath: path("ca.key")) else {
            throw CLIError("\(folder.path) already holds a CA (ca.key). Fix: choose another --dir, or remove the folder to start over (every enrolled agent then needs enrolling again)")
        }
        try fm.createDirectory(at: folder.appendingPathComponent("issued"), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try fm.createDirectory(at: folder.appendingPathComponent("agents"), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: folder.path)
        try write("index.txt", "")
        try write("serial", "1000\n")
        try write("crlnumber", "1000\n")
        try write("openssl.cnf", opensslConfig(days: o.days))
        try write("reload", o.reloadCommand + "\n")
        try write("broker-ports", "\(o.tlsPort) \(o.passwordPort.map(String.init) ?? "-") \(o.brokerHosts[0])\n")

        try OpenSSL.run(["req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-keyout", path("ca.key"), "-out", path("ca.crt"), "-days", "3650", "-subj", "/CN=\(o.caName)",
                         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        try chmod("ca.key", 0o600)
        var names: [String] = []
        for host in o.brokerHosts + ["localhost", "127.0.0.1", "::1"] where !names.contains(host) { names.append(host) }
        let altNames = names.map { ($0.contains(":") || $0.allSatisfy { $0.isNumber || $0 == "." }) ? "IP:\($0)" : "DNS:\($0)" }
        _ = try issue(commonName: o.brokerHosts[0], keyPath: path("broker.key"), certPath: path("broker.crt"),
                      extensions: "server", altNames: altNames.joined(separator: ","), days: o.days)
        _ = try issue(commonName: Self.aggregatorIdentity, keyPath: path("aggregator.key"), certPath: path("aggregator.crt"),
                      extensions: "client", altNames: nil, days: o.days)
        try generateCRL()
        try write("passwd", "")
        try chmod("passwd", 0o600)
        try saveRegistry(Enrolment())
        try write("acl", acl(Enrolment()))
        try write("mosquitto.conf", mosquittoConfig(o))
    }

    /// `openssl ca`'s settings for this folder.
    private func opensslConfig(days: Int) -> String {
        """
        # Written by gemello pki init: openssl's CA database for this folder.
        [ ca ]
        default_ca = gemello_ca

        [ gemello_ca ]
        dir = \(folder.path)
        database = $dir/index.txt
        new_certs_dir = $dir/issued
        serial = $dir/serial
        crlnumber = $dir/crlnumber
        certificate = $dir/ca.crt
        private_key = $dir/ca.key
        default_md = sha256
        default_days = \(days)
        default_crl_days = 3650
        policy = policy_cn
        unique_subject = no
        copy_extensions = none
        email_in_dn = no

        [ policy_cn ]
        commonName = supplied

        [ client ]
        basicConstraints = critical,CA:FALSE
        keyUsage = critical,digitalSignature,keyEncipherment
        extendedKeyUsage = clientAuth

        """
    }

    /// A new key and a certificate signed by the CA; returns the certificate's serial (hex).
    func issue(commonName: String, keyPath: String, certPath: String, extensions: String, altNames: String?, days: Int) throws -> String {
        let csr = folder.appendingPathComponent("issued/\(commonName).csr").path
        defer { try? FileManager.default.removeItem(atPath: csr) }
        try OpenSSL.run(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-keyout", keyPath, "-out", csr, "-subj", "/CN=\(commonName)"])
        _ = chmod(absolute: keyPath, 0o600)
        var args = ["ca", "-batch", "-notext", "-config", path("openssl.cnf"), "-in", csr, "-out", certPath, "-days", "\(days)"]
        if extensions == "server" {
            let ext = folder.appendingPathComponent("issued/server.ext").path
            try """
            [ server ]
            basicConstraints = critical,CA:FALSE
            keyUsage = critical,digitalSignature,keyEncipherment
            extendedKeyUsage = serverAuth
            subjectAltName = \(altNames ?? "DNS:\(commonName)")

            """.write(toFile: ext, atomically: true, encoding: .utf8)
            args += ["-extfile", ext, "-extensions", "server"]
        } else {
            args += ["-extensions", extensions]
        }
        try OpenSSL.run(args)
        let serial = try OpenSSL.run(["x509", "-in", certPath, "-noout", "-serial"])
        return serial.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "serial=", with: "")
    }

    func generateCRL() throws {
        try OpenSSL.run(["ca", "-batch", "-config", path("openssl.cnf"), "-gencrl", "-out", path("crl.pem")])
    }

    /// Revokes the certificate with `serial` (hex) in the CA database and publishes a new CRL.
    func revokeCertificate(serial: String) throws {
        let issued = path("issued/\(serial.uppercased()).pem")
        guard FileManager.default.fileExists(atPath: issued) else {
            throw CLIError("certificate \(serial) is not in \(path("issued")); the CA database does not match the registry. Fix: restore the PKI folder from its backup")
        }
        try OpenSSL.run(["ca", "-batch", "-config", path("openssl.cnf"), "-revoke", issued])
        try generateCRL()
    }

    // MARK: Broker files

    /// The broker's rights: the aggregator reads every agent's topics and answers on their ack
    /// topics; agent X publishes only under gemello/v1/agents/X/ and reads only its acks and the
    /// aggregator's state. Revoked agents are absent (so have no rights at all).
    func acl(_ registry: Enrolment) -> String {
        var out = """
        # Written by gemello pki init / agent enroll / agent revoke: do not edit (the next enrolment rewrites it).
        # The broker denies every topic not granted here, to every identity.

        user \(Self.aggregatorIdentity)
        topic read \(Topics.root)/+/data
        topic read \(Topics.root)/+/birth
        topic read \(Topics.root)/+/death
        topic read \(Topics.root)/+/health
        topic write \(Topics.root)/+/ack
        topic readwrite gemello/v1/aggregator/#

        """
        for record in registry.records where record.status == .active {
            let id = record.agentID
            out += """

            user \(id)
            topic write \(Topics.data(agent: id))
            topic write \(Topics.birth(agent: id))
            topic write \(Topics.health(agent: id))
            topic write \(Topics.death(agent: id))
            topic read \(Topics.ack(agent: id))
            topic read \(Topics.aggregatorState)
            topic read \(Topics.aggregatorState)/+

            """
        }
        return out
    }

    private func mosquittoConfig(_ o: InitOptions) -> String {
        var out = """
        # Written by gemello pki init. Include it in the broker's configuration, e.g.
        #   echo 'include_dir /etc/mosquitto/gemello' ... or copy these lines into mosquitto.conf.
        # Every listener is TLS 1.2+; nobody connects without an identity; every identity is confined
        # by the acl file; 'gemello agent revoke' rewrites acl, passwd and crl.pem and reloads the broker.
        per_listener_settings false
        allow_anonymous false
        acl_file \(path("acl"))
        password_file \(path("passwd"))

        # Agents and the aggregator with client certificates: the certificate's CN is the identity.
        \(tlsListener(o.tlsPort))
        crlfile \(path("crl.pem"))
        require_certificate true
        use_identity_as_username true

        """
        if let port = o.passwordPort {
            out += """

            # Agents enrolled with --password: TLS for the broker's identity, a username and password for theirs.
            \(tlsListener(port))
            require_certificate false

            """
        }
        return out
    }

    /// A TLS 1.2+ listener with the broker's certificate.
    private func tlsListener(_ port: Int) -> String {
        "listener \(port)\ncafile \(path("ca.crt"))\ncertfile \(path("broker.crt"))\nkeyfile \(path("broker.key"))\ntls_version tlsv1.2"
    }

    // MARK: Registry

    func loadRegistry() throws -> Enrolment {
        let text: String
        do { text = try FileText.read(path("agents.txt")) } catch { throw CLIError("cannot read \(path("agents.txt")): \(error.reason)") }
        do { return try Enrolment.parse(text, file: path("agents.txt")) } catch { throw CLIError("\(error)") }
    }

    /// Registry, acl and passwd are replaced atomically (the aggregator and the broker never read half a file).
    func saveRegistry(_ registry: Enrolment) throws {
        try write("agents.txt", registry.format(), mode: 0o600)
    }

    func saveACL(_ registry: Enrolment) throws { try write("acl", acl(registry)) }

    /// Runs the broker's reload command (SIGHUP): it re-reads acl, passwd and crl.pem.
    func reloadBroker() throws {
        let command = ((try? String(contentsOfFile: path("reload"), encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !command.isEmpty else { throw CLIError("no reload command in \(path("reload"))") }
        let result = try Subprocess.run("/bin/sh", ["-c", command])
        guard result.status == 0 else {
            let text = result.errors.trimmingCharacters(in: .whitespacesAndNewlines)
            throw CLIError("the broker reload command '\(command)' failed (exit \(result.status))\(text.isEmpty ? "" : ": " + text)")
        }
    }

    /// The broker's address as `pki init` recorded it: TLS port, password port, host.
    var brokerPorts: (tls: Int, password: Int?, host: String) {
        let fields = ((try? String(contentsOfFile: path("broker-ports"), encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace)
        return (fields.first.flatMap { Int($0) } ?? 8883, fields.count > 1 ? Int(fields[1]) : nil, fields.count > 2 ? String(fields[2]) : "localhost")
    }

    // MARK: Files

    func write(_ name: String, _ text: String, mode: Int = 0o644) throws {
        try writeAtomically(text, to: path(name), mode: mode)
    }

    @discardableResult
    func chmod(_ name: String, _ mode: Int) throws -> Bool { chmod(absolute: path(name), mode) }

    @discardableResult
    func chmod(absolute: String, _ mode: Int) -> Bool {
        (try? FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: absolute)) != nil
    }
}

/// Replaces `path` with `text` in one step (a temporary file renamed over it), created with
/// `mode`: the broker and the aggregator, which re-read these files, never see half of one.
func writeAtomically(_ text: String, to path: String, mode: Int) throws {
    let temporary = path + ".tmp-\(getpid())"
    guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
        throw CLIError("cannot write \(temporary). Fix: check \(URL(fileURLWithPath: path).deletingLastPathComponent().path) exists and this user may write it")
    }
    guard rename(temporary, path) == 0 else {
        throw CLIError("cannot replace \(path): \(String(cString: strerror(errno)))")
    }
}

/// Debian's `openssl` command, its failures turned into errors that quote what it said.
enum OpenSSL {
    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let result: Subprocess.Result
        do { result = try Subprocess.run("/usr/bin/openssl", arguments) } catch {
            throw CLIError("cannot run /usr/bin/openssl (\(error.localizedDescription)). Fix: apt-get install openssl")
        }
        guard result.status == 0 else {
            throw CLIError("openssl \(arguments.first ?? "") failed: \(result.errors.split(separator: "\n").prefix(4).joined(separator: "; "))")
        }
        return result.output
    }
}

/// A command run to its end, its output and errors collected.
enum Subprocess {
    struct Result {
        var status: Int32
        var output: String
        var errors: String
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: out, as: UTF8.self),
                      errors: String(decoding: err, as: UTF8.self))
    }
}
