import Foundation
import GemelloCore

/// A child process started with every signal unblocked and at its default action.
///
/// Foundation's `Process` hands the child the spawning thread's signal mask, and a test process
/// blocks SIGHUP, SIGINT, SIGTERM, SIGUSR1 and SIGUSR2 on its threads (signal handling through
/// dispatch sources): a mosquitto started that way never sees the SIGHUP that makes it re-read
/// its ACL, password and CRL files. posix_spawn with an empty mask starts it as a shell would.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `pid` is immutable; `exited` is only touched under `lock`.
    public let pid: pid_t
    private let lock = NSLock()
    private var exited = false
    private var exitStatus: Int32?

    /// Starts `executable` with `arguments`, its stdout and stderr appended to `log`.
    public init(_ executable: String, _ arguments: [String], log: URL) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, log.path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid = pid_t()
        let status = SpawnAttributes.withClean { attributes in posix_spawn(&pid, executable, &actions, &attributes, argv, environ) }
        guard status == 0 else { throw POSIXError(POSIXErrorCode(rawValue: status) ?? .EINVAL) }
        self.pid = pid
    }

    /// Waits for the child to end; its exit status (128 + the signal when a signal ended it).
    @discardableResult
    public func wait() -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        if let status = exitStatus { return status }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) == -1 && errno == EINTR {}
        exited = true
        let status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        exitStatus = status
        return status
    }

    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        if exited { return false }
        var raw: Int32 = 0
        if waitpid(pid, &raw, WNOHANG) == pid {
            exited = true
            exitStatus = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        }
        return !exited
    }

    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// SIGTERM, then SIGKILL after `grace`; reaps the child.
    public func stop(grace: Double = 5) {
        signal(SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while isRunning && Date() < deadline { usleep(20_000) }
        if isRunning {
            kill(pid, SIGKILL)
            while isRunning { usleep(10_000) }
        }
    }
}
