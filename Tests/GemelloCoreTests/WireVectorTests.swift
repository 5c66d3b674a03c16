import Foundation
@testable import GemelloCore
import GemelloTesting
import Testing

/// The test vectors: the encoder still produces them, every fixture decodes to the form it states,
/// and every vector printed in docs/wire-format.md is a fixture and decodes too.
@Suite struct WireVectorTests {
    static let folder = Repository.root.appendingPathComponent("Tests/Fixtures/wire-vectors")

    @Test func encoderProducesTheFixtures() throws {
        let rewrite = ProcessInfo.processInfo.environment["GEMELLO_WRITE_VECTORS"] == "1"
        var texts: [(String, String)] = WireVectors.valid.map { vector in
            (vector.name, VectorText.render(name: vector.name, description: vector.description, frame: WireVectors.frame(vector),
                                            batch: vector.batch))
        }
        texts += WireVectors.invalid.map { vector in
            (vector.name, VectorText.render(name: vector.name, description: vector.description, frame: vector.bytes, error: vector.error))
        }
        for (name, text) in texts {
            let url = Self.folder.appendingPathComponent("\(name).vector")
            if rewrite { try text.write(to: url, atomically: true, encoding: .utf8) }
            #expect(try String(contentsOf: url, encoding: .utf8) == text, "\(name).vector differs from what the encoder produces")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path).filter { $0.hasSuffix(".vector") }
        #expect(Set(files) == Set(texts.map { "\($0.0).vector" }), "stale fixture files")
    }

    @Test func everyFixtureDecodesToItsStatedForm() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.folder.path).filter { $0.hasSuffix(".vector") }
        #expect(files.count >= 16)
        for file in files.sorted() {
            let vector = try VectorText.parse(try String(contentsOf: Self.folder.appendingPathComponent(file), encoding: .utf8))
            try Self.check(vector)
        }
    }

    @Test func everyVectorInTheSpecIsAFixtureAndDecodes() throws {
        let spec = try String(contentsOf: Repository.root.appendingPathComponent("docs/wire-format.md"), encoding: .utf8)
        let blocks = spec.components(separatedBy: "```vector\n").dropFirst().map { $0.components(separatedBy: "```").first ?? "" }
        #expect(blocks.count >= 4, "the spec shows its worked examples as ```vector blocks")
        for block in blocks {
            let vector = try VectorText.parse(block)
            try Self.check(vector)
            let fixture = try String(contentsOf: Self.folder.appendingPathComponent("\(vector.name).vector"), encoding: .utf8)
            #expect(fixture == block, "the spec's vector '\(vector.name)' differs from its fixture")
        }
    }

    static func check(_ vector: VectorText.Parsed) throws {
        switch vector.expectation {
        case .error(let code):
            let error = #expect(throws: CoreError.self, "\(vector.name)") { try WireFormat.decode(vector.frame) }
            #expect(error.map { "\($0.code)" } == code, "\(vector.name): \(error?.description ?? "no error")")
        case .batch(let expected):
            let decoded = try WireFormat.decode(vector.frame, agentID: expected.agentID)  // v2 frames carry none
            #expect(decoded.agentID == expected.agentID && decoded.bootEpoch == expected.bootEpoch, "\(vector.name)")
            #expect(decoded.sequence == expected.sequence && decoded.createdAt == expected.createdAt, "\(vector.name)")
            #expect(decoded.timeResolution == expected.timeResolution, "\(vector.name)")
            #expect(decoded.series == expected.series, "\(vector.name)")
            #expect(decoded.seriesIndex == expected.seriesIndex, "\(vector.name)")
            #expect(decoded.timestamps == expected.timestamps, "\(vector.name)")
            #expect(decoded.values.map(\.bitPattern) == expected.values.map(\.bitPattern), "\(vector.name)")
        }
    }
}

/// The text form of a vector: `key: value` lines, hex frame, readings as series index, time and the
/// value's IEEE-754 bits (a `#` comment shows the value). Simple to parse in any language.
enum VectorText {
    enum Expectation {
        case batch(Batch)
        case error(String)
    }

    struct Parsed {
        var name: String
        var frame: [UInt8]
        var expectation: Expectation
    }

    static func render(name: String, description: String, frame: [UInt8], batch: Batch? = nil, error: CoreError.Code? = nil) -> String {
        var lines = ["# \(description)", "name: \(name)"]
        let hex = frame.map { String(format: "%02x", $0) }.joined()
        var chunks: [String] = []
        var rest = Substring(hex)
        while !rest.isEmpty {
            chunks.append(String(rest.prefix(64)))
            rest = rest.dropFirst(64)
        }
        lines.append("frame: \(chunks.first ?? "")")
        lines += chunks.dropFirst().map { "  \($0)" }
        if let error { lines.append("error: \(error)") }
        if let batch {
            lines.append("agent: \(batch.agentID)")
            lines.append("boot-epoch: \(batch.bootEpoch)")
            lines.append("sequence: \(batch.sequence)")
            lines.append("created-at: \(batch.createdAt)")
            lines.append("time-resolution: \(batch.timeResolution.rawValue)")
            for info in batch.series { lines.append("series: \(info.name) \(info.unit)") }
            for i in 0..<batch.count {
                lines.append("reading: \(batch.seriesIndex[i]) \(batch.timestamps[i]) \(String(format: "%016llx", batch.values[i].bitPattern))  # \(batch.values[i])")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    static func parse(_ text: String) throws -> Parsed {
        var name = "", hex = "", error: String?
        var batch = Batch(agentID: "", bootEpoch: 0, sequence: 0, createdAt: 0)
        var lastKey = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) where !line.hasPrefix("#") {
            if line.hasPrefix("  ") && lastKey == "frame" {
                hex += line.trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { throw ParseError(description: "no key in '\(line)'") }
            let key = String(line[..<colon])
            let value = line[line.index(after: colon)...].split(separator: "#", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            let fields = value.split(separator: " ")
            lastKey = key
            switch key {
            case "name": name = value
            case "frame": hex = value
            case "error": error = value
            case "agent": batch.agentID = value
            case "boot-epoch": batch.bootEpoch = UInt64(value)!
            case "sequence": batch.sequence = UInt64(value)!
            case "created-at": batch.createdAt = Int64(value)!
            case "time-resolution": batch.timeResolution = TimeResolution(rawValue: UInt8(value)!)!
            case "series": batch.series.append(SeriesInfo(name: String(fields[0]), unit: String(fields[1])))
            case "reading":
                batch.seriesIndex.append(UInt32(fields[0])!)
                batch.timestamps.append(Int64(fields[1])!)
                batch.values.append(Double(bitPattern: UInt64(fields[2], radix: 16)!))
            default: throw ParseError(description: "unknown key '\(key)'")
            }
        }
        let bytes = stride(from: 0, to: hex.count, by: 2).map { offset -> UInt8 in
            let start = hex.index(hex.startIndex, offsetBy: offset)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16) ?? 0
        }
        return Parsed(name: name, frame: bytes, expectation: error.map { .error($0) } ?? .batch(batch))
    }
}
