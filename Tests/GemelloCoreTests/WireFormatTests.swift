import GemelloCore
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
        var future = bytes; future[2] = 2
        let versionError = #expect(throws: CoreError.self) { try WireFormat.decode(future) }
        #expect(versionError?.code == .unsupportedVersion)
        var flipped = bytes; flipped[bytes.count - 1] ^= 0x01
        let crcError = #expect(throws: CoreError.self) { try WireFormat.decode(flipped) }
        #expect(crcError?.code == .checksumMismatch)
    }

    /// A frame with a valid CRC around an arbitrary (uncompressed) body.
    static func frame(body: [UInt8], compressed: Bool = false, declaredLength: Int? = nil) throws -> [UInt8] {
        var rest = ByteWriter()
        rest.writeVarint(UInt64(declaredLength ?? body.count))
        rest.write(compressed ? try Zlib.compress(body) : body)
        var frame = ByteWriter()
        frame.write([0x47, 0x4D, 1, compressed ? 1 : 0])
        frame.writeUInt32LE(Zlib.crc32(rest.bytes))
        frame.write(rest.bytes)
        return frame.bytes
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
        var body = ByteWriter()
        body.writeString("a")
        body.writeVarint(1); body.writeVarint(1); body.writeSignedVarint(0)
        body.writeVarint(1)            // one series
        body.writeVarint(900_000)      // 900k readings declared, a handful of bytes follow
        body.writeString("s/x"); body.writeString("CEL"); body.write(0)
        body.write([0, 0, 0])
        let error = #expect(throws: CoreError.self) { try WireFormat.decode(try Self.frame(body: body.bytes)) }
        #expect(error?.code == .malformed)

        var tooMany = ByteWriter()
        tooMany.writeString("a")
        tooMany.writeVarint(1); tooMany.writeVarint(1); tooMany.writeSignedVarint(0)
        tooMany.writeVarint(1_000_000)  // series count past the limit
        let limit = #expect(throws: CoreError.self) { try WireFormat.decode(try Self.frame(body: tooMany.bytes)) }
        #expect(limit?.code == .limitExceeded)
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

@Suite struct WireFormatSpecExampleTests {
    /// The worked example in docs/wire-format.md, byte for byte.
    @Test func specExampleEncodesAndDecodes() throws {
        let hex = "474d010026e1b3422c0161010100010117617270612d73656e61746f2f74656d70657261747572650343454c010080d6e3f1aa564a"
        let bytes = stride(from: 0, to: hex.count, by: 2).map { offset -> UInt8 in
            let start = hex.index(hex.startIndex, offsetBy: offset)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
        }
        var batch = Batch(agentID: "a", bootEpoch: 1, sequence: 1, createdAt: 0)
        var lookup: [SeriesInfo: UInt32] = [:]
        batch.append(Reading(series: SeriesInfo(name: "arpa-senato/temperature", unit: "CEL"), timestamp: 1_483_225_200_000, value: 3.7), lookup: &lookup)
        #expect(try WireFormat.encode(batch, compressionLevel: 0) == bytes)
        #expect(try WireFormat.decode(bytes) == batch)
        let spec = try String(contentsOf: GemelloTesting.Repository.root.appendingPathComponent("docs/wire-format.md"), encoding: .utf8)
        #expect(spec.contains(bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: " ")))
    }
}
