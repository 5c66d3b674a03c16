import GemelloZlib

/// Gemello wire format v1 and v2: the bytes an agent publishes for one ``Batch``.
///
/// The full, byte-level spec with worked examples is docs/wire-format.md; in short:
/// ```
/// frame := "GM" | version u8 = 1 | flags u8 | crc32 u32le (over the rest) | bodyLength varint
///          | body (a zlib stream of it when flags & 1)
/// body  := header | dictionary | column headers | coded section (range coder, to the end)
/// ```
/// Readings that share a timestamp form *rows*; a row's series list is a *pattern*, sent once and
/// then referenced; each series' values are a column of decimal-scaled integers (or IEEE-754 bit
/// patterns) whose deltas an adaptive binary range coder packs below a byte per reading.
public enum WireFormat {
    public static let magic: [UInt8] = [0x47, 0x4D]  // "GM"
    /// The versions this code reads and writes: 1 (self-contained batches) and 2 (the live-rate
    /// form: no agent id, series as session entries defined once per boot epoch).
    public static let versions: ClosedRange<UInt8> = 1...2
    /// Flag bit 0: the body is a zlib stream (RFC 1950).
    public static let flagCompressed: UInt8 = 0x01
    /// Flag bit 1: the frame ends with a ``tagLength``-byte authentication tag (§2.1 of the spec):
    /// the first 16 bytes of HMAC-SHA256(agent key, every frame byte before the tag). The CRC
    /// does not cover the tag. Other bits are reserved and must be 0.
    public static let flagSigned: UInt8 = 0x02
    public static let tagLength = 16

    /// Hard limits a decoder enforces before allocating anything sized by a declared count.
    public struct Limits: Sendable {
        public var maxSeries: Int = 4_096
        public var maxReadings: Int = 1_000_000
        /// Largest body, before or after zlib, a decoder accepts.
        public var maxBodyBytes: Int = 32 << 20
        public var maxStringBytes: Int = 256
        public init() {}
    }

    /// Encodes `batch`. With `compressionLevel` > 0 the body is also zlib-compressed at that level
    /// when that makes the frame smaller (the coded section rarely shrinks further; names do).
    /// With `signingKey` the frame is signed (flag bit 1 and a trailing tag).
    ///
    /// With `entries` (one per series of the batch, from a ``WireSession``) the frame is v2: no agent
    /// id, and each series a session index with its definition only where the entry says so.
    public static func encode(_ batch: Batch, compressionLevel: Int32 = 6, signingKey: [UInt8]? = nil,
                              entries: [SeriesEntry]? = nil) throws(CoreError) -> [UInt8] {
        let body = try encodeBody(batch, entries: entries)
        let version: UInt8 = entries == nil ? 1 : 2
        var stored = body
        var flags: UInt8 = 0
        if compressionLevel > 0 {
            do {
                let compressed = try Zlib.compress(body, level: compressionLevel)
                if compressed.count < body.count {
                    stored = compressed
                    flags |= flagCompressed
                }
            } catch {
                throw CoreError(.decompressionFailed, "zlib could not compress the batch: \(error)")
            }
        }
        guard let signingKey else { return frame(body: stored, bodyLength: body.count, flags: flags, version: version) }
        var signed = frame(body: stored, bodyLength: body.count, flags: flags | flagSigned, version: version)
        signed += HMACSHA256.mac(key: signingKey, message: signed).prefix(tagLength)
        return signed
    }

    /// A signed frame's two parts: the bytes the tag covers and the tag; nil when the frame is
    /// not signed (flag bit 1 clear) or too short to hold a tag.
    public static func signature(of bytes: [UInt8]) -> (signed: ArraySlice<UInt8>, tag: ArraySlice<UInt8>)? {
        guard bytes.count >= 8 + tagLength, bytes[0] == magic[0], bytes[1] == magic[1], bytes[3] & flagSigned != 0 else { return nil }
        return (bytes[..<(bytes.count - tagLength)], bytes[(bytes.count - tagLength)...])
    }

    /// True when `bytes` is a frame signed with `key` (its tag checked in constant time).
    public static func verify(_ bytes: [UInt8], key: [UInt8]) -> Bool {
        guard let (signed, tag) = signature(of: bytes) else { return false }
        return HMACSHA256.constantTimeEqual(HMACSHA256.mac(key: key, message: signed).prefix(tagLength), tag)
    }

    /// Wraps an (optionally compressed) body in a frame: magic, version, flags, CRC-32, length.
    static func frame(body stored: [UInt8], bodyLength: Int, flags: UInt8, version: UInt8 = 1) -> [UInt8] {
        var rest = ByteWriter(capacity: stored.count + 4)
        rest.writeVarint(UInt64(bodyLength))
        rest.write(stored)
        var frame = ByteWriter(capacity: stored.count + 16)
        frame.write(magic)
        frame.write(version)
        frame.write(flags)
        frame.writeUInt32LE(Zlib.crc32(rest.bytes))
        frame.write(rest.bytes)
        return frame.bytes
    }

