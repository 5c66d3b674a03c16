import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GemelloCore

/// `gemello-bench victoria`: the peer of `ingest`, on the same corpus and copies: a running
/// VictoriaMetrics (`ops/bench/ingest --peer` starts Debian's) is sent every reading as Influx line
/// protocol (`<sensor>,agent=<id> <attribute>=<value> <ns>`, 10,000 lines a request, two
/// requests in flight: it uses every core); the rate counts until its buffers are flushed. Then
/// its data is merged and its folder measured (file sizes, as the twin store's file is: not the
/// blocks its many small part files occupy).
struct VictoriaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "victoria", abstract: "Ingest the corpus into a running VictoriaMetrics and measure rate and disk (the ingest peer).")

    @Option(help: "VictoriaMetrics' base URL.")
    var url: String

    @Option(help: "Its -storageDataPath (measured with du after the merge).")
    var data: String

    @Option(help: "Copies of the corpus, each as distinct agents (as gemello-bench ingest --copies).")
    var copies = 1

    func run() async throws {
        let datasets = try await SharedDataset.loadAll()
        var bodies: [Data] = []
        var readings = 0
        var body = ""
        var lines = 0
        for copy in 0..<copies {
            for dataset in datasets {
                let agent = copy == 0 ? dataset.agentID : "\(dataset.agentID)-copy-\(copy)"
                for r in dataset.readings {
                    let parts = r.series.name.split(separator: "/", maxSplits: 1)
                    body += "\(parts[0]),agent=\(agent) \(parts.count > 1 ? parts[1] : "value")=\(r.value) \(r.timestamp * 1_000_000)\n"
                    lines += 1
                    readings += 1
                    if lines == 10_000 { bodies.append(Data(body.utf8)); body = ""; lines = 0 }
                }
            }
        }
        if !body.isEmpty { bodies.append(Data(body.utf8)) }
        print("victoria: \(readings) readings in \(bodies.count) line-protocol requests")
        let requests = bodies
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            let next = Counter()
            for _ in 0..<2 {
                group.addTask {
                    while let i = next.take(below: requests.count) { try await post("/write", requests[i]) }
                }
            }
            try await group.waitForAll()
        }
        try await post("/internal/force_flush", nil)
        let seconds = (ContinuousClock.now - started).seconds
        // Count what it kept: every reading must be there before its disk is measured.
        try await post("/internal/force_merge", nil)
        var bytes = 0, stable = 0, last = -1
        for _ in 0..<120 {  // merges run in the background: wait until the folder stops changing
            try await Task.sleep(for: .seconds(1))
            bytes = try folderBytes(data)
            stable = bytes == last ? stable + 1 : 0
            last = bytes
            if stable >= 3 { break }
        }
        print("victoria: ingest \(Int(Double(readings) / seconds)) readings/s, disk \(bytes) bytes, \(String(format: "%.3f", Double(bytes) / Double(readings))) B/reading")
    }

    func post(_ path: String, _ body: Data?) async throws {
        var request = URLRequest(url: URL(string: url + path)!)
        request.httpMethod = body == nil ? "GET" : "POST"
        request.httpBody = body
        let (data, response) = try await URLSession.shared.data(for: request)
        guard let http = response as? HTTPURLResponse, (200..<300).contains(http.statusCode) else {
            throw BenchError("VictoriaMetrics answered \((response as? HTTPURLResponse)?.statusCode ?? 0) to \(path): \(String(decoding: data, as: UTF8.self))")
        }
    }

    func folderBytes(_ path: String) throws -> Int {
        let enumerator = FileManager.default.enumerator(at: URL(fileURLWithPath: path), includingPropertiesForKeys: [.totalFileSizeKey])
        var total = 0
        while let file = enumerator?.nextObject() as? URL {
            total += (try? file.resourceValues(forKeys: [.totalFileSizeKey]).totalFileSize) ?? 0
        }
        return total
    }
}

/// Hands out 0, 1, 2, … to concurrent workers.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func take(below limit: Int) -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}
