import GemelloCore
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Subscribes to a site-local MQTT broker (a LoRaWAN or Zigbee gateway's, a microcontroller's)
/// and turns its messages into readings: plain numbers, JSON (chosen paths, or every number),
/// SenML, or Influx line protocol; timestamps from the payload or the arrival.
///
/// Nothing is lost while the agent restarts: the session is persistent (clean session off, a
/// fixed client id), the subscription is QoS 1, and each message is acknowledged (PUBACK) only
/// once its readings are committed to the buffer, so the broker keeps and redelivers whatever the
/// agent had not stored. Delivery is therefore at least once: a message stored just before a
/// crash, not yet acknowledged, comes again. While the buffer is full the commit waits, no
/// acknowledgement goes out, and the broker stops sending at its in-flight limit.
///
/// MQTT 3.1.1 over plain TCP, spoken by ``MQTTSubscriberSession`` (a pure state machine) on a
/// thread of its own.
public struct MQTTSubscribeInput: Input {
    public let configuration: Configuration
    public let clock: any WallClock
    public var sensor: SensorInfo { configuration.sensor }
    public var canWait: Bool { true }

    public init(configuration: Configuration, clock: any WallClock) {
        self.configuration = configuration
        self.clock = clock
    }

    final class Shared: Sendable {
        let threads = ThreadGroup()
        var isStopping: Bool { threads.stopping.load(ordering: .relaxed) }
        let messages = Atomic<Int>(0)
        let readings = Atomic<Int>(0)
        let connections = Atomic<Int>(0)
    }

    public func run(into sink: some ReadingSink, resumingFrom checkpoint: Int64?) async throws -> InputSummary {
        let c = configuration
        var password: String?
        if let file = c.passwordFile {
            do { password = try FileText.read(file).trimmingCharacters(in: "\n\r") } catch {
                throw InputError("mqtt-subscribe '\(c.sensor.id)': cannot read password-file \(file): \(error.reason)")
            }
        }
        let shared = Shared()
        let box = InfluxListenerInput.SinkBox(sink)
        let clock = self.clock
        let credentials = password
        guard shared.threads.spawn({ Self.session(c, password: credentials, sink: box, clock: clock, shared: shared) }) else {
            throw InputError("mqtt-subscribe '\(c.sensor.id)': no thread for the connection")
        }
        await shared.threads.runUntilCancelled()
        return InputSummary([("connections", shared.connections.load(ordering: .relaxed)),
                             ("messages", shared.messages.load(ordering: .relaxed)),
                             ("readings", shared.readings.load(ordering: .relaxed))])
    }

    /// Connects, and reconnects with a growing pause (1 s to 30 s), until the input stops.
    static func session(_ c: Configuration, password: String?, sink: InfluxListenerInput.SinkBox, clock: any WallClock, shared: Shared) {
        var decoder = MQTTPayloadDecoder(mapper: ReadingMapper(sensorID: c.sensor.id, units: c.units))
        var pause = Duration.seconds(1)
        while !shared.isStopping {
            do {
                try connection(c, password: password, sink: sink, clock: clock, shared: shared, decoder: &decoder)
                pause = .seconds(1)
            } catch {
                sink.report(error)
            }
            let until = ContinuousClock.now + pause
            while ContinuousClock.now < until && !shared.isStopping { usleep(50_000) }
            pause = min(pause * 2, .seconds(30))
        }
    }

