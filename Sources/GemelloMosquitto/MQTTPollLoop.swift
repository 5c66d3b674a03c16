import CMosquitto
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Drives the network I/O of many clients from one thread with `poll(2)`.
///
/// Why: libmosquitto's threaded loop costs a thread per client and uses `select(2)`, which cannot
/// watch descriptors numbered 1024 or more; each client holds three (its socket and a wake-up
/// pair), so one process stalls at ~333 clients (measured with `gemello simulate`). The
/// simulator's thousands of connections share this loop instead. Clients made by ``client(options:)``
/// connect on ``connect(_:broker:keepAliveSeconds:)`` and reconnect after a loss (1-30 s back-off).
public final class MQTTPollLoop: Sendable {
    struct Entry {
        let client: MQTTClient
        var broker: BrokerAddress
        var keepAlive: Int32
        var connecting: Bool
        var retryAt: ContinuousClock.Instant
        var delay: Duration
    }

    private let entries = Mutex<[ObjectIdentifier: Entry]>([:])
    private let running = Atomic<Bool>(true)

    public init() {}

    /// A client for this loop (not started until ``connect(_:broker:keepAliveSeconds:)``).
    public func client(options: MQTTClient.Options) throws(MQTTError) -> MQTTClient {
        let client = try MQTTClient(options: options, pollDriven: true)
        mosquitto_threaded_set(client.handle, true)  // publish() is called from other threads
        return client
    }

    /// Starts connecting `client`; the loop keeps it connected until ``remove(_:)``.
    public func connect(_ client: MQTTClient, broker: BrokerAddress, keepAliveSeconds: Int32) {
        entries.withLock {
            $0[ObjectIdentifier(client)] = Entry(client: client, broker: broker, keepAlive: keepAliveSeconds, connecting: false,
                                                 retryAt: .now, delay: .seconds(1))
        }
    }

    /// Stops driving `client`. To leave cleanly, ``MQTTClient/disconnect()`` first and give the
    /// loop a moment to send the DISCONNECT.
    public func remove(_ client: MQTTClient) {
        _ = entries.withLock { $0.removeValue(forKey: ObjectIdentifier(client)) }
    }

    public func stop() { running.store(false, ordering: .relaxed) }

    /// Runs until ``stop()``: blocking, so give it a thread of its own.
    public func run() {
        var lastMisc = ContinuousClock.now
        while running.load(ordering: .relaxed) {
            let now = ContinuousClock.now
            var fds: [pollfd] = []
            var clients: [MQTTClient] = []  // strong references while their handles are in use
            entries.withLock { entries in
                for (key, var entry) in entries {
                    let handle = entry.client.handle
                    var socket = mosquitto_socket(handle)
                    if socket < 0 && now >= entry.retryAt {
                        // First connect, or reconnect after a loss, with a jittered back-off.
                        let status = entry.connecting ? mosquitto_reconnect_async(handle)
                            : mosquitto_connect_async(handle, entry.broker.host, Int32(entry.broker.port), entry.keepAlive)
                        entry.connecting = true
                        entry.retryAt = now + entry.delay * Double.random(in: 0.8...1.2)
                        entry.delay = status == MOSQ_ERR_SUCCESS.rawValue ? .seconds(1) : min(entry.delay * 2, .seconds(30))
                        entries[key] = entry
                        socket = mosquitto_socket(handle)
                    }
                    guard socket >= 0 else { continue }
                    let events = Int16(POLLIN) | (mosquitto_want_write(handle) ? Int16(POLLOUT) : 0)
                    fds.append(pollfd(fd: socket, events: events, revents: 0))
                    clients.append(entry.client)
                }
            }
            if fds.isEmpty {
                usleep(50_000)
                continue
            }
            _ = poll(&fds, nfds_t(fds.count), 50)
            for (index, fd) in fds.enumerated() {
                let handle = clients[index].handle
                if fd.revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 { _ = mosquitto_loop_read(handle, 1) }
                if fd.revents & Int16(POLLOUT) != 0 || mosquitto_want_write(handle) { _ = mosquitto_loop_write(handle, 1) }
            }
            if ContinuousClock.now - lastMisc >= .milliseconds(250) {
                lastMisc = ContinuousClock.now
                for client in clients { _ = mosquitto_loop_misc(client.handle) }  // keepalive pings, retries
            }
        }
    }
}
