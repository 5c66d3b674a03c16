/// The coded section of a body (docs/wire-format.md, "Coded section"): one range-coded stream
/// holding, row by row, each row's time and pattern, then every series' values, column by column.
extension BodyLayout {
    /// The models of one coded section (section 4.2 of the spec): four for the rows, then two per
    /// series (a decimal column uses the first; a float column both, for leading and trailing zeros).
    struct Models {
        let base: UnsafeMutablePointer<Probability>
        let time, patternReference, patternLength, patternMember: IntegerModel
        let samePattern: UnsafeMutablePointer<Probability>

        static func arena(seriesCount: Int) -> ModelArena { ModelArena(models: 4 + 2 * seriesCount) }

        init(base: UnsafeMutablePointer<Probability>, seriesCount: Int) {
            self.base = base
            time = ModelArena.model(0, base: base)
            patternReference = ModelArena.model(1, base: base)
            patternLength = ModelArena.model(2, base: base)
            patternMember = ModelArena.model(3, base: base)
            samePattern = base + (4 + 2 * seriesCount) * IntegerModel.contextCount
        }

        func series(_ s: Int) -> IntegerModel { ModelArena.model(4 + 2 * s, base: base) }
        func seriesTrailing(_ s: Int) -> IntegerModel { ModelArena.model(5 + 2 * s, base: base) }
    }

    func encodeColumns(_ batch: Batch) -> [UInt8] {
        var arena = Models.arena(seriesCount: series.count)
        return arena.withBase { base in encodeColumns(batch, models: Models(base: base, seriesCount: series.count)) }
    }

    private func encodeColumns(_ batch: Batch, models rows: Models) -> [UInt8] {
        var encoder = RangeEncoder(capacity: batch.count + 64)

        // Rows: time (after the first), then the pattern of series indexes.
        var patternIDs: [ArraySlice<UInt32>: Int] = [:]
        var previousPattern: ArraySlice<UInt32> = []
        var previousTime: Int64 = 0, previousDelta: Int64 = 0
        let tick = Int64(bitPattern: time.tick)
        var start = 0
        for row in 0..<rowCount {
            var end = start + 1
            while end < batch.count && batch.timestamps[end] == batch.timestamps[start] { end += 1 }
            let t = batch.timestamps[start]
            if row > 0 {
                let delta = (t &- previousTime) / tick
                rows.time.encode(signed: time.order == 1 ? delta : delta &- previousDelta, into: &encoder)
                previousDelta = delta
            }
            previousTime = t
            let pattern = batch.seriesIndex[start..<end]
            let same = row > 0 && pattern == previousPattern
            if row > 0 { encoder.encode(same, &rows.samePattern.pointee) }
            if !same {
                if let id = patternIDs[pattern] {
                    rows.patternReference.encode(unsigned: UInt64(id + 1), into: &encoder)
                } else {
                    rows.patternReference.encode(unsigned: 0, into: &encoder)
                    rows.patternLength.encode(unsigned: UInt64(pattern.count - 1), into: &encoder)
                    var previousMember: Int64 = -1
                    for member in pattern {
                        rows.patternMember.encode(signed: Int64(member) - previousMember - 1, into: &encoder)
                        previousMember = Int64(member)
                    }
                    patternIDs[pattern] = patternIDs.count
                }
            }
            previousPattern = pattern
            start = end
        }

        // Values, series by series, in dictionary order.
        var valuesBySeries = [[Double]](repeating: [], count: series.count)
        for (index, value) in zip(batch.seriesIndex, batch.values) { valuesBySeries[Int(index)].append(value) }
        for (s, (column, values)) in zip(columns, valuesBySeries).enumerated() {
            Self.encodeValues(values, column: column, model: rows.series(s), trailing: rows.seriesTrailing(s), into: &encoder)
        }
        return encoder.finish()
    }

    /// One column of values after its first (which the column's header holds): decimal deltas
    /// (or deltas of deltas) over the step with `model`, or float XORs with `model` for the leading
    /// and `trailing` for the trailing zeros. Shared by the wire format and the history chunks.
    static func encodeValues(_ values: [Double], column: ValueColumn, model: IntegerModel, trailing: IntegerModel,
                             into encoder: inout RangeEncoder) {
        switch column {
        case .decimal(let scale, let order, let step, _):
            let power = Self.powersOfTen[Int(scale)]
            let divisor = Int64(step)
            var previous = Int64((values[0] * power).rounded()), previousDelta: Int64 = 0
            for value in values.dropFirst() {
                let scaled = Int64((value * power).rounded())
                let delta = (scaled - previous) / divisor
                model.encode(signed: order == 1 ? delta : delta - previousDelta, into: &encoder)
                previous = scaled
                previousDelta = delta
            }
        case .float:
            var previous = values[0].bitPattern
            for value in values.dropFirst() {
                Self.encodeXOR(value.bitPattern ^ previous, leading: model, trailing: trailing, into: &encoder)
                previous = value.bitPattern
            }
        }
    }

