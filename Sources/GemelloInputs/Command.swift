import GemelloCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a program to completion with a time limit and captures its output (the `exec` input).
/// No shell is involved unless the caller runs `/bin/sh -c`. The child gets its own process
/// group, stdin from /dev/null, default signal handling; on timeout the whole group is sent
/// SIGTERM, then SIGKILL a second later.
struct Command: Sendable {
    var argv: [String]
    var timeout: Duration
    /// Output beyond this many bytes is an error (a runaway program must not fill memory).
    var maxOutput: Int

    struct Result: Sendable {
        var status: Int32
        var stdout: [UInt8]
        var stderr: [UInt8]
        var timedOut: Bool
    }

    /// Where `name` is: itself when it has a slash, else the first executable on `PATH`.
    static func locate(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for folder in path.split(separator: ":") where access("\(folder)/\(name)", X_OK) == 0 {
            return "\(folder)/\(name)"
        }
        return nil
    }

    func run() throws(InputError) -> Result {
        guard let executable = Self.locate(argv[0]) else {
            throw InputError("'\(argv[0])' not found or not executable (PATH \(getenv("PATH").map { String(cString: $0) } ?? "unset"))")
        }
        var out: [Int32] = [-1, -1], err: [Int32] = [-1, -1]
        // Close-on-exec: a child another thread spawns meanwhile must not inherit the write ends
        // (it would hold them open, and this command's output would never reach its end).
        guard pipe(&out) == 0 else { throw InputError("cannot make a pipe: \(String(cString: strerror(errno)))") }
        guard pipe(&err) == 0 else {
            close(out[0]); close(out[1])
            throw InputError("cannot make a pipe: \(String(cString: strerror(errno)))")
        }
        for fd in out + err { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, err[1], 2)
        for fd in [out[0], out[1], err[0], err[1]] { posix_spawn_file_actions_addclose(&actions, fd) }
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArgs { free(pointer) } }
        var pid = pid_t()
        let spawned = SpawnAttributes.withClean(newProcessGroup: true) { attributes in
            posix_spawn(&pid, executable, &actions, &attributes, cArgs, environ)
        }
        close(out[1]); close(err[1])
        defer { close(out[0]); close(err[0]) }
        guard spawned == 0 else { throw InputError("cannot start \(executable): \(String(cString: strerror(spawned)))") }

        var result = Result(status: -1, stdout: [], stderr: [], timedOut: false)
        let deadline = ContinuousClock.now + timeout
        var open = [out[0], err[0]]
        var buffer = [UInt8](repeating: 0, count: 16_384)
        var tooMuch = false
        while !open.isEmpty {
            let left = deadline - ContinuousClock.now
            if left <= .zero { result.timedOut = true; break }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(1000, max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))))
            if ready < 0 && errno != EINTR { break }
            for entry in fds where entry.revents != 0 {
                let count = read(entry.fd, &buffer, buffer.count)
                if count <= 0 {
                    open.removeAll { $0 == entry.fd }
                } else if entry.fd == out[0] {
                    result.stdout.append(contentsOf: buffer[0..<count])
                } else if result.stderr.count < 65_536 {
                    result.stderr.append(contentsOf: buffer[0..<count])
                }
            }
            if result.stdout.count > maxOutput { tooMuch = true; break }
        }
        if result.timedOut || tooMuch {
            kill(-pid, SIGTERM)
            let grace = ContinuousClock.now + .seconds(1)
            var raw: Int32 = 0
            while waitpid(pid, &raw, WNOHANG) == 0 {
                if ContinuousClock.now >= grace { kill(-pid, SIGKILL); waitpid(pid, &raw, 0); break }
                usleep(10_000)
            }
            if tooMuch { throw InputError("printed more than \(maxOutput) bytes; stopped it") }
            return result
        }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) == -1 && errno == EINTR {}
        result.status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        return result
    }
}
