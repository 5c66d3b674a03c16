/// A body's plain-byte part: header, dictionary and column headers (docs/wire-format.md, "Body").
/// The coded section that follows it is in WireFormat+Columns.swift.
struct BodyLayout {
    /// 1, or 2: no agent id (the topic names it) and series as session entries (§3.5 of the spec).
    var version: UInt8 = 1
    var agentID: String
    var bootEpoch: UInt64
    var sequence: UInt64
    var createdAt: Int64
    var timeResolution: TimeResolution
    var readingCount: Int
    var rowCount: Int
    var sensors: [String]
    var series: [SeriesInfo]
    /// Per series: 0 = no sensor, else 1-based index into ``sensors``.
    var sensorRefs: [Int]
    var time: TimeColumn
    var columns: [ValueColumn]
    /// Version 2: per series its session index and whether its definition travels along.
    var entries: [SeriesEntry] = []
    /// Version 2, decoding: the definitions this batch carried (index, series).
    var definitions: [(index: UInt64, series: SeriesInfo)] = []

    /// Row timestamps: the first one relative to `createdAt`, then multiples of `tick`.
    struct TimeColumn {
        var first: Int64
        var tick: UInt64
        var order: UInt8
    }

    /// How one series' values are coded.
    enum ValueColumn: Equatable {
        /// `value × 10^scale` as integers, first one plain, then deltas (order 1) or deltas of deltas
        /// (order 2), divided by `step` (the greatest common divisor of the deltas).
        case decimal(scale: UInt8, order: UInt8, step: UInt64, first: Int64)
        /// IEEE-754 bit patterns, each XORed with the previous one (exact for every Double).
        case float(first: UInt64)

        static let floatTag: UInt8 = 0x20
        static let maxScale: UInt8 = 9
    }

    static let powersOfTen: [Double] = (0...Int(ValueColumn.maxScale)).map { exponent in
        var p = 1.0
        for _ in 0..<exponent { p *= 10 }
        return p
    }

    // MARK: Reading

    static func read(from reader: inout ByteReader, limits: WireFormat.Limits, version: UInt8 = 1, agentID topicAgent: String = "",
                     lookup: (UInt64, UInt64) -> SeriesInfo? = { _, _ in nil }) throws(CoreError) -> BodyLayout {
        let agentID = version == 1 ? try reader.readString(maxLength: limits.maxStringBytes) : topicAgent
        let bootEpoch = try reader.readVarint()
        let sequence = try reader.readVarint()
        let createdAt = try reader.readSignedVarint()
        let resolutionByte = try reader.readByte()
        guard let resolution = TimeResolution(rawValue: resolutionByte) else {
            throw CoreError(.malformed, "unknown time resolution \(resolutionByte) (expected 3, 6 or 9)")
        }
        let readingCount = try reader.readCount(limit: limits.maxReadings, what: "reading count")
        let rowCount = try reader.readCount(limit: readingCount, what: "row count")
        guard (readingCount == 0) == (rowCount == 0) else {
            throw CoreError(.malformed, "\(readingCount) readings in \(rowCount) rows")
        }
        var sensors: [String] = []
        var series: [SeriesInfo] = []
        var sensorRefs: [Int] = []
        var entries: [SeriesEntry] = []
        var definitions: [(index: UInt64, series: SeriesInfo)] = []
        if version == 2 {
            let seriesCount = try reader.readCount(limit: min(limits.maxSeries, readingCount), what: "series count")
            var seen = Set<UInt64>()
            for _ in 0..<seriesCount {
                let entry = try reader.readVarint()
                let index = entry >> 1
                guard index >= 1, index <= SeriesEntry.maxIndex else {
                    throw CoreError(.malformed, "session series index \(index) out of range (1…\(SeriesEntry.maxIndex))")
                }
                guard seen.insert(index).inserted else { throw CoreError(.malformed, "session series \(index) appears twice in the batch") }
                let info: SeriesInfo
                if entry & 1 == 1 {
                    let name = try reader.readString(maxLength: limits.maxStringBytes)
                    let unit = try readName(&reader, table: WireNames.units, limits: limits, what: "unit")
                    info = SeriesInfo(name: name, unit: unit)
                    definitions.append((index, info))
                } else if let known = lookup(bootEpoch, index) {
                    info = known
                } else {
                    var error = CoreError(.unknownSeries, "the batch refers to session series \(index), which this decoder does not hold for agent '\(agentID)' epoch \(bootEpoch)")
                    error.bootEpoch = bootEpoch
                    throw error
                }
                entries.append(SeriesEntry(index: index, defines: entry & 1 == 1))
                series.append(info)
            }
        } else {
        let sensorCount = try reader.readCount(limit: limits.maxSeries, what: "sensor count")
        for _ in 0..<sensorCount { sensors.append(try reader.readString(maxLength: limits.maxStringBytes)) }
        let seriesCount = try reader.readCount(limit: min(limits.maxSeries, readingCount), what: "series count")
        for _ in 0..<seriesCount {
            let sensorRef = try reader.readCount(limit: sensorCount, what: "sensor reference")
            let attribute = try readName(&reader, table: WireNames.attributes, limits: limits, what: "attribute")
            let unit = try readName(&reader, table: WireNames.units, limits: limits, what: "unit")
            let name = sensorRef == 0 ? attribute : sensors[sensorRef - 1] + "/" + attribute
            series.append(SeriesInfo(name: name, unit: unit))
            sensorRefs.append(sensorRef)
        }
        }
        let first = try reader.readSignedVarint()
        let tick = try reader.readVarint()
        let order = try reader.readByte()
        guard tick >= 1, order == 1 || order == 2 else {
            throw CoreError(.malformed, "time column has tick \(tick) and order \(order) (tick ≥ 1, order 1 or 2)")
        }
        var columns: [ValueColumn] = []
        for info in series {
            let tag = try reader.readByte()
            if tag == ValueColumn.floatTag {
                columns.append(.float(first: try reader.readUInt64LE()))
            } else {
                let order = (tag >> 4) + 1, scale = tag & 0x0F
                guard order <= 2, scale <= ValueColumn.maxScale else {
                    throw CoreError(.malformed, "series '\(info.name)' has unknown value encoding 0x\(String(tag, radix: 16))")
                }
                let step = try reader.readVarint()
                guard step >= 1 else { throw CoreError(.malformed, "series '\(info.name)' has step 0") }
                columns.append(.decimal(scale: scale, order: order, step: step, first: try reader.readSignedVarint()))
            }
        }
        return BodyLayout(version: version, agentID: agentID, bootEpoch: bootEpoch, sequence: sequence, createdAt: createdAt,
                          timeResolution: resolution, readingCount: readingCount, rowCount: rowCount, sensors: sensors,
                          series: series, sensorRefs: sensorRefs, time: TimeColumn(first: first, tick: tick, order: order),
                          columns: columns, entries: entries, definitions: definitions)
    }

