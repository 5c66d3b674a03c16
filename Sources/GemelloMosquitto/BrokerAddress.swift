/// A broker location parsed from `mqtt://host:port` (the only scheme supported today).
public struct BrokerAddress: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `mqtt://host[:port]`; the port defaults to 1883. Returns `nil` when malformed.
    public init?(url: String) {
        let prefix = "mqtt://"
        guard url.hasPrefix(prefix) else { return nil }
        var rest = Substring(url.dropFirst(prefix.count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/") else { return nil }
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else { return nil }
            var host = rest[..<colon]
            if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
            guard !host.isEmpty else { return nil }
            self.init(host: String(host), port: port)
        } else {
            self.init(host: String(rest), port: 1883)
        }
    }

    public var description: String { "mqtt://\(host.contains(":") ? "[\(host)]" : host):\(port)" }
}
