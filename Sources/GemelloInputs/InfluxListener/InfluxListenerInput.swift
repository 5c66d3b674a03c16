import GemelloCore
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Takes Influx line protocol pushed to the agent: over HTTP (`POST /write` as InfluxDB 1.x,
/// `POST /api/v2/write` as 2.x, so Telegraf's `outputs.influxdb` and `outputs.influxdb_v2` and
/// every Influx client library can feed it), and over plain TCP and UDP (newline-separated lines,
/// as Telegraf's `outputs.socket_writer`).
///
/// A write is answered `204` only once its readings are committed to the buffer (the commit
/// notification), so a client that got its 204 can forget the data. While the buffer is full,
/// HTTP writes get `503` with `Retry-After` and are not taken in; TCP connections are simply not
/// read (the sender blocks on TCP's own flow control); UDP has no way to push back (the kernel's
/// socket buffer holds what it can). It can wait: nothing taken in is dropped.
///
/// Threads: one per listening socket and one per connection (blocking sockets, each wait at most
/// 200 ms so the input stops promptly); async work (the commit) is awaited from those threads.
public struct InfluxListenerInput: Input {
    public let configuration: Configuration
    public let clock: any WallClock
    public var sensor: SensorInfo { configuration.sensor }
    public var canWait: Bool { true }
    /// Told the ports actually bound (tests listen on port 0).
    let bound: (@Sendable (_ http: Int?, _ tcp: Int?, _ udp: Int?) -> Void)?

    public init(configuration: Configuration, clock: any WallClock,
                bound: (@Sendable (_ http: Int?, _ tcp: Int?, _ udp: Int?) -> Void)? = nil) {
        self.configuration = configuration
        self.clock = clock
        self.bound = bound
    }

    /// Shared by the listener's threads.
    final class Shared: Sendable {
        let threads = ThreadGroup()
        var isStopping: Bool { threads.stopping.load(ordering: .relaxed) }
        let connections = Atomic<Int>(0)
        let requests = Atomic<Int>(0)
        let readings = Atomic<Int>(0)
    }

    public func run(into sink: some ReadingSink, resumingFrom checkpoint: Int64?) async throws -> InputSummary {
        let c = configuration
        let token: String?
        if let file = c.tokenFile {
            do { token = try FileText.read(file).trimmingCharacters(in: " \n\r\t") } catch {
                throw InputError("influx-listener '\(c.sensor.id)': cannot read token-file \(file): \(error.reason)")
            }
            guard token?.isEmpty == false else { throw InputError("influx-listener '\(c.sensor.id)': token-file \(file) is empty") }
        } else {
            token = nil
        }
        let handler = InfluxWriteHandler(token: token, maxBody: c.maxBody, retryAfter: c.retryAfter,
                                         mapper: ReadingMapper(sensorID: c.sensor.id, units: c.units, nameTags: c.nameTags), clock: clock)
        var sockets: [Int32] = []
        defer { for fd in sockets { close(fd) } }
        func open(_ address: ListenAddress?, udp: Bool) throws(InputError) -> Int32? {
            guard let address else { return nil }
            let fd = try ListenSocket.open(address, udp: udp)
            sockets.append(fd)
            return fd
        }
        let httpFD = try open(c.http, udp: false), tcpFD = try open(c.tcp, udp: false), udpFD = try open(c.udp, udp: true)
        bound?(httpFD.map(ListenSocket.port), tcpFD.map(ListenSocket.port), udpFD.map(ListenSocket.port))
        let shared = Shared()
        let sinkBox = SinkBox(sink)
        if let httpFD { startAcceptor(httpFD, shared: shared) { fd in Self.serveHTTP(fd, handler: handler, sink: sinkBox, shared: shared, c: c) } }
        if let tcpFD { startAcceptor(tcpFD, shared: shared) { fd in Self.serveLines(fd, handler: handler, sink: sinkBox, shared: shared, c: c) } }
        if let udpFD { shared.threads.spawn { Self.serveUDP(udpFD, handler: handler, sink: sinkBox, shared: shared, c: c) } }

        // Until cancelled (the agent stops); then every thread is told and waited for.
        await shared.threads.runUntilCancelled()
        return InputSummary([("requests", shared.requests.load(ordering: .relaxed)), ("readings", shared.readings.load(ordering: .relaxed))])
    }

    /// A sink of any type, passed to threads.
    struct SinkBox: Sendable {
        let commit: @Sendable ([Reading]) async throws -> Void
        let isPaused: @Sendable () -> Bool
        let report: @Sendable ((any Error)?) -> Void
        let sink: any ReadingSink

        init(_ sink: some ReadingSink) {
            self.sink = sink
            commit = { try await sink.commit($0) }
            isPaused = { sink.isPaused }
            report = { sink.report(error: $0) }
        }
    }

    private func startAcceptor(_ listener: Int32, shared: Shared, serve: @escaping @Sendable (Int32) -> Void) {
        let maxConnections = configuration.maxConnections
        shared.threads.spawn {
            while !shared.isStopping {
                guard ListenSocket.readable(listener, milliseconds: 200) else { continue }
                let fd = accept(listener, nil, nil)
                guard fd >= 0 else { continue }
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)  // not inherited by a program the agent runs
                guard shared.connections.load(ordering: .relaxed) < maxConnections else {
                    _ = ListenSocket.writeAll(fd, HTTPResponse.error(503, "unavailable", "too many connections").serialized(keepAlive: false))
                    close(fd)
                    continue
                }
                shared.connections.add(1, ordering: .relaxed)
                let started = shared.threads.spawn {
                    serve(fd)
                    close(fd)
                    shared.connections.subtract(1, ordering: .relaxed)
                }
                if !started {
                    close(fd)
                    shared.connections.subtract(1, ordering: .relaxed)
                }
            }
        }
    }

    /// One HTTP/1.1 connection: requests in order (keep-alive, pipelining), `100 Continue` when
    /// asked (or a 503 at once while the buffer is full), idle connections closed after
    /// `idle-timeout`, a request head or body that trickles in slower than that refused.
    static func serveHTTP(_ fd: Int32, handler: InfluxWriteHandler, sink: SinkBox, shared: Shared, c: Configuration) {
        var parser = HTTPRequestParser(maxBody: c.maxBody)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var lastProgress = ContinuousClock.now
        var pending: [UInt8] = []
        while !shared.isStopping {
            var outcome = parser.feed(pending)
            pending = []
            while true {
                switch outcome {
                case .request(let request):
                    shared.requests.add(1, ordering: .relaxed)
                    let response = Blocking.wait { await handler.respond(to: request, sink: sink.sink) }
                    shared.readings.add(response.readings, ordering: .relaxed)
                    guard ListenSocket.writeAll(fd, response.serialized(keepAlive: request.keepAlive)), request.keepAlive else { return }
                    outcome = parser.feed([])
                    lastProgress = ContinuousClock.now
                    continue
                case .refuse(let status, let reason):
                    _ = ListenSocket.writeAll(fd, HTTPResponse.error(status, "invalid", reason).serialized(keepAlive: false))
                    return
                case .needMore(let expectsContinue):
                    if expectsContinue {
                        let answer = sink.isPaused() ? handler.busy : HTTPResponse(status: 100)
                        guard ListenSocket.writeAll(fd, answer.serialized(keepAlive: true)), answer.status == 100 else { return }
                    }
                }
                break
            }
            guard ListenSocket.readable(fd, milliseconds: 200) else {
                if ContinuousClock.now - lastProgress > c.idleTimeout { return }
                continue
            }
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { return }
            pending = Array(buffer[0..<count])
            lastProgress = ContinuousClock.now
        }
    }

    /// One TCP connection of newline-separated lines. Complete lines are committed as they come
    /// (while the buffer is full the commit waits, and so does the sender); a malformed line is
    /// reported and skipped, as Telegraf's socket listener does.
    static func serveLines(_ fd: Int32, handler: InfluxWriteHandler, sink: SinkBox, shared: Shared, c: Configuration) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var partial: [UInt8] = []
        var lastProgress = ContinuousClock.now
        while !shared.isStopping {
            guard ListenSocket.readable(fd, milliseconds: 200) else {
                if ContinuousClock.now - lastProgress > c.idleTimeout { return }
                continue
            }
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { break }
            lastProgress = ContinuousClock.now
            partial.append(contentsOf: buffer[0..<count])
            guard let lastNewline = partial.lastIndex(of: 0x0A) else {
                if partial.count > c.maxBody { return }  // a "line" without end: not line protocol
                continue
            }
            let lines = Array(partial[...lastNewline])
            partial.removeFirst(lastNewline + 1)
            commitLines(lines, handler: handler, sink: sink, shared: shared, c: c)
        }
        if !partial.isEmpty { commitLines(partial, handler: handler, sink: sink, shared: shared, c: c) }
    }

    static func serveUDP(_ fd: Int32, handler: InfluxWriteHandler, sink: SinkBox, shared: Shared, c: Configuration) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !shared.isStopping {
            guard ListenSocket.readable(fd, milliseconds: 200) else { continue }
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { continue }
            commitLines(Array(buffer[0..<count]), handler: handler, sink: sink, shared: shared, c: c)
        }
    }

    /// Maps and commits lines one by one where a line is bad (the good ones still count).
    static func commitLines(_ bytes: [UInt8], handler: InfluxWriteHandler, sink: SinkBox, shared: Shared, c: Configuration) {
        let now = handler.clock.nowMilliseconds()
        var readings: [Reading] = []
        for line in bytes.split(separator: 0x0A) {
            do {
                let outcome = try handler.mapper.withLock { mapper throws(InputError) in
                    try mapper.map(Array(line), format: .influx, now: now, precision: c.precision)
                }
                readings += outcome.readings
            } catch {
                sink.report(error)
            }
        }
        guard !readings.isEmpty else { return }
        let batch = readings
        let stored = Blocking.wait { () -> Bool in
            do { try await sink.commit(batch); return true } catch { sink.report(error); return false }
        }
        if stored { shared.readings.add(batch.count, ordering: .relaxed) }
    }
}