    /// Decodes what ``encodeValues(_:column:model:trailing:into:)`` wrote into `out[range]`.
    @inline(__always)
    static func decodeValues(column: ValueColumn, into out: UnsafeMutableBufferPointer<Double>, _ range: Range<Int>,
                             model: IntegerModel, trailing: IntegerModel, decoder: inout RangeDecoder) throws(CoreError) {
        var position = range.lowerBound
        switch column {
        case .decimal(let scale, let order, let step, let first):
            let power = Self.powersOfTen[Int(scale)]
            let multiplier = Int64(bitPattern: step)
            var scaled = first, delta: Int64 = 0
            out[position] = Double(scaled) / power
            position += 1
            while position < range.upperBound {
                let coded = model.decodeSigned(from: &decoder)
                delta = order == 1 ? coded : delta &+ coded
                scaled = scaled &+ delta &* multiplier
                out[position] = Double(scaled) / power
                position += 1
            }
        case .float(let first):
            var bits = first
            out[position] = Double(bitPattern: bits)
            position += 1
            while position < range.upperBound {
                bits ^= try Self.decodeXOR(leading: model, trailing: trailing, decoder: &decoder)
                out[position] = Double(bitPattern: bits)
                position += 1
            }
        }
    }

    /// A zero XOR is a leading count of 0; otherwise leading zeros + 1, trailing zeros, and the
    /// bits strictly between the outermost 1 bits.
    @inline(__always)
    static func encodeXOR(_ xor: UInt64, leading leadingModel: IntegerModel, trailing trailingModel: IntegerModel,
                          into encoder: inout RangeEncoder) {
        guard xor != 0 else {
            leadingModel.encode(unsigned: 0, into: &encoder)
            return
        }
        let leading = xor.leadingZeroBitCount, trailing = xor.trailingZeroBitCount
        leadingModel.encode(unsigned: UInt64(leading + 1), into: &encoder)
        trailingModel.encode(unsigned: UInt64(trailing), into: &encoder)
        let inner = 64 - leading - trailing - 2
        if inner > 0 { encoder.encodeDirect((xor >> UInt64(trailing + 1)) & ((1 << UInt64(inner)) - 1), count: inner) }
    }

    mutating func decodeColumns(_ coded: [UInt8], limits: WireFormat.Limits) throws(CoreError) -> Batch {
        var batch = Batch(agentID: agentID, bootEpoch: bootEpoch, sequence: sequence, createdAt: createdAt,
                          timeResolution: timeResolution, series: series)
        guard readingCount > 0 else {
            guard series.isEmpty, coded.isEmpty else { throw CoreError(.malformed, "an empty batch has series or coded bytes") }
            return batch
        }
        var arena = Models.arena(seriesCount: series.count)
        try arena.withBase { (base) throws(CoreError) in
            let models = Models(base: base, seriesCount: series.count)
            try coded.withUnsafeBufferPointer { (buffer) throws(CoreError) in
                var decoder = try RangeDecoder(buffer)
                var counts = try decodeRows(into: &batch, models: models, decoder: &decoder)
                try decodeValues(into: &batch, counts: &counts, models: models, decoder: &decoder)
                try decoder.finish()
            }
        }
        return batch
    }

