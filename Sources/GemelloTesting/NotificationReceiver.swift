import Foundation

/// A real HTTP receiver for NGSI-LD notifications and alert messages (Python's http.server):
/// records every POST (headers and body; a body that is not JSON, such as CAP XML, as text) as a
/// JSON line, answers 204. `stop()` and `start()` on the same port make an outage.
public final class NotificationReceiver: @unchecked Sendable {
    // @unchecked: `process` is replaced only by start/stop, which tests call from one task.
    public let port: Int
    public let log: URL
    private var process: Process?
    /// While stopped, the port is held (bound, not listening: connections are refused) so that no
    /// other test's server, run in parallel, takes it and answers in its place.
    private var held: PortReservation?

    static let script = """
        import http.server, json, sys
        port, path = int(sys.argv[1]), sys.argv[2]
        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
                try: record = {'body': json.loads(body)}
                except ValueError: record = {'raw': body.decode('utf-8', 'replace')}
                record.update(path=self.path, headers=dict(self.headers))
                with open(path, 'a') as f:
                    f.write(json.dumps(record) + '\\n')
                self.send_response(204); self.end_headers()
            def log_message(self, *args): pass
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        http.server.ThreadingHTTPServer(('127.0.0.1', port), H).serve_forever()
        """

    public init() throws {
        port = try FreePort.find()
        log = try Repository.temporaryFolder("receiver").appendingPathComponent("received.jsonl")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        try start()
    }

    public var url: String { "http://127.0.0.1:\(port)/notify" }

    public func start() throws {
        held?.release()
        held = nil
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", Self.script, String(port), log.path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        guard FreePort.waitUntilListening(port: port, timeout: 10) else { throw POSIXError(.ECONNREFUSED) }
    }

    /// SIGKILL: the endpoint is gone at once (connections refused).
    public func stop() {
        guard let p = process, p.isRunning else { return }
        kill(p.processIdentifier, SIGKILL)
        for _ in 0..<100 where p.isRunning { usleep(20_000) }
        process = nil
        held = try? FreePort.reserve(port: port)
    }

    /// Every POST so far: (headers, body) as JSON text, in arrival order.
    public func received() -> [(headers: [String: String], body: String)] {
        guard let text = try? String(contentsOf: log, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            let headers = (object["headers"] as? [String: String]) ?? [:]
            if let raw = object["raw"] as? String { return (headers, raw) }  // not JSON (a CAP alert's XML)
            guard let body = object["body"], let data = try? JSONSerialization.data(withJSONObject: body) else { return nil }
            return (headers, String(decoding: data, as: UTF8.self))
        }
    }

    deinit {
        stop()
        held?.release()
    }
}
