import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs blocking work (a child process, a Modbus exchange: calls that wait in the kernel) on a
/// thread of its own, so it never holds one of Swift concurrency's few cooperative threads.
enum Blocking {
    private final class Job: @unchecked Sendable {
        // @unchecked: set before the thread starts, read once by it.
        let work: () -> Void
        init(_ work: @escaping () -> Void) { self.work = work }
    }

    static func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            // No thread to be had (a process at its limit): do it here rather than never.
            if !detach({ continuation.resume(returning: work()) }) { continuation.resume(returning: work()) }
        }
    }

    /// Starts `work` on a detached thread of its own; false when no thread could be made.
    @discardableResult
    static func detach(_ work: @escaping @Sendable () -> Void) -> Bool {
        let job = Unmanaged.passRetained(Job(work))
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { raw in
            let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
            job.work()
            return nil
        }, job.toOpaque())
        guard started == 0 else {
            job.release()
            return false
        }
        pthread_detach(thread)
        return true
    }

    /// From a thread of ours (never a cooperative one), waits for async work and returns its value.
    static func wait<T: Sendable>(for work: @escaping @Sendable () async -> T) -> T {
        let box = ResultBox<T>()
        Task { box.put(await work()) }
        return box.take()
    }

    /// A one-value hand-over between a task and a waiting thread (a mutex and a condition).
    private final class ResultBox<T: Sendable>: @unchecked Sendable {
        // @unchecked: `value` is only touched with `mutex` held.
        private var mutex = pthread_mutex_t()
        private var condition = pthread_cond_t()
        private var value: T?

        init() {
            pthread_mutex_init(&mutex, nil)
            pthread_cond_init(&condition, nil)
        }

        deinit {
            pthread_cond_destroy(&condition)
            pthread_mutex_destroy(&mutex)
        }

        func put(_ new: T) {
            pthread_mutex_lock(&mutex)
            value = new
            pthread_cond_signal(&condition)
            pthread_mutex_unlock(&mutex)
        }

        func take() -> T {
            pthread_mutex_lock(&mutex)
            while value == nil { pthread_cond_wait(&condition, &mutex) }
            let result = value!
            pthread_mutex_unlock(&mutex)
            return result
        }
    }
}

/// The threads of one input (a listener's, a subscriber's): started, told to stop, and awaited
/// without holding a cooperative thread.
final class ThreadGroup: Sendable {
    /// Set when the input stops; every thread checks it at least every 200 ms.
    let stopping = Atomic<Bool>(false)
    private let state = Mutex<(count: Int, waiters: [CheckedContinuation<Void, Never>])>((0, []))

    var count: Int { state.withLock { $0.count } }

    /// Starts `work` on a thread of the group; false when no thread could be made.
    @discardableResult
    func spawn(_ work: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { $0.count += 1 }
        let started = Blocking.detach { [self] in
            work()
            finished()
        }
        if !started { finished() }
        return started
    }

    private func finished() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.count -= 1
            guard s.count == 0 else { return [] }
            defer { s.waiters = [] }
            return s.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Lets the threads work until the calling task is cancelled (the agent stops the input),
    /// then stops them and waits for them (``stopAndWait(timeout:)``).
    func runUntilCancelled(stopTimeout: Duration = .seconds(3)) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: .milliseconds(200)) } catch { break }
        }
        await stopAndWait(timeout: stopTimeout)
    }

    /// Tells every thread to stop and waits until they did, or `timeout` passed (a thread may
    /// be waiting for a commit that only the agent's shutdown answers).
    func stopAndWait(timeout: Duration) async {
        stopping.store(true, ordering: .relaxed)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s -> Bool in
                if s.count == 0 { return true }
                s.waiters.append(continuation)
                return false
            }
            if done { continuation.resume(); return }
            Blocking.detach { [self] in
                let (seconds, attoseconds) = timeout.components
                usleep(UInt32(seconds) * 1_000_000 + UInt32(attoseconds / 1_000_000_000_000))
                let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in defer { s.waiters = [] }; return s.waiters }
                for waiter in waiters { waiter.resume() }
            }
        }
    }
}
