@testable import GemelloCore
import GemelloZlib
import GemelloTesting
import Testing

@Suite struct WireFormatTests {
    static let temperature = SeriesInfo(name: "weather/temperature", unit: "CEL")
    static let pm25 = SeriesInfo(name: "air/pm25", unit: "GQ")

    static func batch(_ readings: [Reading], sequence: UInt64 = 7) -> Batch {
        var batch = Batch(agentID: "tower-duomo-01", bootEpoch: 3, sequence: sequence, createdAt: 1_700_000_000_123)
        var lookup: [SeriesInfo: UInt32] = [:]
        for reading in readings { batch.append(reading, lookup: &lookup) }
        return batch
    }

    /// Bit-exact comparison: `==` would call NaN unequal and -0.0 equal to 0.0.
    static func expectBitExact(_ a: Batch, _ b: Batch) {
        #expect(a.agentID == b.agentID && a.bootEpoch == b.bootEpoch && a.sequence == b.sequence && a.createdAt == b.createdAt)
        #expect(a.series == b.series)
        #expect(a.seriesIndex == b.seriesIndex)
        #expect(a.timestamps == b.timestamps)
        #expect(a.values.map(\.bitPattern) == b.values.map(\.bitPattern))
    }

    @Test func roundTripsDecimalsExactly() throws {
        let readings = (0..<500).map { i in
            let series = i % 2 == 0 ? Self.temperature : Self.pm25
            let time: Int64 = 1_600_000_000_000 + Int64(i / 2) * 3_600_000
            let value: Double = Double(i % 37) / 10 - 1.5
            return Reading(series: series, timestamp: time, value: value)
        }
        for level: Int32 in [0, 6] {
            let original = Self.batch(readings)
            Self.expectBitExact(try WireFormat.decode(try WireFormat.encode(original, compressionLevel: level)), original)
        }
    }

    @Test func roundTripsEveryKindOfDouble() throws {
        let specials: [Double] = [.nan, Double(bitPattern: 0x7FF8_0000_0000_BEEF), -.nan, .infinity, -.infinity, -0.0, 0.0,
                                  .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude,
                                  0.1 + 0.2, 1e300, 123_456_789.123_456_7, 9.007_199_254_740_993e15, 0.000_163, 3.3e-05]
        let readings = specials.enumerated().map { Reading(series: Self.pm25, timestamp: Int64($0.offset), value: $0.element) }
        let original = Self.batch(readings)
        Self.expectBitExact(try WireFormat.decode(try WireFormat.encode(original)), original)
    }

    @Test func keepsOutOfOrderAndDuplicateTimestampsAsSent() throws {
        let times: [Int64] = [5000, 1000, 1000, 9000, -3000, 1000, Int64.max / 4, Int64.min / 4]
        let original = Self.batch(times.map { Reading(series: Self.temperature, timestamp: $0, value: 1.5) })
        let decoded = try WireFormat.decode(try WireFormat.encode(original))
        #expect(decoded.timestamps == times)
    }

    @Test func emptyBatchRoundTrips() throws {
        let original = Self.batch([])
        Self.expectBitExact(try WireFormat.decode(try WireFormat.encode(original)), original)
    }

    @Test func rejectsEveryTruncation() throws {
        let bytes = try WireFormat.encode(Self.batch((0..<50).map { Reading(series: Self.pm25, timestamp: Int64($0), value: Double($0)) }))
        for length in 0..<bytes.count {
            #expect(throws: CoreError.self) { try WireFormat.decode(Array(bytes[0..<length])) }
        }
    }

    @Test func rejectsBadMagicVersionAndChecksum() throws {
        let bytes = try WireFormat.encode(Self.batch([Reading(series: Self.pm25, timestamp: 1, value: 2)]))
        var badMagic = bytes; badMagic[0] = 0x58
        #expect(throws: CoreError.self) { try WireFormat.decode(badMagic) }
        var future = bytes; future[2] = 3
        let versionError = #expect(throws: CoreError.self) { try WireFormat.decode(future) }
        #expect(versionError?.code == .unsupportedVersion)
        var flipped = bytes; flipped[bytes.count - 1] ^= 0x01
        let crcError = #expect(throws: CoreError.self) { try WireFormat.decode(flipped) }
        #expect(crcError?.code == .checksumMismatch)
    }

    /// A frame with a valid CRC around an arbitrary body.
    static func frame(body: [UInt8], compressed: Bool = false, declaredLength: Int? = nil) throws -> [UInt8] {
        WireFormat.frame(body: compressed ? try Zlib.compress(body) : body, bodyLength: declaredLength ?? body.count,
                         flags: compressed ? WireFormat.flagCompressed : 0)
    }

    @Test func refusesADecompressionBombAtTheLimit() throws {
        // 64 MB of zeros compresses to ~64 KB; its declared size is past the 32 MB limit.
        let zeros = [UInt8](repeating: 0, count: 64 << 20)
        let bomb = try Self.frame(body: zeros, compressed: true)
        #expect(bomb.count < 100_000)
        let error = #expect(throws: CoreError.self) { try WireFormat.decode(bomb) }
        #expect(error?.code == .limitExceeded)
        // Declaring a small size but inflating to more is caught once the declared size is hit.
        let liar = try Self.frame(body: zeros, compressed: true, declaredLength: 1024)
        let liarError = #expect(throws: CoreError.self) { try WireFormat.decode(liar) }
        #expect(liarError?.code == .decompressionFailed)
    }

