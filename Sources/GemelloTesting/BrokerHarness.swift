import Foundation
import GemelloCore

/// Starts a real mosquitto on a free loopback port for one test, and stops it.
///
/// Uses the repository's `ops/mosquitto.conf` with a `listener` line added, so tests run the
/// broker configuration operators run.
public final class BrokerHarness: @unchecked Sendable {
    // @unchecked: `process` is set once in init and only read after.
    public let port: Int
    private let process: ChildProcess
    private let folder: URL

    public var url: String { "mqtt://127.0.0.1:\(port)" }

    public enum HarnessError: Error, CustomStringConvertible {
        case mosquittoMissing
        case didNotStart(String)
        public var description: String {
            switch self {
            case .mosquittoMissing: return "mosquitto is not installed: run ops/test (it installs it) or apt-get install mosquitto"
            case .didNotStart(let log): return "mosquitto did not start: \(log)"
            }
        }
    }

    /// Starts mosquitto on a port reserved earlier (see ``FreePort/reserve()``), then gives the
    /// reservation up: until this moment nothing else could take the port, and connections to it
    /// were refused (an agent "booting while no broker answers").
    public convenience init(reserved reservation: PortReservation) throws {
        defer { reservation.release() }  // mosquitto binds beside it (both SO_REUSEADDR, ours never listens)
        try self.init(port: reservation.port)
    }

    /// Starts mosquitto and waits until it accepts connections; on `port`, or on a free one.
    public init(port fixedPort: Int? = nil) throws {
        guard let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { throw HarnessError.mosquittoMissing }
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("gemello-broker-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var lastError = ""
        for _ in 0..<5 {
            let candidate = try fixedPort ?? FreePort.find()
            let base = (try? String(contentsOf: Repository.root.appendingPathComponent("ops/mosquitto.conf"), encoding: .utf8)) ?? ""
            let config = base + "\nlistener \(candidate) 127.0.0.1\n"
            let configURL = folder.appendingPathComponent("mosquitto.conf")
            try config.write(to: configURL, atomically: true, encoding: .utf8)
            let logURL = folder.appendingPathComponent("mosquitto.log")
            _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
            let process = try ChildProcess(binary, ["-c", configURL.path], log: logURL)
            // Listening *and still running*: a mosquitto that could not bind exits, and whatever
            // answered on the port is then someone else's server.
            if FreePort.waitUntilListening(port: candidate, timeout: 5) && { usleep(100_000); return process.isRunning }() {
                self.port = candidate
                self.process = process
                return
            }
            process.stop()
            lastError = (try? String(contentsOf: logURL, encoding: .utf8)) ?? "no log"
        }
        throw HarnessError.didNotStart(lastError)
    }

    /// Starts mosquitto with the TLS listeners, ACLs and password file of a PKI folder made by
    /// `gemello pki init` (its `mosquitto.conf`), on loopback only; `pidFile` is where the PKI's
    /// reload command finds the broker (`kill -HUP $(cat <pidFile>)`). `port` is the first listener's.
    public init(secureConfig: URL, pidFile: URL) throws {
        guard let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { throw HarnessError.mosquittoMissing }
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("gemello-broker-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let base = (try? String(contentsOf: Repository.root.appendingPathComponent("ops/mosquitto.conf"), encoding: .utf8)) ?? ""
        var ports: [Int] = []
        let secure = try String(contentsOf: secureConfig, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map { line in
            let fields = line.split(separator: " ")
            guard fields.count == 2, fields[0] == "listener", let port = Int(fields[1]) else { return String(line) }
            ports.append(port)
            return "listener \(port) 127.0.0.1"
        }.joined(separator: "\n")
        // As root mosquitto would switch to the 'mosquitto' user, who cannot read a test's files.
        let config = base.split(separator: "\n").filter { !$0.hasPrefix("allow_anonymous") }.joined(separator: "\n")
            + "\n" + secure + "\npid_file \(pidFile.path)\nuser \(String(cString: getpwuid(geteuid()).pointee.pw_name))\n"
        let configURL = folder.appendingPathComponent("mosquitto.conf")
        try config.write(to: configURL, atomically: true, encoding: .utf8)
        let logURL = folder.appendingPathComponent("mosquitto.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let process = try ChildProcess(binary, ["-c", configURL.path], log: logURL)
        guard let first = ports.first, ports.allSatisfy({ FreePort.waitUntilListening(port: $0, timeout: 5) }) else {
            process.stop()
            throw HarnessError.didNotStart((try? String(contentsOf: logURL, encoding: .utf8)) ?? "no log")
        }
        self.port = first
        self.process = process
    }

    /// The broker's log so far (refusals and TLS errors are logged here).
    public var log: String { (try? String(contentsOf: folder.appendingPathComponent("mosquitto.log"), encoding: .utf8)) ?? "" }

    /// Stops the broker (SIGTERM, then SIGKILL after 5 s). Polls instead of `waitUntilExit()`,
    /// which can block forever when called from a Swift concurrency thread on Linux.
    public func stop() {
        thaw()  // a frozen broker would not act on SIGTERM
        process.stop()
    }

    /// Freezes the broker (SIGSTOP): its connections stay open and nothing is answered, as a
    /// broker that stalls; ``thaw()`` lets it go on.
    public func freeze() { kill(process.pid, SIGSTOP) }
    public func thaw() { kill(process.pid, SIGCONT) }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: folder)
    }
}

/// A loopback port held bound (SO_REUSEADDR, never listening) so that neither another test's
/// server (``FreePort/find()``) nor an outgoing connection is handed it, while connections to it
/// are refused, as to a broker that is down. A test that starts its broker late, on a port its
/// agent already knows, reserves the port first: a port merely found and left unbound for 30 s
/// was once taken by a concurrent test's server, and the agent delivered to that instead.
public final class PortReservation: @unchecked Sendable {
    // @unchecked: `socket` is guarded by `lock`.
    public let port: Int
    private var socket: Int32
    private let lock = NSLock()

    init(socket: Int32, port: Int) {
        self.socket = socket
        self.port = port
    }

    /// Gives the port up (idempotent).
    public func release() {
        lock.lock()
        defer { lock.unlock() }
        if socket >= 0 { close(socket) }
        socket = -1
    }

    deinit { release() }
}

/// Finds and probes loopback TCP ports.
public enum FreePort {
    /// Reserves a free loopback port until ``PortReservation/release()`` (`port`: that one, e.g. a
    /// stopped server's, so that no other test's server takes it while it is down: bound, not
    /// listening, it refuses connections).
    public static func reserve(port: Int = 0) throws -> PortReservation {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { close(fd); throw POSIXError(.EADDRINUSE) }
        return PortReservation(socket: fd, port: Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A port the kernel just handed out for a loopback socket (then closed: free now, but
    /// anyone may take it; reserve it instead when it must stay free for a while).
    public static func find() throws -> Int {
        let reservation = try reserve()
        defer { reservation.release() }
        return reservation.port
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port` within `timeout` seconds.
    public static func waitUntilListening(port: Int, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let fd = connect(port: port) {
                close(fd)
                return true
            }
            usleep(50_000)
        }
        return false
    }

    /// A TCP connection to 127.0.0.1:`port` (the caller closes it), or nil when refused.
    public static func connect(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { close(fd); return nil }
        return fd
    }
}
