import GemelloCore

/// JSON written straight to UTF-8 bytes, for replies too long to build as a ``JSON`` tree first
/// (temporal histories: thousands of `[value, time]` pairs). Writes what ``JSON/serialized``
/// would for the same values.
public struct JSONText: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 1024) { bytes.reserveCapacity(capacity) }

    @inline(__always)
    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    @inline(__always)
    public mutating func byte(_ b: UInt8) { bytes.append(b) }

    /// Bytes already written as JSON text.
    @inline(__always)
    public mutating func append(_ other: [UInt8]) { bytes.append(contentsOf: other) }

    /// A string, quoted and escaped.
    public mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            if !utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
                bytes.append(0x22)
                bytes.append(contentsOf: utf8)
                bytes.append(0x22)
            } else {
                bytes.append(contentsOf: JSONWriter.quote(String(decoding: utf8, as: UTF8.self)).utf8)
            }
        }
    }

    /// A number as ``JSON`` writes it: integers without a fraction, non-finite as null.
    @inline(__always)
    public mutating func number(_ n: Double) {
        guard n.isFinite else { raw("null"); return }
        if n == n.rounded(), abs(n) < 9_007_199_254_740_992 {
            integer(Int64(n))
        } else {
            bytes.append(contentsOf: n.description.utf8)
        }
    }

    @inline(__always)
    public mutating func integer(_ value: Int64) {
        if value < 0 { bytes.append(0x2D) }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: up to 20 digits, written backwards
        var count = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[19 - count] = UInt8(truncatingIfNeeded: 0x30 + magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            bytes.append(contentsOf: d[(20 - count)..<20])
        }
    }

    /// A date-time in quotes (`"2024-01-01T00:00:00.000Z"`).
    @inline(__always)
    public mutating func time(_ milliseconds: Int64) {
        var buffer: (UInt64, UInt64, UInt64, UInt32, UInt16) = (0, 0, 0, 0, 0)  // 30 bytes
        withUnsafeMutableBytes(of: &buffer) { b in
            b[0] = 0x22
            Timestamp.write(milliseconds: milliseconds, into: UnsafeMutableRawBufferPointer(rebasing: b[1...]))
            b[25] = 0x22
            bytes.append(contentsOf: b[0..<26])
        }
    }

    /// Any ``JSON`` value.
    public mutating func json(_ value: JSON) { bytes.append(contentsOf: value.serialized.utf8) }

    /// `"key":`
    public mutating func key(_ key: String) {
        string(key)
        bytes.append(0x3A)
    }
}
