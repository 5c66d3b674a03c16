/// One series' readings in observation order, coded as the twin store keeps its history
/// (docs/history-format.md): the wire format's column coding (time deltas over a tick, decimal
/// scaling with a step or float XOR, the adaptive range coder), applied to one series at a time
/// over thousands of points, plus the lineage of every point at the cost of a few bits: the
/// batches that carried the points (boot epoch, sequence, commit time) and runs of points per batch.
public struct SeriesChunk: Sendable, Equatable {
    /// A batch that delivered points of a chunk (the agent is the series').
    public struct Source: Sendable, Hashable, Comparable {
        public var epoch: UInt64
        public var sequence: UInt64
        /// When the aggregator committed the batch, ms since the Unix epoch (0 when unknown:
        /// history migrated from a store that did not keep it).
        public var committedAt: Int64

        public init(epoch: UInt64, sequence: UInt64, committedAt: Int64) {
            self.epoch = epoch
            self.sequence = sequence
            self.committedAt = committedAt
        }

        public static func < (a: Source, b: Source) -> Bool { (a.epoch, a.sequence) < (b.epoch, b.sequence) }
    }

    /// Observation times (ms), non-decreasing.
    public var timestamps: [Int64]
    public var values: [Double]
    /// The batches behind the points, and for each point the index of its batch in `sources`.
    public var sources: [Source]
    public var sourceIndex: [UInt32]

    public init(timestamps: [Int64], values: [Double], sources: [Source], sourceIndex: [UInt32]) {
        self.timestamps = timestamps
        self.values = values
        self.sources = sources
        self.sourceIndex = sourceIndex
    }

    /// Points from one batch.
    public init(timestamps: [Int64], values: [Double], source: Source) {
        self.init(timestamps: timestamps, values: values, sources: [source],
                  sourceIndex: [UInt32](repeating: 0, count: timestamps.count))
    }

    public var count: Int { timestamps.count }

    static let version: UInt8 = 1
    /// A chunk never holds more points than this (a decoder refuses more).
    public static let maxPoints = 1 << 20

    /// Merges chunks into one in observation order; points with the same time keep the order of
    /// `chunks` (arrival order, when the caller passes them so), then their order within a chunk.
    public static func merged(_ chunks: [SeriesChunk]) -> SeriesChunk {
        if chunks.count == 1 { return chunks[0] }
        if chunks.isEmpty { return SeriesChunk(timestamps: [], values: [], sources: [], sourceIndex: []) }
        // Chunks that follow each other in time (the common case: sealed history) concatenate.
        if zip(chunks, chunks.dropFirst()).allSatisfy({ $0.timestamps.last! < $1.timestamps.first! }) {
            var out = SeriesChunk(timestamps: [], values: [], sources: [], sourceIndex: [])
            let total = chunks.reduce(0) { $0 + $1.count }
            out.timestamps.reserveCapacity(total)
            out.values.reserveCapacity(total)
            out.sourceIndex.reserveCapacity(total)
            var sourceIDs: [Source: UInt32] = [:]
            for chunk in chunks {
                let remap = chunk.sources.map { source -> UInt32 in
                    if let id = sourceIDs[source] { return id }
                    let id = UInt32(out.sources.count)
                    out.sources.append(source)
                    sourceIDs[source] = id
                    return id
                }
                out.timestamps.append(contentsOf: chunk.timestamps)
                out.values.append(contentsOf: chunk.values)
                if remap.enumerated().allSatisfy({ $0.offset == Int($0.element) }) {
                    out.sourceIndex.append(contentsOf: chunk.sourceIndex)
                } else {
                    out.sourceIndex.append(contentsOf: chunk.sourceIndex.lazy.map { remap[Int($0)] })
                }
            }
            return out
        }
        var sources: [Source] = []
        var sourceIDs: [Source: UInt32] = [:]
        var points: [(t: Int64, v: Double, s: UInt32)] = []
        points.reserveCapacity(chunks.reduce(0) { $0 + $1.count })
        for chunk in chunks {
            let remap = chunk.sources.map { source -> UInt32 in
                if let id = sourceIDs[source] { return id }
                let id = UInt32(sources.count)
                sources.append(source)
                sourceIDs[source] = id
                return id
            }
            for i in 0..<chunk.count { points.append((chunk.timestamps[i], chunk.values[i], remap[Int(chunk.sourceIndex[i])])) }
        }
        // Stable: a merge sort keyed on time alone keeps arrival order among equal times.
        let order = stableOrder(points.map(\.t))
        return SeriesChunk(timestamps: order.map { points[$0].t }, values: order.map { points[$0].v },
                           sources: sources, sourceIndex: order.map { points[$0].s })
    }

