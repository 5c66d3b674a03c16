import GemelloCore
import Synchronization

/// An HTTP response, serialized for the wire.
struct HTTPResponse: Sendable, Equatable {
    var status: Int
    var headers: [(String, String)] = []
    var body: [UInt8] = []
    /// Readings a write committed (not sent; for the input's counters).
    var readings = 0

    static func == (a: HTTPResponse, b: HTTPResponse) -> Bool {
        a.status == b.status && a.body == b.body && a.headers.map(\.0) == b.headers.map(\.0) && a.headers.map(\.1) == b.headers.map(\.1)
    }

    static let reasons: [Int: String] = [
        100: "Continue", 200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
        405: "Method Not Allowed", 413: "Payload Too Large", 415: "Unsupported Media Type", 431: "Request Header Fields Too Large",
        500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
    ]

    /// InfluxDB's error body: `{"code": "...", "message": "..."}`.
    static func error(_ status: Int, _ code: String, _ message: String, headers: [(String, String)] = []) -> HTTPResponse {
        var writer = JSONWriter()
        writer.field("code", code)
        writer.field("message", message)
        return HTTPResponse(status: status, headers: [("Content-Type", "application/json; charset=utf-8")] + headers,
                            body: Array(writer.finished().utf8))
    }

    func serialized(keepAlive: Bool) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(Self.reasons[status] ?? "Status")\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "X-Influxdb-Version: 1.8.10\r\nX-Influxdb-Build: OSS\r\n"
        if status != 100 {
            head += "Content-Length: \(body.count)\r\n"
            if !keepAlive { head += "Connection: close\r\n" }
        }
        return Array((head + "\r\n").utf8) + body
    }
}

/// What the listener answers, as a function of the request (tested without sockets): the
/// InfluxDB 1.x and 2.x write endpoints, `/ping` and `/health`; tokens checked; 204 only once the
/// readings are committed to the buffer; 503 with `Retry-After` while it is full.
final class InfluxWriteHandler: Sendable {
    let token: String?
    let maxBody: Int
    let retryAfter: Duration
    let mapper: Mutex<ReadingMapper>
    let clock: any WallClock

    init(token: String?, maxBody: Int, retryAfter: Duration, mapper: ReadingMapper, clock: any WallClock) {
        self.token = token
        self.maxBody = maxBody
        self.retryAfter = retryAfter
        self.mapper = Mutex(mapper)
        self.clock = clock
    }

    var busy: HTTPResponse {
        .error(503, "unavailable", "the agent's buffer is full; retry later (nothing of this write was taken)",
               headers: [("Retry-After", "\(max(1, retryAfter.components.seconds))")])
    }

    func respond(to request: HTTPRequest, sink: some ReadingSink) async -> HTTPResponse {
        switch (request.method, request.path) {
        case ("GET", "/ping"), ("HEAD", "/ping"):
            return HTTPResponse(status: 204)
        case ("GET", "/health"):
            var writer = JSONWriter()
            writer.field("name", "gemello-agent influx-listener")
            writer.field("status", sink.isPaused ? "fail" : "pass")
            writer.field("message", sink.isPaused ? "buffer full: writes are refused until it has room" : "ready for writes")
            return HTTPResponse(status: sink.isPaused ? 503 : 200, headers: [("Content-Type", "application/json; charset=utf-8")],
                                body: Array(writer.finished().utf8))
        case ("POST", "/write"), ("POST", "/api/v2/write"):
            return await write(request, sink: sink)
        case (_, "/write"), (_, "/api/v2/write"), (_, "/ping"), (_, "/health"):
            return .error(405, "method not allowed", "\(request.method) is not allowed on \(request.path)", headers: [("Allow", request.path.hasSuffix("write") ? "POST" : "GET")])
        default:
            return .error(404, "not found", "no such endpoint: \(request.path) (writes go to /write or /api/v2/write)")
        }
    }

    private func write(_ request: HTTPRequest, sink: some ReadingSink) async -> HTTPResponse {
        guard authorized(request) else {
            return .error(401, "unauthorized", "missing or wrong token (Authorization: Token <token>, or the v1 'p' parameter)",
                          headers: [("WWW-Authenticate", "Token")])
        }
        if sink.isPaused { return busy }
        let precisionText = request.query["precision"] ?? "ns"
        guard let precision = InfluxLineProtocol.Precision(influx: precisionText == "n" ? "ns" : precisionText) else {
            return .error(400, "invalid", "precision '\(precisionText)' is not one of ns, us, ms, s")
        }
        var body = request.body
        switch request.headers["content-encoding"]?.lowercased() {
        case nil, "identity": break
        case "gzip":
            do { body = try Gzip.decompress(body, limit: maxBody) } catch {
                return .error(400, "invalid", "\(error.message)")
            }
        case let other?:
            return .error(415, "unsupported media type", "Content-Encoding '\(other)' is not supported (use gzip or identity)")
        }
        let now = clock.nowMilliseconds()
        let outcome: ReadingMapper.Outcome
        do {
            outcome = try mapper.withLock { mapper throws(InputError) in try mapper.map(body, format: .influx, now: now, precision: precision) }
        } catch {
            sink.report(error: error)
            return .error(400, "invalid", error.message)
        }
        do {
            if !outcome.readings.isEmpty { try await sink.commit(outcome.readings) }
        } catch {
            return .error(500, "internal error", "the readings could not be stored in the agent's buffer: \(error)")
        }
        sink.report(error: nil)
        return HTTPResponse(status: 204, readings: outcome.readings.count)
    }

    private func authorized(_ request: HTTPRequest) -> Bool {
        guard let token else { return true }
        var offered: [String] = []
        if let header = request.headers["authorization"] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2 {
                switch parts[0].lowercased() {
                case "token", "bearer": offered.append(String(parts[1]))
                case "basic":
                    if let decoded = Base64.decode(String(parts[1])), let colon = decoded.firstIndex(of: UInt8(ascii: ":")) {
                        offered.append(String(decoding: decoded[decoded.index(after: colon)...], as: UTF8.self))
                    }
                default: break
                }
            }
        }
        if let p = request.query["p"] { offered.append(p) }
        return offered.contains { Self.constantTimeEqual($0, token) }
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<min(x.count, y.count) { difference |= x[i] ^ y[i] }
        return difference == 0
    }
}

/// RFC 4648 base64 decoding (HTTP Basic credentials).
enum Base64 {
    static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        for c in text.utf8 where c != UInt8(ascii: "=") {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(c - 65)
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(c - 71)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(c + 4)
            case UInt8(ascii: "+"): values.append(62)
            case UInt8(ascii: "/"): values.append(63)
            default: return nil
            }
        }
        var out: [UInt8] = []
        var i = 0
        while i + 1 < values.count {
            out.append(values[i] << 2 | values[i + 1] >> 4)
            if i + 2 < values.count { out.append(values[i + 1] << 4 | values[i + 2] >> 2) }
            if i + 3 < values.count { out.append(values[i + 2] << 6 | values[i + 3]) }
            i += 4
        }
        return out
    }
}
