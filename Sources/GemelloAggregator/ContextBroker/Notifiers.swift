import GemelloCore
import Foundation
import GemelloMosquitto
import GemelloNGSILD
import Logging
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// POSTs notifications over HTTP(S); any status outside 2xx is a failure.
struct HTTPNotifier: Sendable {
    let timeout: Double
    struct Failure: Error, CustomStringConvertible { let description: String }

    func post(_ body: [UInt8], headers: [(String, String)], to uri: String) async throws {
        guard let url = URL(string: uri) else { throw Failure(description: "not a URL: \(uri)") }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = "POST"
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        let data = Data(body)
        let status: Int
        do {
            let (_, response) = try await URLSession.shared.upload(for: request, from: data)
            status = (response as? HTTPURLResponse)?.statusCode ?? 0
        } catch {
            throw Failure(description: (error as NSError).localizedDescription)
        }
        guard (200..<300).contains(status) else { throw Failure(description: "HTTP \(status)") }
    }
}

/// One MQTT client per broker named by `mqtt://host:port/topic` endpoints; a notification counts
/// as delivered when the broker acknowledged it (QoS 1 PUBACK). The NGSI-LD MQTT binding's
/// payload: `{"metadata": {headers}, "body": notification}`.
final class MQTTNotifiers: Sendable {
    struct Failure: Error, CustomStringConvertible { let description: String }

    final class Connection: Sendable {
        let client: MQTTClient
        let connected = Atomic<Bool>(false)
        /// By message id: the publish waiting for its PUBACK, and when it was sent.
        let waiting = Mutex<[Int32: (sentAt: ContinuousClock.Instant, continuation: CheckedContinuation<Void, any Error>)]>([:])
        let acked = Mutex<Set<Int32>>([])
        let task: Mutex<Task<Void, Never>?> = Mutex(nil)

        init(client: MQTTClient) { self.client = client }

        /// Fails every publish still waiting on this connection (they stay queued and are retried).
        func failAll(_ reason: String) {
            let pending = waiting.withLock { w -> [CheckedContinuation<Void, any Error>] in
                defer { w.removeAll() }
                return w.values.map(\.continuation)
            }
            for c in pending { c.resume(throwing: Failure(description: reason)) }
        }
    }

    private let connections = Mutex<[String: Connection]>([:])
    private let logger: Logger
    /// The CA `mqtts://` endpoints' brokers must chain to (`subscriptions.mqtt-ca-file`); nil: the system's CAs.
    private let caFile: String?

    init(logger: Logger, caFile: String? = nil, ackTimeout: Duration = .seconds(10)) {
        self.logger = logger
        self.caFile = caFile
        self.ackTimeout = ackTimeout
    }

    func publish(_ notification: String, headers: [(String, String)], endpoint: Subscription.Endpoint) async throws {
        // mqtt://host:port/topic, or mqtts:// (TLS 1.2+, the broker's certificate checked against the system's CAs).
        let scheme = endpoint.uri.hasPrefix("mqtts://") ? "mqtts://" : "mqtt://"
        let rest = endpoint.uri.dropFirst(scheme.count)
        guard let slash = rest.firstIndex(of: "/") else { throw Failure(description: "\(endpoint.uri) names no topic") }
        let hostPort = String(rest[..<slash])
        let topic = String(rest[rest.index(after: slash)...])
        guard !topic.isEmpty, let address = BrokerAddress(url: scheme + hostPort) else {
            throw Failure(description: "\(endpoint.uri) is not mqtt(s)://host:port/topic")
        }
        var metadata: [String: JSON] = [:]
        for (k, v) in headers { metadata[k] = .string(v) }
        let payload = "{\"metadata\":" + JSON.object(metadata).serialized + ",\"body\":" + notification + "}"
        try await publish(payload, topic: topic, address: address,
                          credentials: { [caFile] in
                              guard address.tls else { return MQTTCredentials() }
                              return MQTTCredentials(caFile: caFile, caPath: caFile == nil ? "/etc/ssl/certs" : nil)
                          })
    }

