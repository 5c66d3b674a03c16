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
            let job = Unmanaged.passRetained(Job { continuation.resume(returning: work()) })
            var thread = pthread_t()
            let started = pthread_create(&thread, nil, { raw in
                let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                job.work()
                return nil
            }, job.toOpaque())
            if started == 0 {
                pthread_detach(thread)
            } else {
                // No thread to be had (a process at its limit): do it here rather than never.
                job.takeRetainedValue().work()
            }
        }
    }
}
