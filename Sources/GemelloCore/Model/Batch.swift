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

    /// The sensor part of ``name`` (before the first `/`; empty when there is none).
    public var sensor: Substring {
        guard let slash = name.firstIndex(of: "/") else { return "" }
        return name[..<slash]
    }
    /// The attribute part of ``name`` (after the first `/`, or the whole name when there is none).
    public var attribute: Substring {
        guard let slash = name.firstIndex(of: "/") else { return Substring(name) }
        return name[name.index(after: slash)...]
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

/// How finely a batch's timestamps count time. Agents use milliseconds; the wire format also
/// carries microseconds and nanoseconds exactly (for inputs that have them).
public enum TimeResolution: UInt8, Sendable, CaseIterable {
    /// The value is the decimal exponent: timestamps count 10^-value seconds.
    case milliseconds = 3, microseconds = 6, nanoseconds = 9

    /// Timestamp units per millisecond (1, 1 000 or 1 000 000).
    public var unitsPerMillisecond: Int64 {
        switch self {
        case .milliseconds: 1
        case .microseconds: 1_000
        case .nanoseconds: 1_000_000
        }
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
    /// The unit of ``timestamps`` (Unix time since 1970-01-01T00:00:00Z).
    public var timeResolution: TimeResolution
    public var series: [SeriesInfo]
    public var seriesIndex: [UInt32]
    public var timestamps: [Int64]
    public var values: [Double]

    public init(agentID: String, bootEpoch: UInt64, sequence: UInt64, createdAt: Int64,
                timeResolution: TimeResolution = .milliseconds,
                series: [SeriesInfo] = [], seriesIndex: [UInt32] = [], timestamps: [Int64] = [], values: [Double] = []) {
        self.agentID = agentID
        self.bootEpoch = bootEpoch
        self.sequence = sequence
        self.createdAt = createdAt
        self.timeResolution = timeResolution
        self.series = series
        self.seriesIndex = seriesIndex
        self.timestamps = timestamps
        self.values = values
    }

    public var count: Int { values.count }

    /// Whether `other` holds the same batch bit for bit (`==` calls NaN unequal to itself and -0.0
    /// equal to 0.0; a codec must give back the exact bits).
    public func isBitIdentical(to other: Batch) -> Bool {
        agentID == other.agentID && bootEpoch == other.bootEpoch && sequence == other.sequence
            && createdAt == other.createdAt && timeResolution == other.timeResolution && series == other.series
            && seriesIndex == other.seriesIndex && timestamps == other.timestamps
            && values.map(\.bitPattern) == other.values.map(\.bitPattern)
    }

    /// Reading `i`'s time in Unix milliseconds (finer resolutions round towards the past).
    @inline(__always)
    public func millisecondTimestamp(_ i: Int) -> Int64 {
        let units = timeResolution.unitsPerMillisecond
        if units == 1 { return timestamps[i] }
        let t = timestamps[i]
        return t >= 0 ? t / units : -((-(t + 1)) / units) - 1
    }

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
