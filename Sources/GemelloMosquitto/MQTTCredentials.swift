import CMosquitto

/// How a client proves who it is to the broker and checks that the broker is the right one.
///
/// With ``caFile`` set the connection is TLS 1.2 or later: the broker's certificate must chain to
/// that CA and name the host in the broker URL (libmosquitto checks the name; it is never turned
/// off here). ``certFile``/``keyFile`` add a client certificate (Gemello's agents: CN = agent id).
/// ``username``/``password`` are MQTT credentials, sent inside TLS. The password is held only in
/// memory; it never reaches a log line or an error message.
public struct MQTTCredentials: Sendable, Equatable {
    public var caFile: String?
    /// A folder of trusted CAs (hashed names, as /etc/ssl/certs), used when ``caFile`` is nil.
    public var caPath: String?
    public var certFile: String?
    public var keyFile: String?
    public var username: String?
    public var password: String?

    public init(caFile: String? = nil, caPath: String? = nil, certFile: String? = nil, keyFile: String? = nil,
                username: String? = nil, password: String? = nil) {
        self.caFile = caFile
        self.caPath = caPath
        self.certFile = certFile
        self.keyFile = keyFile
        self.username = username
        self.password = password
    }

    public var usesTLS: Bool { caFile != nil || caPath != nil }

    func apply(to handle: OpaquePointer) throws(MQTTError) {
        if usesTLS {
            let status = mosquitto_tls_set(handle, caFile, caFile == nil ? caPath : nil, certFile, keyFile, nil)
            if status != MOSQ_ERR_SUCCESS.rawValue {
                // libmosquitto checks the files are readable here; name them (never their contents).
                let files = [("CA file", caFile ?? caPath), ("certificate", certFile), ("key", keyFile)]
                    .compactMap { name, path in path.map { "\(name) \($0)" } }.joined(separator: ", ")
                throw MQTTError(.invalidArgument, operation: "set up TLS",
                                detail: "cannot read \(files): check the paths exist and this user may read them")
            }
            // SSL_VERIFY_PEER (1); "tlsv1.2" makes libmosquitto refuse SSLv3, TLS 1.0 and 1.1.
            try MQTTError.check(mosquitto_tls_opts_set(handle, 1, "tlsv1.2", nil), "set TLS options")
            try MQTTError.check(mosquitto_tls_insecure_set(handle, false), "require the broker's name in its certificate")
        }
        if let username {
            try MQTTError.check(mosquitto_username_pw_set(handle, username, password), "set username")
        }
    }

    /// A disconnect's reason: libmosquitto's text for `status`, then OpenSSL's line (if any) explained.
    static func reason(_ status: Int32, detail: String?) -> String {
        var reason = String(cString: mosquitto_strerror(status))
        guard let detail else { return reason }
        if reason.hasSuffix(".") { reason.removeLast() }
        return reason + ": " + explain(detail)
    }

    /// Turns OpenSSL's reason into what to check.
    static func explain(_ line: String) -> String {
        let l = line.lowercased()
        if l.contains("certificate verify failed") {
            return "\(line) (the broker's certificate does not chain to the configured CA, has expired, or does not name this host: check broker-tls.ca-file and the host in the broker URL)"
        }
        if l.contains("certificate expired") || l.contains("certificate has expired") {
            return "\(line) (a certificate has expired: re-issue it with 'gemello agent enroll')"
        }
        if l.contains("unknown ca") || l.contains("bad certificate") || l.contains("certificate required") {
            return "\(line) (the broker refused this client's certificate: check broker-tls.cert-file and key-file, or whether the agent was revoked)"
        }
        if l.contains("wrong version number") || l.contains("packet length too long") {
            return "\(line) (the port does not speak TLS: use mqtt:// or the broker's TLS port)"
        }
        return line
    }
}
