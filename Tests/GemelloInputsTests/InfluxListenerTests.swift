import Foundation
import GemelloCore
@testable import GemelloInputs
import GemelloTesting
import Synchronization
import Testing

/// The HTTP request parser, without sockets.
@Suite struct HTTPRequestParserTests {
    @Test func contentLengthKeepAliveAndPipelining() {
        var parser = HTTPRequestParser(maxBody: 1024)
        let two = "POST /write?db=x&precision=s HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\ncpu v=1 1GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n"
        guard case .request(let first) = parser.feed(Array(two.utf8)) else { Issue.record("first request"); return }
        #expect(first.method == "POST" && first.path == "/write" && first.query == ["db": "x", "precision": "s"])
        #expect(first.body == Array("cpu v=1 1".utf8) && first.keepAlive)
        guard case .request(let second) = parser.feed([]) else { Issue.record("pipelined request"); return }
        #expect(second.path == "/ping" && !second.keepAlive)
        #expect(parser.feed([]) == .needMore(expectsContinue: false))
    }

    @Test func chunkedBodiesByteByByteAndExpectContinue() {
        var parser = HTTPRequestParser(maxBody: 1024)
        let head = "POST /api/v2/write HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
        #expect(parser.feed(Array(head.utf8)) == .needMore(expectsContinue: true))
        var last: HTTPRequestParser.Outcome = .needMore(expectsContinue: false)
        for byte in Array("4;ext=1\r\ncpu \r\n5\r\nv=1.5\r\n0\r\nX-Trailer: y\r\n\r\n".utf8) {
            last = parser.feed([byte])
            if case .needMore(let expects) = last { #expect(!expects, "100 Continue is asked for once") }
        }
        guard case .request(let request) = last else { Issue.record("chunked request"); return }
        #expect(String(decoding: request.body, as: UTF8.self) == "cpu v=1.5")
    }

    @Test func limitsAndGarbage() {
        var big = HTTPRequestParser(maxBody: 10)
        #expect(big.feed(Array("POST /write HTTP/1.1\r\nContent-Length: 11\r\n\r\n".utf8)) == .refuse(status: 413, reason: "body of 11 bytes is over the 10-byte limit"))
        var chunkedBig = HTTPRequestParser(maxBody: 10)
        guard case .refuse(413, _) = chunkedBig.feed(Array("POST /write HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n".utf8)) else {
            Issue.record("chunked over the limit"); return
        }
        var garbage = HTTPRequestParser(maxBody: 10)
        guard case .refuse(400, _) = garbage.feed(Array("\u{16}\u{03}\u{01}\r\n\r\n".utf8)) else { Issue.record("TLS hello"); return }
        var endless = HTTPRequestParser(maxBody: 10)
        guard case .refuse(431, _) = endless.feed(Array(repeating: UInt8(ascii: "a"), count: 40_000)) else { Issue.record("endless head"); return }
    }
}

/// The write handler's answers, without sockets.
@Suite struct InfluxWriteHandlerTests {
    static func handler(token: String? = "s3cret") -> InfluxWriteHandler {
        InfluxWriteHandler(token: token, maxBody: 1 << 20, retryAfter: .seconds(5),
                           mapper: ReadingMapper(sensorID: "site", units: ["rectifier_voltage": "VLT"]), clock: SystemWallClock())
    }

    static func request(_ path: String, _ body: String, headers: [String: String] = ["authorization": "Token s3cret"], method: String = "POST") -> HTTPRequest {
        let parts = path.split(separator: "?", maxSplits: 1)
        var query: [String: String] = [:]
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") { let kv = pair.split(separator: "="); query[String(kv[0])] = String(kv[1]) }
        }
        return HTTPRequest(method: method, path: String(parts[0]), query: query, headers: headers, body: Array(body.utf8))
    }

    @Test func writesAreCommittedBeforeThe204() async throws {
        let sink = RecordingSink()
        let response = await Self.handler().respond(to: Self.request("/api/v2/write?precision=s", "rectifier voltage=53.5,current=12i 1764445200\n"), sink: sink)
        #expect(response.status == 204 && response.readings == 2)
        #expect(sink.all.map(\.series.name).sorted() == ["site/rectifier_current", "site/rectifier_voltage"])
        #expect(sink.all.allSatisfy { $0.timestamp == 1_764_445_200_000 })
        #expect(sink.all.first { $0.series.attribute == "rectifier_voltage" }?.series.unit == "VLT")
        let gz = try Gzip.compress(Array("level value=3.25\n".utf8))
        var compressed = Self.request("/write?p=s3cret", "", headers: ["content-encoding": "gzip"])
        compressed.body = gz
        #expect(await Self.handler().respond(to: compressed, sink: sink).status == 204)
        #expect(sink.all.last?.series.name == "site/level" && sink.all.last?.value == 3.25)
    }

    @Test func refusals() async {
        let sink = RecordingSink()
        let h = Self.handler()
        #expect(await h.respond(to: Self.request("/api/v2/write", "a v=1", headers: [:]), sink: sink).status == 401)
        #expect(await h.respond(to: Self.request("/api/v2/write", "a v=1", headers: ["authorization": "Token wrong"]), sink: sink).status == 401)
        let basic = "Basic " + Data("telegraf:s3cret".utf8).base64EncodedString()
        #expect(await h.respond(to: Self.request("/write", "a v=1", headers: ["authorization": basic]), sink: sink).status == 204)
        let bad = await h.respond(to: Self.request("/api/v2/write", "a v=1\nb v=oops\n"), sink: sink)
        #expect(bad.status == 400 && String(decoding: bad.body, as: UTF8.self).contains("line 2"))
        #expect(await h.respond(to: Self.request("/api/v2/write?precision=h", "a v=1"), sink: sink).status == 400)
        #expect(await h.respond(to: Self.request("/query", ""), sink: sink).status == 404)
        #expect(await h.respond(to: Self.request("/api/v2/write", "", method: "GET"), sink: sink).status == 405)
        #expect(sink.all.count == 1, "only the Basic-authenticated write was taken")
        sink.paused.store(true, ordering: .relaxed)
        let busy = await h.respond(to: Self.request("/api/v2/write", "a v=2"), sink: sink)
        #expect(busy.status == 503 && busy.headers.contains { $0.0 == "Retry-After" && $0.1 == "5" })
        #expect(sink.all.count == 1)
    }
}

