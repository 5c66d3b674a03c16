import Foundation

/// The offline validators of the standards in `../shared/standards`, run as they ship (Python):
/// what the twin emits is checked against the published schemas, not against our own idea of them.
public enum StandardValidators {
    static var standards: URL { Repository.root.deletingLastPathComponent().appendingPathComponent("shared/standards") }

    /// `validate_ngsild.py KIND file`: KIND is Entity, EntityTemporal, Subscription or Notification.
    /// Each JSON value is validated on its own; returns the validator's output when one fails.
    public static func ngsild(_ kind: String, _ documents: [String]) throws -> String? {
        try run([standards.appendingPathComponent("ngsi-ld/validate_ngsild.py").path, kind], documents)
    }

    /// `smart-data-models/validate.py MODEL file` (key-values form).
    public static func smartDataModel(_ model: String, _ documents: [String]) throws -> String? {
        try run([standards.appendingPathComponent("smart-data-models/validate.py").path, model], documents)
    }

    /// `cap/validate_cap.py file.xml` against the OASIS CAP 1.2 XSD.
    public static func cap(_ documents: [String]) throws -> String? {
        try run([standards.appendingPathComponent("cap/validate_cap.py").path], documents, extension: "xml")
    }

    private static func run(_ arguments: [String], _ documents: [String], extension ext: String = "json") throws -> String? {
        let folder = try Repository.temporaryFolder("validate")
        defer { try? FileManager.default.removeItem(at: folder) }
        var files: [String] = []
        for (i, document) in documents.enumerated() {
            let file = folder.appendingPathComponent("doc\(i).\(ext)")
            try Data(document.utf8).write(to: file)
            files.append(file.path)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments + files
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        // Polls: waitUntilExit() can block forever on a Swift concurrency thread on Linux.
        for _ in 0..<600 where process.isRunning { usleep(20_000) }
        return process.terminationStatus == 0 ? nil : text
    }
}

/// A real HTTP server (Python's http.server) serving a folder on a free loopback port: remote
/// JSON-LD contexts for the broker's tests.
public final class StaticHTTPServer: @unchecked Sendable {
    // @unchecked: the process handle is only touched by init and stop.
    public let port: Int
    public let folder: URL
    private let process: Process

    public init(folder: URL) throws {
        self.folder = folder
        port = try FreePort.find()
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", folder.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        guard FreePort.waitUntilListening(port: port, timeout: 10) else {
            process.terminate()
            throw POSIXError(.ECONNREFUSED)
        }
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// SIGKILL (it keeps no state), then polls until it is gone (see ``BrokerHarness/stop()``).
    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        for _ in 0..<100 where process.isRunning { usleep(20_000) }
    }

    deinit { stop() }
}
