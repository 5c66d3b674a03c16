/// A broker location parsed from `mqtt://host[:port]` (plain TCP, default port 1883) or
/// `mqtts://host[:port]` (TLS, default port 8883).
public struct BrokerAddress: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int
    /// `mqtts://`: the connection is TLS (1.2 or later), the broker's certificate and name checked.
    public let tls: Bool

    public init(host: String, port: Int, tls: Bool = false) {
        self.host = host
        self.port = port
        self.tls = tls
    }

    /// Parses `mqtt://host[:port]` or `mqtts://host[:port]`. Returns `nil` when malformed.
    public init?(url: String) {
        let tls: Bool
        let rest0: Substring
        if url.hasPrefix("mqtt://") {
            tls = false
            rest0 = url.dropFirst("mqtt://".count)
        } else if url.hasPrefix("mqtts://") {
            tls = true
            rest0 = url.dropFirst("mqtts://".count)
        } else {
            return nil
        }
        var rest = rest0
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@") else { return nil }
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else { return nil }
            var host = rest[..<colon]
            if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
            guard !host.isEmpty else { return nil }
            self.init(host: String(host), port: port, tls: tls)
        } else {
            var host = rest
            if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
            self.init(host: String(host), port: tls ? 8883 : 1883, tls: tls)
        }
    }

    /// True when the broker is on this machine (`localhost`, 127.0.0.0/8 or `::1`): the only
    /// place plain `mqtt://` is allowed without an explicit `broker-insecure: true`.
    public var isLoopback: Bool {
        let h = host.lowercased()
        return h == "localhost" || h == "::1" || h == "0:0:0:0:0:0:0:1" || h.hasPrefix("127.")
    }

    public var description: String { "\(tls ? "mqtts" : "mqtt")://\(host.contains(":") ? "[\(host)]" : host):\(port)" }
}
