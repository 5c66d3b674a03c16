/// The encoder's choices for one batch: rows, dictionary, and each column's encoding.
extension BodyLayout {
    init(_ batch: Batch, limits: WireFormat.Limits = WireFormat.Limits()) throws(CoreError) {
        guard batch.seriesIndex.count == batch.count, batch.timestamps.count == batch.count else {
            throw CoreError(.malformed, "batch columns differ in length (\(batch.seriesIndex.count) series indexes, \(batch.timestamps.count) timestamps, \(batch.count) values)")
        }
        guard batch.count <= limits.maxReadings, batch.series.count <= limits.maxSeries else {
            throw CoreError(.limitExceeded, "batch of \(batch.count) readings in \(batch.series.count) series exceeds the wire limits (\(limits.maxReadings) readings, \(limits.maxSeries) series)")
        }
        guard batch.agentID.utf8.count <= limits.maxStringBytes else {
            throw CoreError(.limitExceeded, "agent id is longer than \(limits.maxStringBytes) bytes")
        }
        var used = [Bool](repeating: false, count: batch.series.count)
        for index in batch.seriesIndex {
            guard Int(index) < used.count else { throw CoreError(.malformed, "series index \(index) out of range") }
            used[Int(index)] = true
        }
        if let unused = used.firstIndex(of: false) {
            throw CoreError(.malformed, "series '\(batch.series[unused].name)' has no readings in the batch")
        }

        // Dictionary: sensors once, then per series a sensor reference, attribute and unit.
        var sensors: [String] = []
        var sensorLookup: [Substring: Int] = [:]
        var sensorRefs: [Int] = []
        for info in batch.series {
            for part in [info.name, info.unit] where part.utf8.count > limits.maxStringBytes {
                throw CoreError(.limitExceeded, "series name or unit '\(part.prefix(40))…' is longer than \(limits.maxStringBytes) bytes")
            }
            guard let slash = info.name.firstIndex(of: "/") else {
                sensorRefs.append(0)
                continue
            }
            let sensor = info.name[..<slash]
            if let known = sensorLookup[sensor] {
                sensorRefs.append(known)
            } else {
                sensors.append(String(sensor))
                sensorLookup[sensor] = sensors.count
                sensorRefs.append(sensors.count)
            }
        }

        // Rows: maximal runs of consecutive readings with one timestamp.
        var rowStarts: [Int] = []
        rowStarts.reserveCapacity(batch.count / 2 + 1)
        for i in 0..<batch.count where i == 0 || batch.timestamps[i] != batch.timestamps[i - 1] { rowStarts.append(i) }

        let reference = batch.createdAt &* batch.timeResolution.unitsPerMillisecond
        var time = TimeColumn(first: 0, tick: 1, order: 1)
        if let firstRow = rowStarts.first {
            let t0 = batch.timestamps[firstRow]
            time.first = t0 &- reference
            time.tick = Self.timeTick(rowStarts.map { batch.timestamps[$0] })
            var deltas: [Int64] = []
            deltas.reserveCapacity(rowStarts.count)
            var previous = t0
            for start in rowStarts.dropFirst() {
                let t = batch.timestamps[start]
                deltas.append((t &- previous) / Int64(bitPattern: time.tick))
                previous = t
            }
            time.order = Self.cheaperOrder(deltas)
        }

        // Values: each series a column, decimal if every value is a short decimal, else float.
        var valuesBySeries = [[Double]](repeating: [], count: batch.series.count)
        for (index, value) in zip(batch.seriesIndex, batch.values) { valuesBySeries[Int(index)].append(value) }
        let columns = valuesBySeries.map(Self.chooseColumn)

        self.init(agentID: batch.agentID, bootEpoch: batch.bootEpoch, sequence: batch.sequence, createdAt: batch.createdAt,
                  timeResolution: batch.timeResolution, readingCount: batch.count, rowCount: rowStarts.count,
                  sensors: sensors, series: batch.series, sensorRefs: sensorRefs, time: time, columns: columns)
    }

    /// The greatest common divisor of every row time's distance from the first row (1 when the
    /// distances could overflow 64 bits, which only nonsense timestamps do).
    static func timeTick(_ rowTimes: [Int64]) -> UInt64 {
        guard let t0 = rowTimes.first else { return 1 }
        var divisor: UInt64 = 0
        for t in rowTimes.dropFirst() {
            let (difference, overflow) = t.subtractingReportingOverflow(t0)
            if overflow { return 1 }
            divisor = gcd(divisor, difference.magnitude)
            if divisor == 1 { return 1 }
        }
        // Successive differences must also fit: (t_r - t_{r-1}) is checked by the same bound.
        for (a, b) in zip(rowTimes, rowTimes.dropFirst()) where b.subtractingReportingOverflow(a).overflow { return 1 }
        return max(divisor, 1)
    }

    static func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var (x, y) = (a, b)
        while y != 0 { (x, y) = (y, x % y) }
        return x
    }

    /// 1 (deltas) or 2 (deltas of deltas), whichever needs fewer significant bits in all.
    static func cheaperOrder(_ deltas: [Int64]) -> UInt8 {
        var first = 0, second = 0
        var previous: Int64 = 0
        for delta in deltas {
            first &+= cost(delta)
            second &+= cost(delta &- previous)
            previous = delta
        }
        return second < first ? 2 : 1
    }

    /// A rough size, in bits, of one coded integer: its significant bits plus one.
    @inline(__always)
    static func cost(_ value: Int64) -> Int { value == 0 ? 0 : 65 - value.magnitude.leadingZeroBitCount }

    /// The cheapest exact encoding of one series' values.
    static func chooseColumn(_ values: [Double]) -> ValueColumn {
        var scale: UInt8 = 0
        for value in values {
            while !isExact(value, scale: scale) {
                guard scale < ValueColumn.maxScale else { return .float(first: values[0].bitPattern) }
                scale += 1
            }
        }
        let power = powersOfTen[Int(scale)]
        var deltas: [Int64] = []
        deltas.reserveCapacity(values.count)
        var previous = Int64((values[0] * power).rounded())
        let first = previous
        var step: UInt64 = 0
        for value in values.dropFirst() {
            let scaled = Int64((value * power).rounded())
            let delta = scaled - previous  // |scaled| < 9e15: no overflow
            deltas.append(delta)
            step = gcd(step, delta.magnitude)
            previous = scaled
        }
        step = max(step, 1)
        if step > 1 { deltas = deltas.map { $0 / Int64(step) } }
        return .decimal(scale: scale, order: cheaperOrder(deltas), step: step, first: first)
    }

    /// Whether `value × 10^scale` is an integer that divides back to exactly `value`.
    @inline(__always)
    static func isExact(_ value: Double, scale: UInt8) -> Bool {
        guard value.isFinite, value != 0 || value.sign == .plus else { return false }  // -0.0, NaN, ±Inf: float
        let power = powersOfTen[Int(scale)]
        let scaled = (value * power).rounded()
        guard abs(scaled) < 9.0e15 else { return false }  // exact in both Int64 and Double
        return Double(Int64(scaled)) / power == value
    }
}
