import Foundation

/// Runs blocking work (waiting for a child process, a server starting) on a thread of its own.
///
/// Swift concurrency has as many cooperative threads as cores: two on the CI machine. A test
/// that blocks one of them (`waitUntilExit`, `usleep`) while another test does the same stalls
/// every task in the process, including the servers under test whose handlers are async (seen:
/// a Python client timing out against a listener that needed a cooperative thread to answer).
public func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let thread = Thread {
            do { continuation.resume(returning: try work()) } catch { continuation.resume(throwing: error) }
        }
        thread.start()
    }
}

/// Runs a program to its end, off the cooperative pool; its exit status and combined output.
public func runProgram(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    try await offPool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