    /// Indexes of `keys` in stable ascending order (already sorted input costs one pass).
    public static func stableOrder(_ keys: [Int64]) -> [Int] {
        var sorted = true
        for i in keys.indices.dropFirst() where keys[i] < keys[i - 1] { sorted = false; break }
        if sorted { return Array(keys.indices) }
        return keys.indices.sorted { keys[$0] != keys[$1] ? keys[$0] < keys[$1] : $0 < $1 }
    }

    /// Splits into chunks of at most `size` points, in order.
    public func split(size: Int) -> [SeriesChunk] {
        guard count > size else { return [self] }
        return stride(from: 0, to: count, by: size).map { start in
            let end = Swift.min(start + size, count)
            let used = Array(Set(sourceIndex[start..<end])).sorted()
            var remap = [UInt32: UInt32]()
            for (new, old) in used.enumerated() { remap[old] = UInt32(new) }
            return SeriesChunk(timestamps: Array(timestamps[start..<end]), values: Array(values[start..<end]),
                               sources: used.map { sources[Int($0)] }, sourceIndex: sourceIndex[start..<end].map { remap[$0]! })
        }
    }

    /// The source of point `i` (its batch).
    public func source(of i: Int) -> Source { sources[Int(sourceIndex[i])] }
}

extension SeriesChunk {
    /// The coded form. Timestamps must be non-decreasing (`merged` guarantees it).
    public func encoded() throws(CoreError) -> [UInt8] {
        guard count > 0, count <= Self.maxPoints, values.count == count, sourceIndex.count == count else {
            throw CoreError(.malformed, "a history chunk needs 1...\(Self.maxPoints) points with one value and one source each")
        }
        for i in 1..<count where timestamps[i] < timestamps[i - 1] {
            throw CoreError(.malformed, "history chunk times go backwards at point \(i)")
        }
        var out = ByteWriter(capacity: 32 + count / 2)
        out.write(Self.version)
        out.writeVarint(UInt64(count))
        out.writeSignedVarint(timestamps[0])
        let tick = BodyLayout.timeTick(timestamps)
        var deltas: [Int64] = []
        deltas.reserveCapacity(count)
        for i in 1..<count { deltas.append((timestamps[i] &- timestamps[i - 1]) / Int64(bitPattern: tick)) }
        let timeOrder = BodyLayout.cheaperOrder(deltas)
        out.writeVarint(tick)
        out.write(timeOrder)
        let column = BodyLayout.chooseColumn(values)
        switch column {
        case .decimal(let scale, let order, let step, let first):
            out.write(0)
            out.write(scale)
            out.write(order)
            out.writeVarint(step)
            out.writeSignedVarint(first)
        case .float(let first):
            out.write(1)
            out.writeUInt64LE(first)
        }
        // Lineage: the sources, then runs of points per source.
        out.writeVarint(UInt64(sources.count))
        var previousCommit: Int64 = 0
        for source in sources {
            out.writeVarint(source.epoch)
            out.writeVarint(source.sequence)
            out.writeSignedVarint(source.committedAt &- previousCommit)
            previousCommit = source.committedAt
        }
        var runs: [(UInt32, Int)] = []
        for s in sourceIndex {
            if let last = runs.last, last.0 == s { runs[runs.count - 1].1 += 1 } else { runs.append((s, 1)) }
        }
        out.writeVarint(UInt64(runs.count))
        for (s, length) in runs {
            out.writeVarint(UInt64(s))
            out.writeVarint(UInt64(length))
        }

        var arena = ModelArena(models: 3)
        let coded = arena.withBase { base -> [UInt8] in
            let timeModel = ModelArena.model(0, base: base)
            let valueModel = ModelArena.model(1, base: base), trailingModel = ModelArena.model(2, base: base)
            var encoder = RangeEncoder(capacity: count / 2 + 16)
            var previousDelta: Int64 = 0
            for delta in deltas {
                timeModel.encode(signed: timeOrder == 1 ? delta : delta &- previousDelta, into: &encoder)
                previousDelta = delta
            }
            BodyLayout.encodeValues(values, column: column, model: valueModel, trailing: trailingModel, into: &encoder)
            return encoder.finish()
        }
        out.write(coded)
        return out.bytes
    }

