/// The adaptive code for one stream of integers (docs/wire-format.md, "Integers").
///
/// An integer is coded as: a *zero* bit; for a non-zero signed value a *sign* bit; the bit length
/// `L` of its magnitude in unary (bits `1…1 0`, at most 63 of them); the two bits after the
/// magnitude's leading 1 through a small tree of contexts per `L`; the remaining bits as plain
/// bits. Each instance learns one stream only (one series' deltas, the row times, ...), so its
/// probabilities fit that stream within a few dozen readings.
///
/// A model is a view of `contextCount` probabilities in a ``ModelArena``: all of one batch's models
/// live in one allocation, initialised once, so the hot loops never check or copy arrays.
struct IntegerModel {
    // Context layout: [0] zero, [1] sign, [2...65] unary length, [66...] mantissa trees (4 per L).
    static let contextCount = 66 + 4 * 64
    private let contexts: UnsafeMutableBufferPointer<Probability>

    init(_ contexts: UnsafeMutableBufferPointer<Probability>) {
        precondition(contexts.count == Self.contextCount)
        self.contexts = contexts
    }

    func encode(signed value: Int64, into encoder: inout RangeEncoder) {
        let c = contexts
        encoder.encode(value != 0, &c[0])
        guard value != 0 else { return }
        encoder.encode(value < 0, &c[1])
        Self.encodeMagnitude(value.magnitude, contexts: c, into: &encoder)
    }

    func encode(unsigned value: UInt64, into encoder: inout RangeEncoder) {
        let c = contexts
        encoder.encode(value != 0, &c[0])
        guard value != 0 else { return }
        Self.encodeMagnitude(value, contexts: c, into: &encoder)
    }

    @inline(__always)
    private static func encodeMagnitude(_ magnitude: UInt64, contexts c: UnsafeMutableBufferPointer<Probability>,
                                        into encoder: inout RangeEncoder) {
        let length = 64 - magnitude.leadingZeroBitCount  // 1...64
        var i = 1
        while i < length {
            encoder.encode(true, &c[1 + i])
            i += 1
        }
        if length < 64 { encoder.encode(false, &c[1 + length]) }
        let mantissaBits = length - 1
        let treeBits = min(2, mantissaBits)
        let tree = 66 + 4 * (length - 1)
        var node = 1
        for j in 0..<treeBits {
            let bit = (magnitude >> UInt64(mantissaBits - 1 - j)) & 1
            encoder.encode(bit == 1, &c[tree + node])
            node = node * 2 + Int(bit)
        }
        if mantissaBits > treeBits {
            let rest = mantissaBits - treeBits
            encoder.encodeDirect(magnitude & ((1 << UInt64(rest)) - 1), count: rest)
        }
    }

    func decodeSigned(from decoder: inout RangeDecoder) -> Int64 {
        let c = contexts
        guard decoder.decode(&c[0]) else { return 0 }
        let negative = decoder.decode(&c[1])
        let magnitude = Self.decodeMagnitude(contexts: c, from: &decoder)
        return negative ? Int64(bitPattern: 0 &- magnitude) : Int64(bitPattern: magnitude)
    }

    func decodeUnsigned(from decoder: inout RangeDecoder) -> UInt64 {
        let c = contexts
        guard decoder.decode(&c[0]) else { return 0 }
        return Self.decodeMagnitude(contexts: c, from: &decoder)
    }

    @inline(__always)
    private static func decodeMagnitude(contexts c: UnsafeMutableBufferPointer<Probability>,
                                        from decoder: inout RangeDecoder) -> UInt64 {
        var length = 1
        while length < 64 && decoder.decode(&c[1 + length]) { length += 1 }
        let mantissaBits = length - 1
        let treeBits = min(2, mantissaBits)
        let tree = 66 + 4 * (length - 1)
        var node = 1
        for _ in 0..<treeBits {
            node = node * 2 + (decoder.decode(&c[tree + node]) ? 1 : 0)
        }
        // node = 1 followed by the tree bits: exactly the magnitude's leading bits.
        var magnitude = UInt64(node)
        if mantissaBits > treeBits {
            let rest = mantissaBits - treeBits
            magnitude = (magnitude << UInt64(rest)) | decoder.decodeDirect(count: rest)
        }
        return magnitude
    }
}

/// The probabilities of every model one batch needs, in one allocation.
struct ModelArena {
    private var storage: [Probability]

    /// `models` integer models plus one lone adaptive bit after them.
    init(models: Int) {
        storage = [Probability](repeating: RangeCoder.initialProbability, count: models * IntegerModel.contextCount + 1)
    }

    /// Runs `body` with the arena's first probability; models made from it are valid only inside.
    mutating func withBase<R, E: Error>(_ body: (UnsafeMutablePointer<Probability>) throws(E) -> R) throws(E) -> R {
        try storage.withUnsafeMutableBufferPointer { (buffer) throws(E) -> R in try body(buffer.baseAddress!) }
    }

    /// Model `index` of an arena whose storage starts at `base`.
    static func model(_ index: Int, base: UnsafeMutablePointer<Probability>) -> IntegerModel {
        IntegerModel(UnsafeMutableBufferPointer(start: base + index * IntegerModel.contextCount, count: IntegerModel.contextCount))
    }
}
