/// One series in a batch's dictionary: what is measured and in which unit.
public struct SeriesInfo: Sendable, Hashable {
    /// `<sensor>/<attribute>`, e.g. `weather/temperature`. Stable across batches.
    public var name: String
    /// UN/CEFACT common code (`CEL`, `GQ`, ...), see ``UnitCode``.
    public var unit: String

    public init(name: String, unit: String) {
        self.name = name
        self.unit = unit
    }

    /// The sensor part of ``name`` (before the first `/`).
    public var sensor: Substring { name.split(separator: "/", maxSplits: 1).first ?? Substring(name) }
    /// The attribute part of ``name`` (after the first `/`).
    public var attribute: Substring {
        let parts = name.split(separator: "/", maxSplits: 1)
        return parts.count == 2 ? parts[1] : Substring(name)
    }
}

/// A single measurement: which series, when (Unix milliseconds, UTC), what value.
public struct Reading: Sendable, Equatable {
    public var series: SeriesInfo
    public var timestamp: Int64
    public var value: Double

    public init(series: SeriesInfo, timestamp: Int64, value: Double) {
        self.series = series
        self.timestamp = timestamp
        self.value = value
    }
}

/// A batch of readings from one agent, identified by (agent, boot epoch, sequence).
///
/// Columnar: reading `i` is `(series[seriesIndex[i]], timestamps[i], values[i])`, in the order the
/// agent accepted them. Order and duplicates are preserved exactly.
public struct Batch: Sendable, Equatable {
    public var agentID: String
    /// Increments on every agent start; part of the batch identity.
    public var bootEpoch: UInt64
    /// Monotonic per agent (persisted across restarts).
    public var sequence: UInt64
    /// When the agent built the batch, Unix milliseconds.
    public var createdAt: Int64
    public var series: [SeriesInfo]
    public var seriesIndex: [UInt32]
    public var timestamps: [Int64]
    public var values: [Double]

    public init(agentID: String, bootEpoch: UInt64, sequence: UInt64, createdAt: Int64,
                series: [SeriesInfo] = [], seriesIndex: [UInt32] = [], timestamps: [Int64] = [], values: [Double] = []) {
        self.agentID = agentID
        self.bootEpoch = bootEpoch
        self.sequence = sequence
        self.createdAt = createdAt
        self.series = series
        self.seriesIndex = seriesIndex
        self.timestamps = timestamps
        self.values = values
    }

    public var count: Int { values.count }

    /// Appends a reading, adding its series to the dictionary on first use.
    public mutating func append(_ reading: Reading, lookup: inout [SeriesInfo: UInt32]) {
        let index: UInt32
        if let known = lookup[reading.series] {
            index = known
        } else {
            index = UInt32(series.count)
            series.append(reading.series)
            lookup[reading.series] = index
        }
        seriesIndex.append(index)
        timestamps.append(reading.timestamp)
        values.append(reading.value)
    }

    /// The readings as values (for tests and small consumers; the hot paths use the columns).
    public var readings: [Reading] {
        (0..<count).map { Reading(series: series[Int(seriesIndex[$0])], timestamp: timestamps[$0], value: values[$0]) }
    }
}