    private func decodeRows(into batch: inout Batch, models rows: Models, decoder: inout RangeDecoder) throws(CoreError) -> [Int] {
        batch.seriesIndex.reserveCapacity(readingCount)
        batch.timestamps.reserveCapacity(readingCount)
        var counts = [Int](repeating: 0, count: series.count)
        // Pattern table: members of all defined patterns, back to back (bounded by readingCount).
        var members: [UInt32] = []
        var patternRanges: [Range<Int>] = []
        var current = 0..<0
        let tick = Int64(bitPattern: time.tick)
        var t = createdAt &* timeResolution.unitsPerMillisecond &+ time.first
        var delta: Int64 = 0
        for row in 0..<rowCount {
            if decoder.isExhausted { throw CoreError(.truncated, "coded section ends inside row \(row) of \(rowCount)") }
            if row > 0 {
                let coded = rows.time.decodeSigned(from: &decoder)
                delta = time.order == 1 ? coded : delta &+ coded
                t = t &+ delta &* tick
            }
            if row == 0 || !decoder.decode(&rows.samePattern.pointee) {
                let reference = rows.patternReference.decodeUnsigned(from: &decoder)
                if reference == 0 {
                    let length = rows.patternLength.decodeUnsigned(from: &decoder)
                    guard length < UInt64(readingCount - batch.seriesIndex.count) else {
                        throw CoreError(.malformed, "row \(row) holds more readings than the batch declares (\(readingCount))")
                    }
                    let start = members.count
                    var previous: Int64 = -1
                    for _ in 0...Int(length) {
                        let member = previous &+ 1 &+ rows.patternMember.decodeSigned(from: &decoder)
                        guard member >= 0, member < Int64(series.count) else {
                            throw CoreError(.malformed, "row \(row) names series \(member) of \(series.count)")
                        }
                        members.append(UInt32(member))
                        previous = member
                    }
                    current = start..<members.count
                    patternRanges.append(current)
                } else {
                    guard reference <= UInt64(patternRanges.count) else {
                        throw CoreError(.malformed, "row \(row) refers to pattern \(reference) of \(patternRanges.count)")
                    }
                    current = patternRanges[Int(reference - 1)]
                }
            }
            guard current.count <= readingCount - batch.seriesIndex.count else {
                throw CoreError(.malformed, "rows hold more readings than the batch declares (\(readingCount))")
            }
            for i in current {
                let index = members[i]
                batch.seriesIndex.append(index)
                batch.timestamps.append(t)
                counts[Int(index)] += 1
            }
        }
        guard batch.seriesIndex.count == readingCount else {
            throw CoreError(.malformed, "rows hold \(batch.seriesIndex.count) readings, the header declares \(readingCount)")
        }
        if let unused = counts.firstIndex(of: 0) {
            throw CoreError(.malformed, "series '\(series[unused].name)' has no readings")
        }
        return counts
    }

    /// Decodes every column into one array grouped by series, then puts values back in reading order.
    private func decodeValues(into batch: inout Batch, counts: inout [Int], models: Models,
                              decoder: inout RangeDecoder) throws(CoreError) {
        var offsets = [Int](repeating: 0, count: series.count)
        var total = 0
        for s in 0..<series.count {
            offsets[s] = total
            total += counts[s]
        }
        var grouped = [Double](repeating: 0, count: readingCount)
        try grouped.withUnsafeMutableBufferPointer { (out) throws(CoreError) in
            for (s, column) in columns.enumerated() {
                if decoder.isExhausted { throw CoreError(.truncated, "coded section ends inside the values of '\(series[s].name)'") }
                try Self.decodeValues(column: column, into: out, offsets[s]..<(offsets[s] + counts[s]),
                                      model: models.series(s), trailing: models.seriesTrailing(s), decoder: &decoder)
            }
        }
        batch.values = [Double](unsafeUninitializedCapacity: readingCount) { values, initialized in
            for (i, index) in batch.seriesIndex.enumerated() {
                let s = Int(index)
                values[i] = grouped[offsets[s]]
                offsets[s] += 1
            }
            initialized = readingCount
        }
    }

    @inline(__always)
    static func decodeXOR(leading leadingModel: IntegerModel, trailing trailingModel: IntegerModel,
                          decoder: inout RangeDecoder) throws(CoreError) -> UInt64 {
        let leadingPlusOne = leadingModel.decodeUnsigned(from: &decoder)
        guard leadingPlusOne != 0 else { return 0 }
        let trailing = trailingModel.decodeUnsigned(from: &decoder)
        guard leadingPlusOne <= 64, trailing <= 63, leadingPlusOne - 1 + trailing <= 63 else {
            throw CoreError(.malformed, "float XOR with \(leadingPlusOne - 1) leading and \(trailing) trailing zero bits")
        }
        let leading = Int(leadingPlusOne - 1), trailingZeros = Int(trailing)
        let inner = 64 - leading - trailingZeros - 2
        var xor = UInt64(1) << UInt64(trailingZeros)
        if inner >= 0 {
            xor |= UInt64(1) << UInt64(63 - leading)
            if inner > 0 { xor |= decoder.decodeDirect(count: inner) << UInt64(trailingZeros + 1) }
        }
        return xor
    }
}