    /// One connection, from CONNECT to its end (the broker gone, a protocol error, the input stopping).
    static func connection(_ c: Configuration, password: String?, sink: InfluxListenerInput.SinkBox, clock: any WallClock,
                           shared: Shared, decoder: inout MQTTPayloadDecoder) throws(InputError) {
        let fd = try dial(c.host, c.port, timeout: .seconds(5))
        defer { close(fd) }
        var session = MQTTSubscriberSession()
        let keepAlive = UInt16(clamping: c.keepAlive.components.seconds)
        guard ListenSocket.writeAll(fd, MQTTSubscriberSession.connect(clientID: c.clientID, cleanSession: false,
                                                                     keepAliveSeconds: keepAlive, username: c.username, password: password)) else {
            throw InputError("mqtt-subscribe '\(c.sensor.id)': the broker at \(c.host):\(c.port) closed the connection")
        }
        var lastSent = ContinuousClock.now, lastHeard = ContinuousClock.now
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var pending: [(id: UInt16?, readings: [Reading])] = []
        var connected = false
        while !shared.isStopping {
            let readable = ListenSocket.readable(fd, milliseconds: pending.isEmpty ? 200 : 0)
            if readable {
                let count = read(fd, &buffer, buffer.count)
                guard count > 0 else { throw InputError("mqtt-subscribe '\(c.sensor.id)': the broker at \(c.host):\(c.port) closed the connection") }
                lastHeard = ContinuousClock.now
                let events: [MQTTSubscriberSession.Event]
                do { events = try session.received(buffer[0..<count]) } catch {
                    throw InputError("mqtt-subscribe '\(c.sensor.id)': \(error)")
                }
                for event in events {
                    switch event {
                    case .connected:
                        connected = true
                        shared.connections.add(1, ordering: .relaxed)
                        let subscribe = session.subscribe(c.subscriptions.map(\.filter))
                        guard ListenSocket.writeAll(fd, subscribe.bytes) else { throw InputError("mqtt-subscribe: the connection broke") }
                        lastSent = ContinuousClock.now
                        sink.report(nil)
                    case .refused(let code):
                        throw InputError("mqtt-subscribe '\(c.sensor.id)': the broker at \(c.host):\(c.port) refused the connection: \(Self.connackReason(code))")
                    case .subscribed(_, let granted):
                        if granted.contains(0x80) {
                            throw InputError("mqtt-subscribe '\(c.sensor.id)': the broker refused a subscription (\(c.subscriptions.map(\.filter).joined(separator: ", "))); check its ACL")
                        }
                    case .message(let topic, let payload, let id, _):
                        shared.messages.add(1, ordering: .relaxed)
                        var readings: [Reading] = []
                        if let subscription = c.subscriptions.first(where: { MQTTSubscriberSession.matches($0.filter, topic) }) {
                            do { readings = try decoder.readings(subscription, topic: topic, payload: payload, arrival: clock.nowMilliseconds()).readings } catch {
                                sink.report(error)  // acknowledged all the same: a bad payload would come back forever
                            }
                        }
                        pending.append((id, readings))
                    case .pong:
                        break
                    }
                }
                if pending.count < c.maxBatch { continue }  // more may be waiting: read it first, commit together
            }
            if !pending.isEmpty {
                // Store, then acknowledge: the PUBACKs go out only once the readings are on disk.
                let readings = pending.flatMap(\.readings)
                if !readings.isEmpty {
                    let stored = Blocking.wait { () -> String? in
                        do { try await sink.commit(readings); return nil } catch { return "\(error)" }
                    }
                    if let failure = stored { throw InputError("mqtt-subscribe '\(c.sensor.id)': not stored, not acknowledged (the broker redelivers): \(failure)") }
                    shared.readings.add(readings.count, ordering: .relaxed)
                }
                let acks = pending.compactMap(\.id).flatMap { MQTTSubscriberSession.puback($0) }
                pending.removeAll(keepingCapacity: true)
                if !acks.isEmpty {
                    guard ListenSocket.writeAll(fd, acks) else { throw InputError("mqtt-subscribe: the connection broke before the acknowledgements") }
                    lastSent = ContinuousClock.now
                }
            }
            let now = ContinuousClock.now
            if connected && now - lastSent >= c.keepAlive / 2 {
                guard ListenSocket.writeAll(fd, MQTTSubscriberSession.pingreq) else { throw InputError("mqtt-subscribe: the connection broke") }
                lastSent = now
            }
            if now - lastHeard > c.keepAlive * 1.5 {
                throw InputError("mqtt-subscribe '\(c.sensor.id)': nothing from the broker at \(c.host):\(c.port) for \(c.keepAlive * 1.5); reconnecting")
            }
        }
        _ = ListenSocket.writeAll(fd, MQTTSubscriberSession.disconnect)
    }

    static func connackReason(_ code: UInt8) -> String {
        switch code {
        case 1: return "unacceptable protocol version (the broker does not speak MQTT 3.1.1)"
        case 2: return "client id refused (set client-id)"
        case 3: return "server unavailable"
        case 4: return "bad username or password (check username and password-file)"
        case 5: return "not authorized (check the broker's ACL for this client)"
        default: return "return code \(code)"
        }
    }

    /// A TCP connection to host:port (a name resolved with getaddrinfo), within `timeout`.
    static func dial(_ host: String, _ port: Int, timeout: Duration) throws(InputError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let first = result else {
            throw InputError("cannot resolve the broker's host '\(host)': \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), first.pointee.ai_protocol)
        guard fd >= 0 else { throw InputError("cannot make a socket: \(String(cString: strerror(errno)))") }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        var outcome = connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen)
        if outcome != 0 && errno == EINPROGRESS {
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ms = Int32(timeout.components.seconds * 1000)
            if poll(&p, 1, ms) == 1 {
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                outcome = error == 0 ? 0 : -1
                errno = error
            } else {
                errno = ETIMEDOUT
            }
        }
        guard outcome == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw InputError("cannot reach the broker at \(host):\(port): \(reason)")
        }
        _ = fcntl(fd, F_SETFL, flags)
        return fd
    }
}