    /// Decodes a frame, enforcing `limits` before any allocation sized by the input. A v2 frame
    /// carries no agent id: the batch gets `agentID` (the topic's); one that refers to session
    /// series fails with `unknownSeries` here (``decodeFrame(_:agentID:limits:lookup:)`` resolves them).
    public static func decode(_ bytes: [UInt8], agentID: String = "", limits: Limits = Limits()) throws(CoreError) -> Batch {
        try decodeFrame(bytes, agentID: agentID, limits: limits, lookup: { _, _ in nil }).batch
    }

    /// A decoded frame: the batch and (v2) the session series it defined.
    public struct Decoded: Sendable {
        public var batch: Batch
        /// v2: the definitions the batch carried, to be remembered for the agent's session once
        /// the batch is trusted (signature checked).
        public var definitions: [(index: UInt64, series: SeriesInfo)]
    }

    /// Decodes a v1 or v2 frame; a v2 reference to a session series not defined in the batch
    /// itself is resolved by `lookup(boot epoch, index)` (the aggregator's ``SeriesTables``),
    /// else `unknownSeries`.
    public static func decodeFrame(_ bytes: [UInt8], agentID: String, limits: Limits = Limits(),
                                   lookup: (UInt64, UInt64) -> SeriesInfo?) throws(CoreError) -> Decoded {
        var frame = ByteReader(bytes)
        guard bytes.count >= 2, Array(try frame.readBytes(2)) == magic else {
            throw CoreError(.badMagic, "not a Gemello batch (expected magic 'GM')")
        }
        let frameVersion = try frame.readByte()
        guard versions.contains(frameVersion) else {
            throw CoreError(.unsupportedVersion,
                            "wire format version \(frameVersion) is not supported by this decoder (v\(versions.lowerBound)–v\(versions.upperBound)); upgrade the aggregator before the agents")
        }
        let flags = try frame.readByte()
        guard flags & ~(flagCompressed | flagSigned) == 0 else { throw CoreError(.malformed, "reserved flag bits set (flags 0x\(String(flags, radix: 16)))") }
        let expectedCRC = try frame.readUInt32LE()
        // A signed frame's tag is checked by whoever holds the key (`verify`); the decoder skips it.
        let tagBytes = flags & flagSigned != 0 ? tagLength : 0
        guard frame.remaining >= tagBytes else { throw CoreError(.truncated, "the frame is flagged as signed but has no room for its tag") }
        let rest = Array(try frame.readBytes(frame.remaining - tagBytes))
        guard Zlib.crc32(rest) == expectedCRC else { throw CoreError(.checksumMismatch, "CRC-32 does not match the batch body") }
        var restReader = ByteReader(rest)
        let bodyLength = try restReader.readCount(limit: limits.maxBodyBytes, what: "body length")
        let stored = Array(try restReader.readBytes(restReader.remaining))
        let body: [UInt8]
        if flags & flagCompressed != 0 {
            do { body = try Zlib.decompress(stored, limit: bodyLength, sizeHint: bodyLength) } catch {
                throw CoreError(.decompressionFailed, "body does not inflate to its declared \(bodyLength) bytes: \(error)")
            }
        } else {
            body = stored
        }
        guard body.count == bodyLength else {
            throw CoreError(.malformed, "body is \(body.count) bytes, the frame declares \(bodyLength)")
        }
        var reader = ByteReader(body)
        var layout = try BodyLayout.read(from: &reader, limits: limits, version: frameVersion, agentID: agentID, lookup: lookup)
        let coded = Array(try reader.readBytes(reader.remaining))
        let batch = try layout.decodeColumns(coded, limits: limits)
        return Decoded(batch: batch, definitions: layout.definitions)
    }

    /// Decodes a body without its frame (no checksum): for fuzzing and for the spec's examples.
    /// A v2 body (`version` 2) gets `agentID` and resolves references with `lookup`.
    public static func decodeBody(_ body: [UInt8], limits: Limits = Limits(), version: UInt8 = 1, agentID: String = "",
                                  lookup: (UInt64, UInt64) -> SeriesInfo? = { _, _ in nil }) throws(CoreError) -> Batch {
        guard versions.contains(version) else { throw CoreError(.unsupportedVersion, "wire format version \(version) is not supported") }
        var reader = ByteReader(body)
        var layout = try BodyLayout.read(from: &reader, limits: limits, version: version, agentID: agentID, lookup: lookup)
        let coded = Array(try reader.readBytes(reader.remaining))
        return try layout.decodeColumns(coded, limits: limits)
    }

    /// Encodes the body (header, dictionary, column headers, coded section) of `batch`: v1, or
    /// v2 with `entries`.
    public static func encodeBody(_ batch: Batch, entries: [SeriesEntry]? = nil) throws(CoreError) -> [UInt8] {
        var layout = try BodyLayout(batch)
        if let entries {
            guard entries.count == batch.series.count, entries.allSatisfy({ $0.index >= 1 && $0.index <= SeriesEntry.maxIndex }) else {
                throw CoreError(.malformed, "a v2 batch needs one session entry (index 1…\(SeriesEntry.maxIndex)) per series")
            }
            layout.version = 2
            layout.entries = entries
        }
        var writer = ByteWriter(capacity: 256 + batch.count)
        layout.write(to: &writer)
        if batch.count > 0 { writer.write(layout.encodeColumns(batch)) }
        return writer.bytes
    }
}
