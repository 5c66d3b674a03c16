import GemelloMosquitto
import Synchronization

/// The MQTT events between the network loop and the ingest loop, taken all at once: the ingest
/// loop sees every event already waiting, so batches that queued up while it was busy commit
/// together (one sync to disk), and a lone batch commits at once, without waiting for company.
final class EventInbox: Sendable {
    private struct State {
        var events: [MQTTEvent] = []
        var finished = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func push(_ event: MQTTEvent) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.events.append(event)
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }

    /// No more events will come (the stream ended or the service is shutting down).
    func finish() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.finished = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }

    /// Every waiting event, in order, after waiting for at least one; nil once finished and empty.
    func takeAll() async -> [MQTTEvent]? {
        while true {
            let taken = state.withLock { s -> (events: [MQTTEvent], finished: Bool) in
                defer { s.events.removeAll(keepingCapacity: true) }
                return (s.events, s.finished)
            }
            if !taken.events.isEmpty { return taken.events }
            if taken.finished { return nil }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { s -> Bool in
                    if !s.events.isEmpty || s.finished { return true }
                    s.waiter = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        }
    }
}
