import GemelloZlib

/// Gemello wire format v1: the bytes an agent publishes for one ``Batch``.
///
/// Layout (full spec: docs/wire-format.md):
/// ```
/// frame  := magic "GM" | version u8 = 1 | flags u8 | crc32 u32le (over everything after it)
///           | rawLength varint (body size before compression) | body (zlib if flags & 1)
/// body   := header | dictionary | series-index column | timestamp column | value columns
/// ```
public enum WireFormat {
    public static let magic: [UInt8] = [0x47, 0x4D]  // "GM"
    public static let version: UInt8 = 1
    /// Flag bit 0: the body is a zlib stream.
    public static let flagCompressed: UInt8 = 0x01

    /// Hard limits a decoder enforces before allocating anything proportional to a declared count.
    public struct Limits: Sendable {
        public var maxSeries: Int = 4_096
        public var maxReadings: Int = 1_000_000
        public var maxBodyBytes: Int = 32 << 20
        public var maxStringBytes: Int = 256
        public init() {}
    }

    /// Value encodings per series (the byte after its unit in the dictionary).
    enum ValueKind {
        /// 0...9: decimal-scaled integers `value × 10^k`, delta-coded as zigzag varints.
        static let maxScale: UInt8 = 9
        /// Raw IEEE-754 bit patterns, 8 bytes little-endian each (any Double, exactly).
        static let rawDouble: UInt8 = 0xFF
    }

    static let powersOfTen: [Double] = (0...Int(ValueKind.maxScale)).map { exponent in
        var p = 1.0
        for _ in 0..<exponent { p *= 10 }
        return p
    }

    /// Encodes `batch`, compressing with zlib at `compressionLevel` (0 disables compression).
    public static func encode(_ batch: Batch, compressionLevel: Int32 = 6) throws(CoreError) -> [UInt8] {
        var body = ByteWriter(capacity: 64 + batch.count * 4)
        body.writeString(batch.agentID)
        body.writeVarint(batch.bootEpoch)
        body.writeVarint(batch.sequence)
        body.writeSignedVarint(batch.createdAt)
        body.writeVarint(UInt64(batch.series.count))
        body.writeVarint(UInt64(batch.count))

        let kinds = chooseValueKinds(batch)
        for (info, kind) in zip(batch.series, kinds) {
            body.writeString(info.name)
            body.writeString(info.unit)
            body.write(kind)
        }
        for index in batch.seriesIndex { body.writeVarint(UInt64(index)) }
        var previousTime: Int64 = 0
        for time in batch.timestamps {
            body.writeSignedVarint(time &- previousTime)
            previousTime = time
        }
        var previousScaled = [Int64](repeating: 0, count: batch.series.count)
        for (index, value) in zip(batch.seriesIndex, batch.values) {
            let s = Int(index)
            let kind = kinds[s]
            if kind == ValueKind.rawDouble {
                body.writeUInt64LE(value.bitPattern)
            } else {
                let scaled = Int64((value * powersOfTen[Int(kind)]).rounded())
                body.writeSignedVarint(scaled &- previousScaled[s])
                previousScaled[s] = scaled
            }
        }

        var frame = ByteWriter(capacity: body.bytes.count / 3 + 16)
        frame.write(magic)
        frame.write(version)
        let compress = compressionLevel > 0
        frame.write(compress ? flagCompressed : 0)
        var rest = ByteWriter(capacity: body.bytes.count / 3 + 8)
        rest.writeVarint(UInt64(body.bytes.count))
        if compress {
            do { rest.write(try Zlib.compress(body.bytes, level: compressionLevel)) } catch {
                throw CoreError(.decompressionFailed, "zlib could not compress the batch: \(error)")
            }
        } else {
            rest.write(body.bytes)
        }
        frame.writeUInt32LE(Zlib.crc32(rest.bytes))
        frame.write(rest.bytes)
        return frame.bytes
    }

    /// For each series, the smallest decimal scale that reproduces every value bit-for-bit, or raw.
    static func chooseValueKinds(_ batch: Batch) -> [UInt8] {
        var kinds = [UInt8](repeating: 0, count: batch.series.count)
        for (index, value) in zip(batch.seriesIndex, batch.values) {
            let s = Int(index)
            var kind = kinds[s]
            while kind != ValueKind.rawDouble && !isExact(value, scale: kind) {
                kind = kind == ValueKind.maxScale ? ValueKind.rawDouble : kind + 1
            }
            kinds[s] = kind
        }
        return kinds
    }

    /// Whether `value × 10^scale` is an integer that divides back to exactly `value`.
    @inline(__always)
    static func isExact(_ value: Double, scale: UInt8) -> Bool {
        guard value.isFinite, value != 0 || value.sign == .plus else { return false }  // -0.0, NaN, ±Inf go raw
        let power = powersOfTen[Int(scale)]
        let scaled = (value * power).rounded()
        guard abs(scaled) < 9.0e15 else { return false }  // keep within exact Int64/Double range
        return Double(Int64(scaled)) / power == value
    }

