import CMosquitto
import Synchronization

/// A libmosquitto client running its network loop on libmosquitto's own thread.
///
/// Events (connection changes, PUBACKs, incoming messages) arrive in order on ``events``.
/// `@unchecked Sendable`: libmosquitto's publish/subscribe/disconnect calls are thread-safe
/// once the threaded loop runs (`mosquitto_loop_start`), and the pointer lives until `deinit`.
public final class MQTTClient: @unchecked Sendable {
    /// Connection settings.
    public struct Options: Sendable {
        public var clientID: String
        /// `false` asks the broker to keep subscriptions and queued QoS 1 messages across reconnects.
        public var cleanSession: Bool
        public var keepAliveSeconds: Int32
        /// Messages allowed in flight (sent, not yet PUBACKed) inside libmosquitto.
        public var maxInflightMessages: Int32
        /// Reconnect back-off bounds (exponential between them).
        public var reconnectDelaySeconds: UInt32
        public var reconnectDelayMaxSeconds: UInt32
        /// The Last Will: published by the broker if this client vanishes without disconnecting.
        public var will: (topic: String, payload: [UInt8], retain: Bool)?
        /// How this client proves who it is and checks the broker (``MQTTCredentials``).
        public var credentials: MQTTCredentials

        public init(clientID: String, cleanSession: Bool = true, keepAliveSeconds: Int32 = 30,
                    maxInflightMessages: Int32 = 100, reconnectDelaySeconds: UInt32 = 1,
                    reconnectDelayMaxSeconds: UInt32 = 30,
                    will: (topic: String, payload: [UInt8], retain: Bool)? = nil,
                    credentials: MQTTCredentials = MQTTCredentials()) {
            self.credentials = credentials
            self.clientID = clientID
            self.cleanSession = cleanSession
            self.keepAliveSeconds = keepAliveSeconds
            self.maxInflightMessages = maxInflightMessages
            self.reconnectDelaySeconds = reconnectDelaySeconds
            self.reconnectDelayMaxSeconds = reconnectDelayMaxSeconds
            self.will = will
        }
    }

    /// Events from the network thread, in the order they happened.
    public let events: AsyncStream<MQTTEvent>
    private let sink: EventSink
    let handle: OpaquePointer

    /// The C callbacks' only way back into Swift: passed as libmosquitto's userdata pointer.
    /// Sendable on purpose: it is touched from libmosquitto's thread and holds only a continuation.
    final class EventSink: Sendable {
        let continuation: AsyncStream<MQTTEvent>.Continuation
        /// libmosquitto's last error-level log line (a TLS failure's OpenSSL reason arrives only
        /// there), attached to the next disconnect so the cause reaches the operator.
        let lastError = Mutex<String?>(nil)
        /// Successful CONNACKs and disconnect callbacks so far (the network thread's bookkeeping).
        let connects = Atomic<Int>(0)
        let disconnects = Atomic<Int>(0)
        /// Set by ``MQTTClient/disconnect()``: the end of the connection is ours, not a failure.
        let closing = Atomic<Bool>(false)
        /// The current connection got its CONNACK (reset on every disconnect).
        let established = Atomic<Bool>(false)
        /// What to say when a TLS connection ends before the broker accepted it and OpenSSL gave
        /// no reason (TLS 1.3 reports a refused client certificate after the handshake, often as
        /// a bare end of connection).
        let refusedHint: String?
        init(_ continuation: AsyncStream<MQTTEvent>.Continuation, refusedHint: String? = nil) {
            self.continuation = continuation
            self.refusedHint = refusedHint
        }

        func takeLastError() -> String? { lastError.withLock { e in defer { e = nil }; return e } }
    }

    private static let libraryInit: Void = { mosquitto_lib_init() }()

    public convenience init(options: Options) throws(MQTTError) {
        try self.init(options: options, pollDriven: false)
    }

