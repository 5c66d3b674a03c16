import GemelloCore
import GemelloMosquitto

/// How a daemon reaches the MQTT broker: the URL and the identity it proves there. Shared by the
/// agent, the aggregator and the CLI so the same keys mean the same thing everywhere:
///
/// ```yaml
/// broker: mqtts://broker.example:8883
/// broker-tls:                      # TLS 1.2+; the broker's certificate and name are checked
///   ca-file: /etc/gemello/pki/ca.crt
///   cert-file: /etc/gemello/pki/tower-duomo-01.crt   # client certificate, CN = agent id
///   key-file: /etc/gemello/pki/tower-duomo-01.key
/// broker-username: tower-duomo-01  # or MQTT username and password (sent inside TLS)
/// broker-password-file: /etc/gemello/broker-password
/// broker-insecure: false           # true allows plain mqtt:// to a broker on another machine
/// ```
///
/// Secrets are kept in files, never in the configuration text: the config hash an agent reports
/// and the configuration logged at start never carry them.
public struct BrokerAccess: Sendable, Equatable {
    public var url: String
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    public var username: String?
    public var passwordFile: String?
    /// Plain MQTT to a broker that is not on this machine, accepted explicitly (logged at every start).
    public var insecure: Bool
    /// Where these settings came from (for errors).
    public var file: String

    public init(url: String, caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil,
                username: String? = nil, passwordFile: String? = nil, insecure: Bool = false, file: String = "") {
        self.url = url
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.username = username
        self.passwordFile = passwordFile
        self.insecure = insecure
        self.file = file
    }

    /// The keys of a configuration's root section that belong here.
    public static let keys = ["broker", "broker-tls", "broker-username", "broker-password-file", "broker-insecure"]

    /// Reads `broker`, `broker-tls`, `broker-username`, `broker-password-file`, `broker-insecure`.
    public static func decode(_ root: ConfigSection, defaultURL: String) throws(CoreError) -> BrokerAccess {
        var access = BrokerAccess(url: try root.string("broker", default: defaultURL), file: root.file)
        if let tls = try root.section("broker-tls") {
            access.caFile = try tls.optionalString("ca-file").map { _ throws(CoreError) in try tls.path("ca-file") }
            access.certFile = try tls.optionalString("cert-file").map { _ throws(CoreError) in try tls.path("cert-file") }
            access.keyFile = try tls.optionalString("key-file").map { _ throws(CoreError) in try tls.path("key-file") }
            try tls.rejectUnknownKeys()
            if (access.certFile == nil) != (access.keyFile == nil) {
                throw tls.error(access.certFile == nil ? "cert-file" : "key-file", "a client certificate needs both cert-file and key-file",
                                fix: "set both broker-tls.cert-file and broker-tls.key-file (gemello agent enroll prints them)")
            }
        }
        access.username = try root.optionalString("broker-username")
        access.passwordFile = try root.optionalString("broker-password-file").map { _ throws(CoreError) in try root.path("broker-password-file") }
        if access.passwordFile != nil && access.username == nil {
            throw root.error("broker-password-file", "a password needs a username", fix: "add 'broker-username: <name>'")
        }
        access.insecure = try root.bool("broker-insecure", default: false)
        do { _ = try access.address() } catch {
            throw root.error("broker", error.message, value: access.url, fix: error.fix)
        }
        return access
    }

    /// The broker's address, checked against the security rules: `mqtts://` for any broker not on
    /// this machine unless `broker-insecure: true`; TLS files only with `mqtts://`.
    public func address() throws(CoreError) -> BrokerAddress {
        guard let address = BrokerAddress(url: url) else {
            throw CoreError(.invalidConfiguration, "not a broker URL", file: file, key: "broker", value: url,
                            fix: "write mqtts://host:port (TLS, default port 8883) or mqtt://127.0.0.1:1883 for a broker on this machine")
        }
        if !address.tls {
            if caFile != nil || certFile != nil {
                throw CoreError(.invalidConfiguration, "broker-tls is set but the broker URL is plain mqtt://", file: file, key: "broker",
                                value: url, fix: "use mqtts://\(address.host):8883 (the broker's TLS listener), or remove broker-tls")
            }
            if !address.isLoopback && !insecure {
                throw CoreError(.invalidConfiguration,
                                "plain MQTT to a broker on another machine sends readings and credentials in clear, and anyone on the path can publish as this client",
                                file: file, key: "broker", value: url,
                                fix: "use mqtts:// with broker-tls (gemello agent enroll prints the keys), or set 'broker-insecure: true' to accept the risk")
            }
        }
        return address
    }

    /// Set when this configuration runs without TLS to a broker on another machine: logged as a
    /// warning at every start.
    public var insecureWarning: String? {
        guard let address = BrokerAddress(url: url), !address.tls, !address.isLoopback else { return nil }
        return "INSECURE: plain MQTT to \(address) (broker-insecure: true). Readings, acks and any password cross the network in clear and anyone on the path can publish as this client. Use mqtts:// with broker-tls."
    }

    /// The credentials for libmosquitto, with the password read from its file now.
    public func credentials() throws(CoreError) -> MQTTCredentials {
        let address = try address()
        var credentials = MQTTCredentials(caFile: caFile, caPath: address.tls && caFile == nil ? "/etc/ssl/certs" : nil,
                                          certFile: certFile, keyFile: keyFile, username: username)
        if let passwordFile {
            let text: String
            do { text = try FileText.read(passwordFile) } catch {
                throw CoreError(.invalidConfiguration, "cannot read the broker password file: \(error.reason)", file: file,
                                key: "broker-password-file", value: passwordFile,
                                fix: "check the path and that this user may read it (mode 0600, owned by the service user)")
            }
            let password = String(text.prefix { $0 != "\n" && $0 != "\r" })
            guard !password.isEmpty else {
                throw CoreError(.invalidConfiguration, "the broker password file is empty", file: file, key: "broker-password-file",
                                value: passwordFile, fix: "write the password on the file's first line")
            }
            credentials.password = password
        }
        return credentials
    }
}
