/// Appends little-endian integers, LEB128 varints and length-prefixed strings to a byte array.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ byte: UInt8) { bytes.append(byte) }
    public mutating func write(_ other: [UInt8]) { bytes.append(contentsOf: other) }

    /// Unsigned LEB128 varint: 7 bits per byte, high bit set on all but the last.
    public mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Signed varint after zigzag mapping (0, -1, 1, -2, ... → 0, 1, 2, 3, ...).
    public mutating func writeSignedVarint(_ value: Int64) {
        writeVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    public mutating func writeUInt32LE(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    public mutating func writeUInt64LE(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    /// A varint byte length followed by the UTF-8 bytes.
    public mutating func writeString(_ string: String) {
        let utf8 = Array(string.utf8)
        writeVarint(UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }
}
