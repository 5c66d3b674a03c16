import Foundation
import Synchronization

/// A real PostgreSQL server (Debian's `postgresql` package, which ops/test installs) on a free
/// loopback port, made in a temporary folder with `initdb` and stopped when the process exits.
/// One server per test process; each test takes a database of its own (``makeDatabase(_:)``).
///
/// The server refuses to run as root: under root it runs as the `postgres` user (`setpriv`).
/// It runs with `fsync=off`: tests kill aggregators, never the machine, and a crash of our
/// processes loses nothing PostgreSQL committed (its data is in the kernel's page cache).
public final class PostgresHarness: @unchecked Sendable {
    // @unchecked: every field is set once in init; `process` is only signalled after.
    public let port: Int
    public let folder: URL
    private let process: Mutex<Process>
    private let bin: URL
    private let counter = Atomic<Int>(0)
    /// The superuser `initdb` made (trust authentication on loopback).
    public let user = "gemello"

    public enum HarnessError: Error, CustomStringConvertible {
        case postgresMissing
        case didNotStart(String)
        case command(String)
        public var description: String {
            switch self {
            case .postgresMissing: return "PostgreSQL is not installed: run ops/test (it installs it) or apt-get install postgresql"
            case .didNotStart(let log): return "PostgreSQL did not start: \(log)"
            case .command(let message): return message
            }
        }
    }

    private static let sharedServer = Mutex<Result<PostgresHarness, HarnessError>?>(nil)

    /// The test process's server, started on first use.
    public static func shared() throws -> PostgresHarness {
        try sharedServer.withLock { server in
            if let server { return try server.get() }
            let result: Result<PostgresHarness, HarnessError>
            do { result = .success(try PostgresHarness()) } catch let error as HarnessError { result = .failure(error) } catch {
                result = .failure(.didNotStart("\(error)"))
            }
            server = result
            if case .success = result { atexit { PostgresHarness.stopShared() } }
            return try result.get()
        }
    }

    private static func stopShared() {
        if case .success(let server)? = sharedServer.withLock({ $0 }) { server.stop() }
    }

    /// The folder holding `initdb`, `postgres` and `psql` of the newest installed major version.
    public static func binaries() throws -> URL {
        let base = URL(fileURLWithPath: "/usr/lib/postgresql")
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? [])
            .compactMap(Int.init).sorted()
        guard let newest = versions.last(where: {
            FileManager.default.isExecutableFile(atPath: base.appendingPathComponent("\($0)/bin/postgres").path)
        }) else { throw HarnessError.postgresMissing }
        return base.appendingPathComponent("\(newest)/bin")
    }

    /// Makes a cluster in a temporary folder and starts it on a free loopback port.
    public init() throws {
        let bin = try Self.binaries()
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("gemello-postgres-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let asUser = getuid() == 0 ? "setpriv --reuid=postgres --regid=postgres --init-groups" : ""
        if getuid() == 0 { try Self.shell("chown postgres:postgres '\(folder.path)'") }
        try Self.shell("\(asUser) '\(bin.path)/initdb' -D '\(folder.path)/data' -U \(user) --auth=trust --no-locale -E UTF8 "
                       + "> '\(folder.path)/initdb.log' 2>&1")
        self.bin = bin
        var lastError = ""
        for _ in 0..<5 {
            let candidate = try FreePort.find()
            if let process = try Self.start(bin: bin, folder: folder, port: candidate, user: user) {
                self.port = candidate
                self.process = Mutex(process)
                return
            }
            lastError = (try? String(contentsOf: folder.appendingPathComponent("postgres.log"), encoding: .utf8)) ?? "no log"
        }
        throw HarnessError.didNotStart(String(lastError.suffix(2000)))
    }

    /// Starts the server on `port`; nil when it did not come up.
    private static func start(bin: URL, folder: URL, port: Int, user: String) throws -> Process? {
        let asUser = getuid() == 0 ? "setpriv --reuid=postgres --regid=postgres --init-groups" : ""
        let log = folder.appendingPathComponent("postgres.log")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "exec \(asUser) '\(bin.path)/postgres' -D '\(folder.path)/data' -p \(port) -k '\(folder.path)' "
                             + "-c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200 "
                             + ">> '\(log.path)' 2>&1"]
        try process.run()
        if FreePort.waitUntilListening(port: port, timeout: 15), ready(bin: bin, port: port, user: user) { return process }
        kill(process.processIdentifier, SIGKILL)
        return nil
    }

    /// Stops the server (fast shutdown: every connection is cut) and starts it again on the same
    /// port with the same data: what an operator's restart, or a failover, does to the clients.
    public func restart() throws {
        try process.withLock { process in
            Self.halt(process)
            guard let again = try Self.start(bin: bin, folder: folder, port: port, user: user) else {
                throw HarnessError.didNotStart("restart on port \(port)")
            }
            process = again
        }
    }

    private static func halt(_ process: Process) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGINT)
        for _ in 0..<200 where process.isRunning { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    private static func ready(bin: URL, port: Int, user: String) -> Bool {
        for _ in 0..<100 {
            if (try? shell("'\(bin.path)/pg_isready' -q -h 127.0.0.1 -p \(port) -U \(user)")) != nil { return true }
            usleep(100_000)
        }
        return false
    }

    /// A new empty database; its `postgres://` URL.
    public func makeDatabase(_ prefix: String = "test") throws -> String {
        let name = "\(prefix.lowercased().filter { $0.isLetter || $0.isNumber || $0 == "_" })_\(getpid())_\(counter.add(1, ordering: .relaxed).newValue)"
        try psql("CREATE DATABASE \(name)")
        return url(database: name)
    }

    public func url(database: String) -> String { "postgres://\(user)@127.0.0.1:\(port)/\(database)" }

    /// Runs SQL with psql against the `postgres` database (or `database`); its output.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        let bin = try Self.binaries()
        let escaped = sql.replacingOccurrences(of: "'", with: "'\\''")
        return try Self.shell("'\(bin.path)/psql' -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p \(port) -U \(user) -d \(database) -c '\(escaped)'")
    }

    deinit { stop() }

    /// Stops the server (fast shutdown: SIGINT; SIGKILL after 10 s).
    public func stop() {
        process.withLock { Self.halt($0) }
        try? FileManager.default.removeItem(at: folder)
    }

    /// Runs `command` with /bin/sh and returns its output. Spawned and reaped by us
    /// (``ChildProcess``), not by Foundation's `Process`, whose exit monitoring once missed a
    /// short-lived child here and left the caller waiting for ever.
    @discardableResult
    static func shell(_ command: String) throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("gemello-shell-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        let status = try ChildProcess("/bin/sh", ["-c", command], log: output).wait()
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw HarnessError.command("\(command.prefix(200)) failed (\(status)): \(text.suffix(1000))")
        }
        return text
    }
}
