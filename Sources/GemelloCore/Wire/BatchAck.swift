/// The aggregator's end-to-end acknowledgement: these batch sequences are committed to the twin.
///
/// Layout: magic "GA" | version u8 = 1 | boot epoch varint | count varint | sequences (varint each).
/// Sent on ``Topics/ack(agent:)``; a batch leaves the agent's buffer only when acknowledged here.
public struct BatchAck: Sendable, Equatable {
    public var bootEpoch: UInt64
    public var sequences: [UInt64]

    public init(bootEpoch: UInt64, sequences: [UInt64]) {
        self.bootEpoch = bootEpoch
        self.sequences = sequences
    }

    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 8 + sequences.count * 3)
        writer.write([0x47, 0x41, 1])
        writer.writeVarint(bootEpoch)
        writer.writeVarint(UInt64(sequences.count))
        for sequence in sequences { writer.writeVarint(sequence) }
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
        return BatchAck(bootEpoch: epoch, sequences: sequences)
    }
}