    /// Decodes a chunk written by ``encoded()``; a damaged one is an error, never a crash.
    public init(decoding bytes: [UInt8]) throws(CoreError) {
        var reader = ByteReader(bytes)
        let version = try reader.readByte()
        guard version == Self.version else {
            throw CoreError(.unsupportedVersion, "history chunk version \(version) (this build reads \(Self.version))")
        }
        let count = try reader.readCount(limit: Self.maxPoints, what: "history chunk points")
        guard count > 0 else { throw CoreError(.malformed, "empty history chunk") }
        let t0 = try reader.readSignedVarint()
        let tick = try reader.readVarint()
        let timeOrder = try reader.readByte()
        guard timeOrder == 1 || timeOrder == 2, tick > 0, tick <= UInt64(Int64.max) else {
            throw CoreError(.malformed, "history chunk time column (tick \(tick), order \(timeOrder))")
        }
        let column: BodyLayout.ValueColumn
        switch try reader.readByte() {
        case 0:
            let scale = try reader.readByte(), order = try reader.readByte()
            let step = try reader.readVarint(), first = try reader.readSignedVarint()
            guard scale <= BodyLayout.ValueColumn.maxScale, order == 1 || order == 2, step > 0 else {
                throw CoreError(.malformed, "history chunk decimal column (scale \(scale), order \(order), step \(step))")
            }
            column = .decimal(scale: scale, order: order, step: step, first: first)
        case 1:
            column = .float(first: try reader.readUInt64LE())
        case let tag:
            throw CoreError(.malformed, "history chunk value column tag \(tag)")
        }
        let sourceCount = try reader.readCount(limit: count, what: "history chunk sources")
        var sources: [Source] = []
        sources.reserveCapacity(sourceCount)
        var commit: Int64 = 0
        for _ in 0..<sourceCount {
            let epoch = try reader.readVarint(), sequence = try reader.readVarint()
            commit = commit &+ (try reader.readSignedVarint())
            sources.append(Source(epoch: epoch, sequence: sequence, committedAt: commit))
        }
        let runCount = try reader.readCount(limit: count, what: "history chunk source runs")
        var sourceIndex: [UInt32] = []
        sourceIndex.reserveCapacity(count)
        for _ in 0..<runCount {
            let s = try reader.readVarint(), length = try reader.readVarint()
            guard s < UInt64(sourceCount), length > 0, length <= UInt64(count - sourceIndex.count) else {
                throw CoreError(.malformed, "history chunk source run (source \(s) of \(sourceCount), \(length) points)")
            }
            sourceIndex.append(contentsOf: repeatElement(UInt32(s), count: Int(length)))
        }
        guard sourceIndex.count == count else {
            throw CoreError(.malformed, "history chunk source runs cover \(sourceIndex.count) of \(count) points")
        }
        let coded = Array(bytes[reader.offset...])
        var timestamps = [Int64](), values = [Double]()
        timestamps.reserveCapacity(count)
        values.reserveCapacity(count)
        var arena = ModelArena(models: 3)
        try arena.withBase { (base) throws(CoreError) in
            let timeModel = ModelArena.model(0, base: base)
            let valueModel = ModelArena.model(1, base: base), trailingModel = ModelArena.model(2, base: base)
            try coded.withUnsafeBufferPointer { (buffer) throws(CoreError) in
                var decoder = try RangeDecoder(buffer)
                var t = t0, delta: Int64 = 0
                timestamps.append(t)
                let step = Int64(bitPattern: tick)
                for _ in 1..<count {
                    let c = timeModel.decodeSigned(from: &decoder)
                    delta = timeOrder == 1 ? c : delta &+ c
                    t = t &+ delta &* step
                    timestamps.append(t)
                }
                if decoder.isExhausted { throw CoreError(.truncated, "history chunk ends inside its times") }
                values = try [Double](unsafeUninitializedCapacity: count) { (buffer, initialized) throws(CoreError) in
                    try BodyLayout.decodeValues(column: column, into: buffer, 0..<count, model: valueModel, trailing: trailingModel,
                                                decoder: &decoder)
                    initialized = count
                }
                try decoder.finish()
            }
        }
        for i in 1..<count where timestamps[i] < timestamps[i - 1] {
            throw CoreError(.malformed, "history chunk times go backwards at point \(i)")
        }
        self.init(timestamps: timestamps, values: values, sources: sources, sourceIndex: sourceIndex)
    }
}
