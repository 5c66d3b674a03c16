/// Reads what ``ByteWriter`` writes, bounds-checked: every read past the end throws `truncated`,
/// and no read trusts a length it has not checked against the bytes that remain.
public struct ByteReader {
    private let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset >= bytes.count }

    public mutating func readByte() throws(CoreError) -> UInt8 {
        guard offset < bytes.count else { throw CoreError(.truncated, "payload ends inside a field") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readBytes(_ count: Int) throws(CoreError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else { throw CoreError(.truncated, "payload ends inside a \(count)-byte field") }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    public mutating func readVarint() throws(CoreError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try readByte()
            if shift == 63 && byte > 1 { throw CoreError(.malformed, "varint overflows 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw CoreError(.malformed, "varint longer than 10 bytes") }
        }
    }

    public mutating func readSignedVarint() throws(CoreError) -> Int64 {
        let raw = try readVarint()
        return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
    }

    /// A varint that must fit in `0...limit`, for counts and lengths.
    public mutating func readCount(limit: Int, what: String) throws(CoreError) -> Int {
        let raw = try readVarint()
        guard raw <= UInt64(limit) else { throw CoreError(.limitExceeded, "\(what) \(raw) exceeds the limit of \(limit)") }
        return Int(raw)
    }

    public mutating func readUInt32LE() throws(CoreError) -> UInt32 {
        let slice = try readBytes(4)
        var value: UInt32 = 0
        for (i, byte) in slice.enumerated() { value |= UInt32(byte) << UInt32(8 * i) }
        return value
    }

    public mutating func readUInt64LE() throws(CoreError) -> UInt64 {
        let slice = try readBytes(8)
        var value: UInt64 = 0
        for (i, byte) in slice.enumerated() { value |= UInt64(byte) << UInt64(8 * i) }
        return value
    }

    public mutating func readString(maxLength: Int) throws(CoreError) -> String {
        let length = try readCount(limit: maxLength, what: "string length")
        let slice = try readBytes(length)
        guard let string = String(validating: slice, as: UTF8.self) else {
            throw CoreError(.malformed, "string is not valid UTF-8")
        }
        return string
    }
}
