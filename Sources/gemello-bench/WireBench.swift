import ArgumentParser
import GemelloCore
import GemelloZlib

/// `gemello-bench wire`: bytes per reading of wire format v1 against JSON, Influx line protocol and
/// Sparkplug B (each + zlib 6) on the same batches, and the codec's encode/decode speed on one core.
struct WireBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Wire format v1 size against common encodings, and codec throughput (median of N runs).")

    @Option(help: "Repetitions of the throughput runs; the median is reported.")
    var runs = 5

    @Option(help: "Readings per batch: batches are cut at the last timestamp boundary at or below it.")
    var batchSize = 1000

    struct Sizes {
        var readings = 0, batches = 0, gemello = 0, json = 0, line = 0, lineGrouped = 0, sparkplug = 0, compressedFrames = 0

        mutating func add(_ other: Sizes) {
            readings += other.readings; batches += other.batches; gemello += other.gemello
            json += other.json; line += other.line; lineGrouped += other.lineGrouped; sparkplug += other.sparkplug; compressedFrames += other.compressedFrames
        }

        func perReading(_ bytes: Int) -> String { format(Double(bytes) / Double(readings)) }

        var summary: String {
            "gemello \(perReading(gemello)) B/reading, json+zlib \(perReading(json)), line+zlib \(perReading(line)), sparkplug+zlib \(perReading(sparkplug))"
        }
    }

    func run() async throws {
        var total = Sizes()
        var allBatches: [Batch] = []
        for dataset in try await SharedDataset.loadAll() {
            var sizes = Sizes()
            for batch in dataset.batches(target: batchSize) {
                let frame = try WireFormat.encode(batch)
                try verifyRoundTrip(batch, frame)
                sizes.readings += batch.count
                sizes.batches += 1
                sizes.gemello += frame.count
                if frame[3] & WireFormat.flagCompressed != 0 { sizes.compressedFrames += 1 }
                sizes.json += try Zlib.compress(WireBaselines.json(batch), level: 6).count
                sizes.line += try Zlib.compress(WireBaselines.lineProtocolPerReading(batch), level: 6).count
                sizes.lineGrouped += try Zlib.compress(WireBaselines.lineProtocol(batch), level: 6).count
                sizes.sparkplug += try Zlib.compress(WireBaselines.sparkplug(batch), level: 6).count
                allBatches.append(batch)
            }
            print("\(dataset.name): \(sizes.readings) readings in \(sizes.batches) batches: \(sizes.summary); line+zlib with fields grouped per sensor and instant \(sizes.perReading(sizes.lineGrouped))")
            total.add(sizes)
        }
        let smallestBaseline = min(total.json, total.line, total.lineGrouped, total.sparkplug)
        print("all: \(total.readings) readings in \(total.batches) batches (\(total.compressedFrames) with a zlib body), \(total.gemello) bytes: gemello \(format3(Double(total.gemello) / Double(total.readings))) B/reading; \(total.summary); line+zlib grouped \(total.perReading(total.lineGrouped)); smallest baseline / gemello = \(format(Double(smallestBaseline) / Double(total.gemello)))×")

        var encodeRates: [Double] = [], decodeRates: [Double] = []
        let clock = ContinuousClock()
        for run in 1...runs {
            var frames: [[UInt8]] = []
            frames.reserveCapacity(allBatches.count)
            let encodeTime = try clock.measure { for batch in allBatches { frames.append(try WireFormat.encode(batch)) } }
            var decoded = 0
            let decodeTime = try clock.measure { for frame in frames { decoded += try WireFormat.decode(frame).count } }
            guard decoded == total.readings else { throw BenchError("decoded \(decoded) readings, encoded \(total.readings)") }
            encodeRates.append(Double(total.readings) / encodeTime.seconds)
            decodeRates.append(Double(total.readings) / decodeTime.seconds)
            print("run \(run): encode \(Int(encodeRates.last!)) readings/s, decode \(Int(decodeRates.last!)) readings/s")
        }
        print("wire: \(total.summary), encode \(Int(median(encodeRates))) readings/s, decode \(Int(median(decodeRates))) readings/s")
    }

    /// The benchmark refuses to report a size for a codec that does not give back every bit.
    func verifyRoundTrip(_ batch: Batch, _ frame: [UInt8]) throws {
        guard try WireFormat.decode(frame).isBitIdentical(to: batch) else {
            throw BenchError("batch \(batch.agentID)#\(batch.sequence) does not round-trip exactly")
        }
    }
}

func format(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}

func format3(_ value: Double) -> String {
    let thousandths = Int((value * 1000).rounded())
    let fraction = String(thousandths % 1000)
    return "\(thousandths / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
}
