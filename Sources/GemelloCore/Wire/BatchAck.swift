/// The aggregator's end-to-end acknowledgement: these batch sequences are committed to the twin.
///
/// Layout: magic "GA" | version u8 = 1 | boot epoch varint | count varint | sequences (varint each)
/// | [features u8]. Sent on ``Topics/ack(agent:)``; a batch leaves the agent's buffer only when
/// acknowledged here. The optional trailing features byte says what the acknowledging aggregator
/// understands (decoders from before it stop after the sequences and never see it).
public struct BatchAck: Sendable, Equatable {
    public var bootEpoch: UInt64
    public var sequences: [UInt64]
    /// What the aggregator understands; `[]` from an aggregator that sends no features byte.
    public var features: Features

    /// Bit 0: wire format v2 frames (session series, docs/wire-format.md §3.5); bit 1: health
    /// deltas (docs/protocol.md). Other bits are reserved (ignored).
    public struct Features: OptionSet, Sendable, Equatable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let wireV2 = Features(rawValue: 1)
        public static let healthDeltas = Features(rawValue: 2)
        /// What this build's aggregator understands.
        public static let current: Features = [.wireV2, .healthDeltas]
    }

    public init(bootEpoch: UInt64, sequences: [UInt64], features: Features = []) {
        self.bootEpoch = bootEpoch
        self.sequences = sequences
        self.features = features
    }

    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 8 + sequences.count * 3)
        writer.write([0x47, 0x41, 1])
        writer.writeVarint(bootEpoch)
        writer.writeVarint(UInt64(sequences.count))
        for sequence in sequences { writer.writeVarint(sequence) }
        if !features.isEmpty { writer.write(features.rawValue) }
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(CoreError) -> BatchAck {
        var reader = ByteReader(bytes)
        guard bytes.count >= 3, Array(try reader.readBytes(2)) == [0x47, 0x41] else {
            throw CoreError(.badMagic, "not a Gemello acknowledgement")
        }
        let version = try reader.readByte()
        guard version == 1 else { throw CoreError(.unsupportedVersion, "ack version \(version) is not supported") }
        let epoch = try reader.readVarint()
        let count = try reader.readCount(limit: min(100_000, reader.remaining), what: "ack count")
        var sequences: [UInt64] = []
        sequences.reserveCapacity(count)
        for _ in 0..<count { sequences.append(try reader.readVarint()) }
        let features = reader.remaining > 0 ? Features(rawValue: try reader.readByte()) : []
        return BatchAck(bootEpoch: epoch, sequences: sequences, features: features)
    }
}