    init(options: Options, pollDriven: Bool) throws(MQTTError) {
        _ = Self.libraryInit
        self.pollDriven = pollDriven
        reconnectDelay = (.seconds(Int64(options.reconnectDelaySeconds)), .seconds(Int64(max(options.reconnectDelaySeconds, options.reconnectDelayMaxSeconds))))
        let (stream, continuation) = AsyncStream<MQTTEvent>.makeStream(bufferingPolicy: .unbounded)
        let hint: String? = options.credentials.usesTLS
            ? (options.credentials.certFile != nil
                ? "the broker closed the TLS connection before accepting it: check this client's certificate (expired? revoked? issued by the broker's CA?) and the broker's log"
                : "the broker closed the TLS connection before accepting it: check broker-tls.ca-file, the credentials and the broker's log")
            : nil
        let sink = EventSink(continuation, refusedHint: hint)
        // Unretained: `self.sink` keeps the sink alive for as long as the mosquitto handle exists.
        let userdata = Unmanaged.passUnretained(sink).toOpaque()
        guard let handle = mosquitto_new(options.clientID, options.cleanSession, userdata) else {
            throw MQTTError(.outOfMemory, operation: "create client")
        }
        self.events = stream
        self.sink = sink
        self.handle = handle
        mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311)
        mosquitto_max_inflight_messages_set(handle, UInt32(max(1, options.maxInflightMessages)))
        mosquitto_reconnect_delay_set(handle, options.reconnectDelaySeconds, options.reconnectDelayMaxSeconds, true)
        try options.credentials.apply(to: handle)
        if let will = options.will {
            let status = will.payload.withUnsafeBytes { bytes in
                mosquitto_will_set(handle, will.topic, Int32(bytes.count), bytes.baseAddress, 1, will.retain)
            }
            try MQTTError.check(status, "set last will")
        }
        mosquitto_connect_with_flags_callback_set(handle) { _, userdata, rc, flags in
            let sink = Unmanaged<EventSink>.fromOpaque(userdata!).takeUnretainedValue()
            if rc == 0 {
                sink.connects.add(1, ordering: .relaxed)
                sink.established.store(true, ordering: .relaxed)
                sink.continuation.yield(.connected(sessionPresent: flags & 1 == 1))
            } else {
                sink.continuation.yield(.connectRefused(reason: MQTTError.reason(rc)))
            }
        }
        mosquitto_disconnect_callback_set(handle) { _, userdata, rc in
            let sink = Unmanaged<EventSink>.fromOpaque(userdata!).takeUnretainedValue()
            sink.disconnects.add(1, ordering: .relaxed)
            let wasEstablished = sink.established.exchange(false, ordering: .relaxed)
            var reason = MQTTCredentials.reason(rc, detail: rc != 0 ? sink.takeLastError() : nil)
            if rc != 0, !wasEstablished, !reason.contains(": "), let hint = sink.refusedHint { reason += ": " + hint }
            sink.continuation.yield(.disconnected(expected: rc == 0, reason: reason))
        }
        mosquitto_log_callback_set(handle) { _, userdata, level, text in
            guard let userdata, let text, level & Int32(MOSQ_LOG_ERR) != 0 else { return }
            let sink = Unmanaged<EventSink>.fromOpaque(userdata).takeUnretainedValue()
            let line = String(cString: text)
            sink.lastError.withLock { $0 = line }
        }
        mosquitto_publish_callback_set(handle) { _, userdata, mid in
            let sink = Unmanaged<EventSink>.fromOpaque(userdata!).takeUnretainedValue()
            sink.continuation.yield(.published(messageID: mid))
        }
        mosquitto_subscribe_callback_set(handle) { _, userdata, mid, _, _ in
            let sink = Unmanaged<EventSink>.fromOpaque(userdata!).takeUnretainedValue()
            sink.continuation.yield(.subscribed(messageID: mid))
        }
        mosquitto_message_callback_set(handle) { _, userdata, message in
            guard let userdata, let message else { return }
            let sink = Unmanaged<EventSink>.fromOpaque(userdata).takeUnretainedValue()
            let raw = message.pointee
            let topic = raw.topic.map { String(cString: $0) } ?? ""
            let payload = raw.payloadlen > 0 && raw.payload != nil
                ? Array(UnsafeRawBufferPointer(start: raw.payload, count: Int(raw.payloadlen))) : []
            sink.continuation.yield(.message(MQTTMessage(topic: topic, payload: payload, retained: raw.retain)))
        }
    }

    /// Driven by an ``MQTTPollLoop`` instead of a network thread of its own.
    let pollDriven: Bool
    private let reconnectDelay: (Duration, Duration)
    /// The network thread, once ``start(broker:keepAliveSeconds:retryDelay:maxRetryDelay:)`` connected.
    private let network = Mutex<MQTTNetworkThread?>(nil)

    deinit {
        sink.closing.store(true, ordering: .relaxed)
        network.withLock { $0 }?.stop(grace: .zero)
        mosquitto_destroy(handle)
        sink.continuation.finish()
    }

    /// Connects, retrying until the broker's address resolves and a connection starts, then
    /// starts the network thread (``MQTTNetworkThread``), which keeps the client connected from
    /// then on; returns once the first connection attempt got through (or when cancelled).
    ///
    /// Why we retry ourselves: libmosquitto 2.0's threaded loop reconnects after a connection is
    /// *lost*, but not when the very first connect fails (measured: it never tries again), nor
    /// after a failed TLS handshake. An agent booting while its backhaul is down must keep
    /// trying, with exponential back-off and jitter so a fleet does not reconnect in lockstep.
    /// Run it as a child task of the owner.
    public func start(broker: BrokerAddress, keepAliveSeconds: Int32 = 30,
                      retryDelay: Duration = .seconds(1), maxRetryDelay: Duration = .seconds(30)) async throws(MQTTError) {
        var delay = retryDelay
        var reported: String?
        while !Task.isCancelled {
            let status = mosquitto_connect_async(handle, broker.host, Int32(broker.port), keepAliveSeconds)
            if status == MOSQ_ERR_SUCCESS.rawValue {
                let thread = try MQTTNetworkThread(handle: handle, sink: sink, retryDelay: reconnectDelay.0, maxRetryDelay: reconnectDelay.1)
                try thread.start()
                network.withLock { $0 = thread }
                return
            }
            // Arguments libmosquitto refuses are a bug or a bad configuration: say so. Anything
            // else (refused, no route, not resolvable yet, a TLS handshake that failed at once) is
            // retried, each distinct reason reported once.
            guard status != MOSQ_ERR_INVAL.rawValue && status != MOSQ_ERR_NOMEM.rawValue && status != MOSQ_ERR_NOT_SUPPORTED.rawValue else {
                try MQTTError.check(status, "connect to \(broker)")
                return
            }
            let reason = status == MOSQ_ERR_ERRNO.rawValue || status == MOSQ_ERR_EAI.rawValue
                ? "broker \(broker) unreachable; retrying" : MQTTCredentials.reason(status, detail: sink.takeLastError())
            if reported != reason {
                reported = reason
                sink.continuation.yield(.disconnected(expected: false, reason: reason))
            }
            let jitter = Double.random(in: 0.8...1.2)
            do { try await Task.sleep(for: delay * jitter) } catch { return }
            delay = min(delay * 2, maxRetryDelay)
        }
    }

    /// Publishes at QoS 1 and returns the message id that a later ``MQTTEvent/published(messageID:)`` carries.
    @discardableResult
    public func publish(topic: String, payload: [UInt8], retain: Bool = false) throws(MQTTError) -> Int32 {
        var messageID: Int32 = 0
        let status = payload.withUnsafeBytes { bytes in
            mosquitto_publish(handle, &messageID, topic, Int32(bytes.count), bytes.baseAddress, 1, retain)
        }
        try MQTTError.check(status, "publish to \(topic)")
        network.withLock { $0 }?.wake()
        return messageID
    }

    /// Subscribes at QoS 1; returns the message id a later ``MQTTEvent/subscribed(messageID:)`` carries.
    @discardableResult
    public func subscribe(_ pattern: String) throws(MQTTError) -> Int32 {
        var messageID: Int32 = 0
        try MQTTError.check(mosquitto_subscribe(handle, &messageID, pattern, 1), "subscribe to \(pattern)")
        network.withLock { $0 }?.wake()
        return messageID
    }

    /// Disconnects cleanly (no Last Will) and stops the network thread.
    public func disconnect() {
        sink.closing.store(true, ordering: .relaxed)
        mosquitto_disconnect(handle)
        // Lets the network thread send the DISCONNECT (and what is queued before it), then ends it.
        network.withLock { n in defer { n = nil }; return n }?.stop(grace: .seconds(2))
        sink.continuation.finish()
    }
}