    /// Publishes `payload` at QoS 1 on `topic` of the broker at `address` (one connection per
    /// broker, made with `credentials`); returns once the broker acknowledged it, or fails once the
    /// connection's watchdog (every half ``ackTimeout``) finds it ``ackTimeout`` without its PUBACK
    /// (the notification stays queued and is retried; the
    /// connection is dropped and made again, so a broker that stalls never holds a delivery, or
    /// the aggregator's shutdown, for ever).
    func publish(_ payload: String, topic: String, address: BrokerAddress,
                 credentials: () throws -> MQTTCredentials) async throws {
        let key = address.description
        let connection = try connection(for: key, address: address, credentials: credentials)
        guard connection.connected.load(ordering: .relaxed) else { throw Failure(description: "not connected to \(address)") }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            do {
                // The PUBACK can arrive before we register: acked ids are remembered.
                let id = try connection.waiting.withLock { waiting -> Int32 in
                    let id = try connection.client.publish(topic: topic, payload: Array(payload.utf8))
                    waiting[id] = (.now, continuation)
                    return id
                }
                if connection.acked.withLock({ $0.remove(id) != nil }), let c = connection.waiting.withLock({ $0.removeValue(forKey: id) }) {
                    c.continuation.resume()
                }
            } catch {
                continuation.resume(throwing: Failure(description: "publish refused: \(error)"))
            }
        }
    }

    /// How long a notification waits for its PUBACK (10 s: as long as an NGSI-LD HTTP notification
    /// waits for its answer).
    let ackTimeout: Duration

    /// Drops `connection` (a later notification makes a new one): what waits on it fails with `reason`.
    private func discard(_ connection: Connection, key: String, reason: String) {
        connections.withLock { if $0[key] === connection { $0[key] = nil } }
        connection.failAll(reason)
        logger.warning("MQTT notification endpoint not acknowledging; reconnecting", metadata: ["broker": "\(key)", "reason": "\(reason)"])
        connection.client.disconnect()
        connection.task.withLock { $0?.cancel() }
    }

    private func connection(for key: String, address: BrokerAddress, credentials: () throws -> MQTTCredentials) throws -> Connection {
        if let existing = connections.withLock({ $0[key] }) { return existing }
        let client: MQTTClient
        do {
            client = try MQTTClient(options: .init(clientID: "gemello-notifier-\(UUID().uuidString.prefix(8))", cleanSession: true,
                                                   credentials: try credentials()))
        } catch {
            throw Failure(description: "cannot create an MQTT client: \(error)")
        }
        let connection = Connection(client: client)
        let logger = self.logger
        let timeout = ackTimeout
        let task = Task { [weak self] in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await client.start(broker: address, keepAliveSeconds: 30) }
                // One watchdog per connection: a publish without its PUBACK past the timeout drops it.
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: timeout / 2)
                        let now = ContinuousClock.now
                        guard connection.waiting.withLock({ $0.values.contains { now - $0.sentAt >= timeout } }) else { continue }
                        self?.discard(connection, key: key, reason: "no acknowledgement from \(address) within \(timeout)")
                        return
                    }
                }
                for await event in client.events {
                    switch event {
                    case .connected: connection.connected.store(true, ordering: .relaxed)
                    case .disconnected, .connectRefused:
                        connection.connected.store(false, ordering: .relaxed)
                        // Messages in flight on a lost connection are failed: they stay queued and are retried.
                        connection.failAll("connection to \(key) lost")
                    case .published(let id):
                        if let c = connection.waiting.withLock({ $0.removeValue(forKey: id) }) {
                            c.continuation.resume()
                        } else {
                            connection.acked.withLock { _ = $0.insert(id) }
                        }
                    default: break
                    }
                }
                group.cancelAll()
            }
            logger.debug("MQTT notifier stopped", metadata: ["broker": "\(key)"])
        }
        connection.task.withLock { $0 = task }
        connections.withLock { $0[key] = connection }
        // Give a first connect a moment so the first notification need not wait for a retry.
        for _ in 0..<50 where !connection.connected.load(ordering: .relaxed) { usleep(20_000) }
        return connection
    }

    func stop() {
        for connection in connections.withLock({ Array($0.values) }) {
            connection.client.disconnect()
            connection.task.withLock { $0?.cancel() }
        }
    }
}