    /// Decodes a frame, enforcing `limits` before any allocation sized by the input.
    public static func decode(_ bytes: [UInt8], limits: Limits = Limits()) throws(CoreError) -> Batch {
        var frame = ByteReader(bytes)
        guard bytes.count >= 4, Array(try frame.readBytes(2)) == magic else {
            throw CoreError(.badMagic, "not a Gemello batch (expected magic 'GM')")
        }
        let frameVersion = try frame.readByte()
        guard frameVersion == version else {
            throw CoreError(.unsupportedVersion, "wire format version \(frameVersion) is not supported by this v\(version) decoder")
        }
        let flags = try frame.readByte()
        guard flags & ~flagCompressed == 0 else { throw CoreError(.malformed, "unknown flags 0x\(String(flags, radix: 16))") }
        let expectedCRC = try frame.readUInt32LE()
        let rest = Array(try frame.readBytes(frame.remaining))
        guard Zlib.crc32(rest) == expectedCRC else { throw CoreError(.checksumMismatch, "CRC-32 does not match the batch body") }
        var restReader = ByteReader(rest)
        let rawLength = try restReader.readCount(limit: limits.maxBodyBytes, what: "body size")
        let stored = Array(try restReader.readBytes(restReader.remaining))
        let body: [UInt8]
        if flags & flagCompressed != 0 {
            do { body = try Zlib.decompress(stored, limit: rawLength, sizeHint: rawLength) } catch {
                throw CoreError(.decompressionFailed, "body does not inflate to its declared \(rawLength) bytes: \(error)")
            }
        } else {
            body = stored
        }
        guard body.count == rawLength else {
            throw CoreError(.malformed, "body is \(body.count) bytes, header declares \(rawLength)")
        }
        return try decodeBody(body, limits: limits)
    }

    static func decodeBody(_ body: [UInt8], limits: Limits) throws(CoreError) -> Batch {
        var reader = ByteReader(body)
        let agentID = try reader.readString(maxLength: limits.maxStringBytes)
        let bootEpoch = try reader.readVarint()
        let sequence = try reader.readVarint()
        let createdAt = try reader.readSignedVarint()
        let seriesCount = try reader.readCount(limit: limits.maxSeries, what: "series count")
        let readingCount = try reader.readCount(limit: limits.maxReadings, what: "reading count")
        // Every reading takes at least 3 bytes (index, time delta, value): a count the body
        // cannot hold is a lie, refused before allocating columns for it.
        guard readingCount <= reader.remaining / 3 + 1 else {
            throw CoreError(.malformed, "reading count \(readingCount) cannot fit in \(reader.remaining) bytes")
        }
        var series: [SeriesInfo] = []
        var kinds: [UInt8] = []
        series.reserveCapacity(seriesCount)
        for _ in 0..<seriesCount {
            let name = try reader.readString(maxLength: limits.maxStringBytes)
            let unit = try reader.readString(maxLength: limits.maxStringBytes)
            let kind = try reader.readByte()
            guard kind <= ValueKind.maxScale || kind == ValueKind.rawDouble else {
                throw CoreError(.malformed, "series '\(name)' has unknown value encoding \(kind)")
            }
            series.append(SeriesInfo(name: name, unit: unit))
            kinds.append(kind)
        }
        var batch = Batch(agentID: agentID, bootEpoch: bootEpoch, sequence: sequence, createdAt: createdAt, series: series)
        batch.seriesIndex.reserveCapacity(readingCount)
        for _ in 0..<readingCount {
            let index = try reader.readVarint()
            guard index < UInt64(seriesCount) else { throw CoreError(.malformed, "series index \(index) out of range") }
            batch.seriesIndex.append(UInt32(index))
        }
        batch.timestamps.reserveCapacity(readingCount)
        var time: Int64 = 0
        for _ in 0..<readingCount {
            time = time &+ (try reader.readSignedVarint())
            batch.timestamps.append(time)
        }
        batch.values.reserveCapacity(readingCount)
        var previousScaled = [Int64](repeating: 0, count: seriesCount)
        for index in batch.seriesIndex {
            let s = Int(index)
            let kind = kinds[s]
            if kind == ValueKind.rawDouble {
                batch.values.append(Double(bitPattern: try reader.readUInt64LE()))
            } else {
                let scaled = previousScaled[s] &+ (try reader.readSignedVarint())
                previousScaled[s] = scaled
                batch.values.append(Double(scaled) / powersOfTen[Int(kind)])
            }
        }
        guard reader.isAtEnd else { throw CoreError(.malformed, "\(reader.remaining) unexpected bytes after the last value") }
        return batch
    }
}