    /// A table reference (1-based) or 0 followed by the string.
    private static func readName(_ reader: inout ByteReader, table: [String], limits: WireFormat.Limits,
                                 what: String) throws(CoreError) -> String {
        let ref = try reader.readCount(limit: table.count, what: "\(what) reference")
        return ref == 0 ? try reader.readString(maxLength: limits.maxStringBytes) : table[ref - 1]
    }

    // MARK: Writing

    func write(to writer: inout ByteWriter) {
        if version == 1 { writer.writeString(agentID) }
        writer.writeVarint(bootEpoch)
        writer.writeVarint(sequence)
        writer.writeSignedVarint(createdAt)
        writer.write(timeResolution.rawValue)
        writer.writeVarint(UInt64(readingCount))
        writer.writeVarint(UInt64(rowCount))
        if version == 2 {
            writer.writeVarint(UInt64(series.count))
            for (info, entry) in zip(series, entries) {
                writer.writeVarint(entry.index << 1 | (entry.defines ? 1 : 0))
                guard entry.defines else { continue }
                writer.writeString(info.name)
                Self.writeUnit(info.unit, to: &writer)
            }
        } else {
            writer.writeVarint(UInt64(sensors.count))
            for sensor in sensors { writer.writeString(sensor) }
            writer.writeVarint(UInt64(series.count))
            for (info, sensorRef) in zip(series, sensorRefs) {
                writer.writeVarint(UInt64(sensorRef))
                Self.writeNames(info, to: &writer)
            }
        }
        writer.writeSignedVarint(time.first)
        writer.writeVarint(time.tick)
        writer.write(time.order)
        for column in columns {
            switch column {
            case .float(let first):
                writer.write(ValueColumn.floatTag)
                writer.writeUInt64LE(first)
            case .decimal(let scale, let order, let step, let first):
                writer.write((order - 1) << 4 | scale)
                writer.writeVarint(step)
                writer.writeSignedVarint(first)
            }
        }
    }
}

extension BodyLayout {
    /// A series' attribute and unit: a table reference, or 0 and the string.
    static func writeNames(_ info: SeriesInfo, to writer: inout ByteWriter) {
        let attribute = info.attribute
        if let ref = WireNames.attributeIndex[String(attribute)] {
            writer.writeVarint(UInt64(ref))
        } else {
            writer.writeVarint(0)
            writer.writeString(String(attribute))
        }
        writeUnit(info.unit, to: &writer)
    }

    static func writeUnit(_ unit: String, to writer: inout ByteWriter) {
        if let ref = WireNames.unitIndex[unit] {
            writer.writeVarint(UInt64(ref))
        } else {
            writer.writeVarint(0)
            writer.writeString(unit)
        }
    }
}
