/// The binary range coder of wire format v1 (docs/wire-format.md, "Range coder").
///
/// It is LZMA's coder with 12-bit probabilities: every adaptive bit is coded with a
/// ``Probability`` (chance of a 0 in 4096ths) that moves towards what it sees, by 1/2 of the
/// distance on its first bit, then 1/4, 1/8 and 1/16 from the fourth on. Fast first steps matter
/// because every batch starts its models afresh; the slow steady rate makes a series whose deltas
/// are mostly zero cost a few thousandths of a bit per reading. Integer only: any two
/// implementations produce the same bytes.
enum RangeCoder {
    static let probabilityBits: UInt32 = 12
    static let initialProbability: Probability = 1 << 11
    static let topValue: UInt32 = 1 << 24

    /// The new state after coding `bit` with `state`: the probability moves by 1/2^(count + 1).
    @inline(__always)
    static func adapt(_ state: Probability, bit: Bool) -> Probability {
        let count = state >> 12, probability = state & 0x0FFF
        let shift = count &+ 1
        let updated = bit ? probability &- (probability >> shift) : probability &+ ((4096 &- probability) >> shift)
        return (count < 3 ? count &+ 1 : 3) << 12 | updated
    }
}

/// One adaptive bit context: bits 0–11 the probability of a 0 bit in 4096ths (it stays within
/// 15...4081), bits 12–13 how many bits it has adapted to so far, saturating at 3.
typealias Probability = UInt16

struct RangeEncoder {
    private(set) var bytes: [UInt8]
    private var low: UInt64 = 0
    private var range: UInt32 = 0xFFFF_FFFF
    private var cache: UInt8 = 0
    private var cacheSize: Int = 1

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inline(__always)
    mutating func encode(_ bit: Bool, _ probability: inout Probability) {
        let bound = (range >> RangeCoder.probabilityBits) &* UInt32(probability & 0x0FFF)
        if bit {
            low &+= UInt64(bound)
            range &-= bound
        } else {
            range = bound
        }
        probability = RangeCoder.adapt(probability, bit: bit)
        while range < RangeCoder.topValue {
            range <<= 8
            shiftLow()
        }
    }

    /// `count` bits of `value`, most significant first, each with probability ½ (no context).
    @inline(__always)
    mutating func encodeDirect(_ value: UInt64, count: Int) {
        var shift = count
        while shift > 0 {
            shift -= 1
            range >>= 1
            if (value >> UInt64(shift)) & 1 == 1 { low &+= UInt64(range) }
            while range < RangeCoder.topValue {
                range <<= 8
                shiftLow()
            }
        }
    }

    private mutating func shiftLow() {
        if low < 0xFF00_0000 || low >= 1 << 32 {
            let carry = UInt8(truncatingIfNeeded: low >> 32)
            var pending = cache
            repeat {
                bytes.append(pending &+ carry)
                pending = 0xFF
                cacheSize -= 1
            } while cacheSize != 0
            cache = UInt8(truncatingIfNeeded: low >> 24)
        }
        cacheSize += 1
        low = (low & 0x00FF_FFFF) << 8
    }

    /// Writes the last bytes; the encoder must not be used afterwards.
    mutating func finish() -> [UInt8] {
        for _ in 0..<5 { shiftLow() }
        return bytes
    }
}

/// Decodes what ``RangeEncoder`` wrote. Reading past the end feeds zero bytes and is counted:
/// a stream that needed them was truncated (checked by ``finish()``), never a crash.
struct RangeDecoder {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var position: Int
    private var range: UInt32 = 0xFFFF_FFFF
    private var code: UInt32 = 0
    private var overrun = 0

    /// - Throws: `malformed` if the stream does not start with the coder's zero byte.
    init(_ bytes: UnsafeBufferPointer<UInt8>) throws(CoreError) {
        self.bytes = bytes
        position = 0
        guard bytes.count >= 5 else { throw CoreError(.truncated, "coded section is \(bytes.count) bytes, at least 5 expected") }
        guard bytes[0] == 0 else { throw CoreError(.malformed, "coded section does not start with the range coder's 0 byte") }
        position = 1
        for _ in 0..<4 { code = (code << 8) | UInt32(nextByte()) }
    }

    @inline(__always)
    private mutating func nextByte() -> UInt8 {
        guard position < bytes.count else {
            overrun &+= 1
            return 0
        }
        defer { position &+= 1 }
        return bytes[position]
    }

    @inline(__always)
    mutating func decode(_ probability: inout Probability) -> Bool {
        let bound = (range >> RangeCoder.probabilityBits) &* UInt32(probability & 0x0FFF)
        let bit: Bool
        if code < bound {
            range = bound
            bit = false
        } else {
            code &-= bound
            range &-= bound
            bit = true
        }
        probability = RangeCoder.adapt(probability, bit: bit)
        while range < RangeCoder.topValue {
            range <<= 8
            code = (code << 8) | UInt32(nextByte())
        }
        return bit
    }

    @inline(__always)
    mutating func decodeDirect(count: Int) -> UInt64 {
        var value: UInt64 = 0
        for _ in 0..<count {
            range >>= 1
            var bit: UInt64 = 0
            if code >= range {
                code &-= range
                bit = 1
            }
            value = (value << 1) | bit
            while range < RangeCoder.topValue {
                range <<= 8
                code = (code << 8) | UInt32(nextByte())
            }
        }
        return value
    }

    /// Whether the stream ended exactly where the encoder's flush ended it.
    func finish() throws(CoreError) {
        guard overrun == 0 else { throw CoreError(.truncated, "coded section ends \(overrun) bytes early") }
        guard position == bytes.count else {
            throw CoreError(.malformed, "\(bytes.count - position) unexpected bytes after the coded section")
        }
    }

    /// Bails out of a decode loop early when the input ran out long ago (a lying count).
    var isExhausted: Bool { overrun > 8 }
}