    @Test func rejectsCountsThatLie() throws {
        let batch = Self.batch((0..<10).map { Reading(series: Self.pm25, timestamp: Int64($0) * 1000, value: Double($0)) })
        for (readings, rows) in [(900_000, 10), (10, 9), (9, 10), (11, 10)] {
            var layout = try BodyLayout(batch)
            layout.readingCount = readings
            layout.rowCount = rows
            var body = ByteWriter()
            layout.write(to: &body)
            body.write(layout.encodeColumns(batch))
            #expect(throws: CoreError.self, "\(readings) readings in \(rows) rows") { try WireFormat.decode(try Self.frame(body: body.bytes)) }
        }
        var tooMany = ByteWriter()
        tooMany.writeString("a")
        tooMany.writeVarint(1); tooMany.writeVarint(1); tooMany.writeSignedVarint(0); tooMany.write(3)
        tooMany.writeVarint(2_000_000)  // readings past the limit
        let limit = #expect(throws: CoreError.self) { try WireFormat.decode(try Self.frame(body: tooMany.bytes)) }
        #expect(limit?.code == .limitExceeded)
    }

    /// Thousands of corruptions of real frames' bodies: each decodes or throws a CoreError, never
    /// crashes (the fuzz target, ops/fuzz/wire, runs the same check for minutes).
    @Test func corruptBodiesNeverCrashTheDecoder() throws {
        var random = SystemRandomNumberGenerator()
        let bodies = WireVectors.valid.map { WireVectors.body($0.batch) }.filter { !$0.isEmpty }
        var rejected = 0
        for round in 0..<20_000 {
            var body = bodies[round % bodies.count]
            for _ in 0..<(1 + round % 4) {
                let position = Int.random(in: 0..<body.count, using: &random)
                switch round % 3 {
                case 0: body[position] ^= UInt8(1 << Int.random(in: 0..<8, using: &random))
                case 1: body[position] = UInt8.random(in: 0...255, using: &random)
                default: body.removeSubrange(position...)
                }
                if body.isEmpty { break }
            }
            do { _ = try WireFormat.decodeBody(body) } catch { rejected += 1 }
        }
        #expect(rejected > 10_000)
    }

    @Test func finerTimeResolutionsRoundTripAndFloorToMilliseconds() throws {
        for resolution in TimeResolution.allCases {
            var batch = Batch(agentID: "a", bootEpoch: 1, sequence: 1, createdAt: 1_700_000_000_000, timeResolution: resolution)
            var lookup: [SeriesInfo: UInt32] = [:]
            for time: Int64 in [1_700_000_000_000_999_999 / (1_000_000 / resolution.unitsPerMillisecond), -1, -1_000_001, 0] {
                batch.append(Reading(series: Self.pm25, timestamp: time, value: 1), lookup: &lookup)
            }
            Self.expectBitExact(try WireFormat.decode(try WireFormat.encode(batch)), batch)
            #expect(batch.millisecondTimestamp(1) == -1)
            #expect(batch.millisecondTimestamp(3) == 0)
        }
        let micro = Batch(agentID: "a", bootEpoch: 1, sequence: 1, createdAt: 0, timeResolution: .microseconds,
                          series: [Self.pm25], seriesIndex: [0, 0], timestamps: [-1_000_001, 1_999], values: [1, 2])
        #expect(micro.millisecondTimestamp(0) == -1_001)
        #expect(micro.millisecondTimestamp(1) == 1)
    }

    @Test func rejectsBatchesTheEncoderCannotRepresent() {
        var unused = Self.batch([Reading(series: Self.pm25, timestamp: 1, value: 2)])
        unused.series.append(Self.temperature)
        #expect(throws: CoreError.self) { try WireFormat.encode(unused) }
        let longName = SeriesInfo(name: "s/" + String(repeating: "x", count: 300), unit: "CEL")
        #expect(throws: CoreError.self) { try WireFormat.encode(Self.batch([Reading(series: longName, timestamp: 1, value: 2)])) }
    }

    @Test func rejectsOverflowingVarints() throws {
        var reader = ByteReader([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        #expect(throws: CoreError.self) { try reader.readVarint() }
        var eleven = ByteReader([UInt8](repeating: 0x80, count: 11))
        #expect(throws: CoreError.self) { try eleven.readVarint() }
        var max = ByteReader([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        #expect(try max.readVarint() == UInt64.max)
    }

    @Test func ackRoundTripsAndRejectsGarbage() throws {
        let ack = BatchAck(bootEpoch: 9, sequences: [1, 2, 300, UInt64.max])
        #expect(try BatchAck.decode(ack.encode()) == ack)
        #expect(throws: CoreError.self) { try BatchAck.decode([0x47, 0x41]) }
        #expect(throws: CoreError.self) { try BatchAck.decode([1, 2, 3, 4]) }
    }

    @Test func decimalSeriesCompressWellBelowRawDoubles() throws {
        let readings = (0..<1000).map { Reading(series: Self.temperature, timestamp: Int64($0) * 3_600_000, value: 10 + Double($0 % 50) / 10) }
        let bytes = try WireFormat.encode(Self.batch(readings))
        #expect(bytes.count < 1000 * 2)  // raw doubles alone would be 8000 bytes
    }
}