/// A running listener fed by real clients: Python's influxdb-client (v2 API, with a token),
/// a v1 write, plain TCP and UDP; then a full buffer answered 503 to the real client.
@Suite(.serialized) struct InfluxListenerTests {
    /// A Python client, run off the cooperative pool: it talks to the listener under test, whose
    /// answers need a cooperative thread.
    static func python(_ script: String) async throws -> (status: Int32, output: String) {
        try await runProgram("/usr/bin/env", ["python3", "-c", script])
    }

    @Test(.timeLimit(.minutes(1)))
    func realClientsOverHTTPTCPAndUDP() async throws {
        let folder = try Repository.temporaryFolder("influx-listener")
        let tokenFile = folder.appendingPathComponent("token")
        try "s3cret\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        let configuration = try InputFixtures.input("""
            - type: influx-listener
              sensor: site
              http: 127.0.0.1:0
              tcp: 127.0.0.1:0
              udp: 127.0.0.1:0
              token-file: \(tokenFile.path)
              precision: s
              name-tags: [rectifier]
              units:
                rectifier_voltage_r1: VLT
            """)
        let ports = Mutex<(Int?, Int?, Int?)>((nil, nil, nil))
        let input = InfluxListenerInput(configuration: try #require(configuration.options as? InfluxListenerInput.Configuration),
                                        clock: SystemWallClock()) { h, t, u in ports.withLock { $0 = (h, t, u) } }
        let sink = RecordingSink()
        let task = Task { try await input.run(into: sink) }
        defer { task.cancel() }
        var bound: (Int?, Int?, Int?) = (nil, nil, nil)
        for _ in 0..<100 where bound.0 == nil { try await Task.sleep(for: .milliseconds(20)); bound = ports.withLock { $0 } }
        let (http, tcp, udp) = (try #require(bound.0), try #require(bound.1), try #require(bound.2))

        let client = try await Self.python("""
            import socket, urllib.request
            from influxdb_client import InfluxDBClient, Point, WritePrecision
            from influxdb_client.client.write_api import SYNCHRONOUS
            with InfluxDBClient(url="http://127.0.0.1:\(http)", token="s3cret", org="gemello") as c:
                assert c.ping(), "ping"
                w = c.write_api(write_options=SYNCHRONOUS)
                w.write(bucket="site", record=[Point("rectifier").tag("rectifier", "r1").field("voltage", 53.5).field("current", 12).time(1764445200, WritePrecision.S)])
                w.write(bucket="site", record="level,rectifier=r1 value=1.5 1764445201", write_precision=WritePrecision.S)
            r = urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:\(http)/write?db=x&precision=s&p=s3cret", data=b"door,rectifier=r1 open=true 1764445202\\n", method="POST"))
            assert r.status == 204, r.status
            s = socket.create_connection(("127.0.0.1", \(tcp))); s.sendall(b"tcp,rectifier=r1 v=1 1764445203\\ntcp,rectifier=r1 v=2 1764445204\\nbroken line\\n"); s.close()
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b"udp,rectifier=r1 v=7 1764445205\\n", ("127.0.0.1", \(udp)))
            print("ok")
            """)
        #expect(client.status == 0, "\(client.output)")
        for _ in 0..<100 where sink.all.count < 7 { try await Task.sleep(for: .milliseconds(20)) }
        let got = Dictionary(sink.all.map { (String($0.series.attribute), $0.value) }, uniquingKeysWith: { _, later in later })
        #expect(got == ["rectifier_voltage_r1": 53.5, "rectifier_current_r1": 12, "level_r1": 1.5, "door_open_r1": 1, "tcp_v_r1": 2, "udp_v_r1": 7])
        #expect(sink.all.count == 7)
        #expect(sink.all.first { $0.series.attribute == "rectifier_voltage_r1" }?.series.unit == "VLT")
        #expect(sink.outcomes.withLock { $0 }.contains { $0?.contains("line 1") == true }, "the broken TCP line is reported")

        // A full buffer: the real client gets 503 with Retry-After, and nothing is taken.
        sink.paused.store(true, ordering: .relaxed)
        let refused = try await Self.python("""
            from influxdb_client import InfluxDBClient
            from influxdb_client.client.write_api import SYNCHRONOUS
            from influxdb_client.rest import ApiException
            with InfluxDBClient(url="http://127.0.0.1:\(http)", token="s3cret", org="gemello", retries=0) as c:
                try:
                    c.write_api(write_options=SYNCHRONOUS).write(bucket="site", record="late value=1")
                    print("accepted")
                except ApiException as e:
                    print(e.status, e.headers.get("Retry-After"))
            """)
        #expect(refused.output.trimmingCharacters(in: .whitespacesAndNewlines) == "503 5", "\(refused.output)")
        #expect(sink.all.count == 7)
        task.cancel()
        let summary = try await task.value
        #expect(summary["readings"] == 7)
    }
}
