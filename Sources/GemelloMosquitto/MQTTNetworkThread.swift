import CMosquitto
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One client's network loop on a thread of ours, in place of `mosquitto_loop_start`.
///
/// Why not libmosquitto's own thread: its `mosquitto_loop_forever` (a) waits in select(2), which
/// fails past descriptor 1024, and (b) treats a TLS failure as fatal: when a handshake fails (a
/// wrong CA, an expired or revoked certificate, a broker restarting mid-handshake) the thread
/// ends without a disconnect callback and never connects again, so the client would sit silent
/// forever. This loop waits in poll(2), reports every failure as a `.disconnected` event (with
/// OpenSSL's reason, which libmosquitto only logs), and reconnects with jittered exponential
/// back-off, also after TLS failures. libmosquitto is told the application is threaded
/// (`mosquitto_threaded_set`), so publish/subscribe from other threads only queue packets; they
/// wake this loop through ``wake()``.
final class MQTTNetworkThread: @unchecked Sendable {
    // @unchecked: `thread` is written once by start() before any other use; the rest is atomic or immutable.
    private let handle: OpaquePointer
    private let sink: MQTTClient.EventSink
    private let retryDelay: Duration
    private let maxRetryDelay: Duration
    private let stopping = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private var thread: pthread_t?

    init(handle: OpaquePointer, sink: MQTTClient.EventSink, retryDelay: Duration, maxRetryDelay: Duration) throws(MQTTError) {
        self.handle = handle
        self.sink = sink
        self.retryDelay = retryDelay
        self.maxRetryDelay = maxRetryDelay
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw MQTTError(.system, operation: "create the network loop's wake pipe") }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    func start() throws(MQTTError) {
        mosquitto_threaded_set(handle, true)
        let box = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { argument in
            let loop = Unmanaged<MQTTNetworkThread>.fromOpaque(argument!).takeRetainedValue()
            loop.run()
            return nil
        }, box)
        guard status == 0 else {
            Unmanaged<MQTTNetworkThread>.fromOpaque(box).release()
            throw MQTTError(.system, operation: "start the network thread")
        }
        self.thread = thread
    }

    /// Makes the loop look at libmosquitto's queue now (a packet was queued from another thread).
    func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    /// Lets the loop send what is queued (a DISCONNECT) for up to `grace`, then ends it and waits.
    func stop(grace: Duration) {
        let deadline = ContinuousClock.now + grace
        wake()
        while !finished.load(ordering: .acquiring) && ContinuousClock.now < deadline && mosquitto_socket(handle) >= 0 {
            usleep(5_000)
        }
        stopping.store(true, ordering: .releasing)
        wake()
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    private func run() {
        defer { finished.store(true, ordering: .releasing) }
        var delay = retryDelay
        var retryAt: ContinuousClock.Instant?
        var connectsSeen = sink.connects.load(ordering: .relaxed)
        var lastMisc = ContinuousClock.now
        var drain = [UInt8](repeating: 0, count: 64)
        while !stopping.load(ordering: .acquiring) {
            let socket = mosquitto_socket(handle)
            if socket < 0 {
                if sink.closing.load(ordering: .relaxed) { return }  // our own disconnect completed
                // Lost or never established: reconnect after a jittered, growing pause.
                let now = ContinuousClock.now
                if sink.connects.load(ordering: .relaxed) != connectsSeen {
                    connectsSeen = sink.connects.load(ordering: .relaxed)
                    delay = retryDelay  // we were connected since the last failure: start the back-off over
                }
                guard let due = retryAt else {
                    retryAt = now + delay * Double.random(in: 0.8...1.2)
                    delay = min(delay * 2, maxRetryDelay)
                    continue
                }
                if now < due {
                    var fd = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
                    _ = poll(&fd, 1, Int32(min(100, max(1, (due - now).milliseconds))))
                    _ = read(wakeRead, &drain, drain.count)
                    continue
                }
                retryAt = nil
                let status = mosquitto_reconnect_async(handle)
                if status != MOSQ_ERR_SUCCESS.rawValue { report(status, before: sink.disconnects.load(ordering: .relaxed)) }
                continue
            }
            // Packets TLS already decrypted wait inside OpenSSL, where poll(2) cannot see them: take
            // them without waiting (measured: without this, TLS ingest ran at 18k readings/s, one
            // packet per 100 ms wait, against 490k/s in plain).
            let buffered = gemello_mosquitto_tls_pending(handle) > 0
            var fds = [pollfd(fd: socket, events: Int16(POLLIN) | (mosquitto_want_write(handle) ? Int16(POLLOUT) : 0), revents: 0),
                       pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            _ = poll(&fds, 2, buffered ? 0 : 100)
            if fds[1].revents != 0 { _ = read(wakeRead, &drain, drain.count) }
            let before = sink.disconnects.load(ordering: .relaxed)
            var status = MOSQ_ERR_SUCCESS.rawValue
            if buffered || fds[0].revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 {
                status = mosquitto_loop_read(handle, 1)
                var more = 0
                while status == MOSQ_ERR_SUCCESS.rawValue && more < 1000 && mosquitto_socket(handle) >= 0
                        && gemello_mosquitto_tls_pending(handle) > 0 {
                    status = mosquitto_loop_read(handle, 1)
                    more += 1
                }
            }
            if status == MOSQ_ERR_SUCCESS.rawValue && mosquitto_socket(handle) >= 0 && mosquitto_want_write(handle) {
                status = mosquitto_loop_write(handle, 1)
            }
            let now = ContinuousClock.now
            if status == MOSQ_ERR_SUCCESS.rawValue && now - lastMisc >= .milliseconds(100) {
                lastMisc = now
                status = mosquitto_loop_misc(handle)  // keepalive PINGREQ, its timeout, QoS retries
            }
            if status != MOSQ_ERR_SUCCESS.rawValue { report(status, before: before) }
        }
    }

    /// A failure libmosquitto did not report through its disconnect callback (a failed TLS
    /// handshake): report it here, with OpenSSL's reason from the log.
    private func report(_ status: Int32, before disconnects: Int) {
        guard sink.disconnects.load(ordering: .relaxed) == disconnects, !sink.closing.load(ordering: .relaxed) else {
            _ = sink.takeLastError()
            return
        }
        guard mosquitto_socket(handle) < 0 else { return }  // still connected: nothing was lost
        let reason = MQTTCredentials.reason(status, detail: sink.takeLastError())
        sink.disconnects.add(1, ordering: .relaxed)
        sink.continuation.yield(.disconnected(expected: false, reason: reason))
    }
}

extension Duration {
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
