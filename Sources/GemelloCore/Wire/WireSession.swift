/// Wire format v2's session series (docs/wire-format.md §3.5): within one boot epoch an agent
/// numbers its series 1, 2, 3, … in the order it first sends them, sends each one's name and unit
/// (a *definition*) until the aggregator has acknowledged a batch that carried it, and from then
/// on only the number (a *reference*). Pure state on both sides; no I/O.

/// One series of a v2 batch: its session index, and whether the batch carries its definition.
public struct SeriesEntry: Sendable, Equatable {
    public var index: UInt64
    public var defines: Bool

    /// Session indexes run from 1 to this.
    public static let maxIndex: UInt64 = 1 << 20

    public init(index: UInt64, defines: Bool) {
        self.index = index
        self.defines = defines
    }
}

/// The agent's side: which number each series has in this boot epoch, and which definitions the
/// aggregator confirmed (by acknowledging a batch that carried them).
public struct WireSession: Sendable {
    public let bootEpoch: UInt64
    private var indexes: [SeriesInfo: UInt64] = [:]
    private var confirmed = Set<UInt64>()
    /// Per batch in flight: the definitions it carries.
    private var carried: [UInt64: [UInt64]] = [:]
    /// After a resync, this many batches more define every series they hold, confirmed or not:
    /// a share group's members take turns on an agent's batches, so one acknowledgement does not
    /// mean every member holds the definitions.
    private var defineAllFor = 0
    public static let batchesDefiningAfterResync = 8

    public init(bootEpoch: UInt64) {
        self.bootEpoch = bootEpoch
    }

    /// The entries to encode `batch` with, remembered as carried by it; `nil` when the batch
    /// belongs to another boot epoch (a batch restored after a restart: sent as v1) or the session
    /// has numbered as many series as it may.
    public mutating func entries(for batch: Batch) -> [SeriesEntry]? {
        guard batch.bootEpoch == bootEpoch else { return nil }
        let fresh = batch.series.filter { indexes[$0] == nil }.count
        guard UInt64(indexes.count + fresh) <= SeriesEntry.maxIndex else { return nil }
        var entries: [SeriesEntry] = []
        entries.reserveCapacity(batch.series.count)
        var defines: [UInt64] = []
        let defineAll = defineAllFor > 0
        if defineAll { defineAllFor -= 1 }
        for info in batch.series {
            let index: UInt64
            if let known = indexes[info] {
                index = known
            } else {
                index = UInt64(indexes.count + 1)
                indexes[info] = index
            }
            let define = defineAll || !confirmed.contains(index)
            if define { defines.append(index) }
            entries.append(SeriesEntry(index: index, defines: define))
        }
        carried[batch.sequence] = defines
        return entries
    }

    /// The aggregator acknowledged these batches: the definitions they carried are confirmed.
    public mutating func acknowledged(_ sequences: [UInt64]) {
        for sequence in sequences {
            if let defines = carried.removeValue(forKey: sequence) { confirmed.formUnion(defines) }
        }
    }

    /// The aggregator does not hold this session's series (it restarted, or another member of a
    /// share group got the batch): every series is defined again from the next encoding on.
    public mutating func forgetConfirmations() {
        confirmed.removeAll()
        carried.removeAll()
        defineAllFor = Self.batchesDefiningAfterResync
    }

    /// How many series the aggregator confirmed.
    public var confirmedCount: Int { confirmed.count }
}

/// The aggregator's side: per agent and boot epoch, the series definitions it was sent. Bounded:
/// at most ``maxEpochsPerAgent`` epochs per agent (the oldest is forgotten; a batch of it that
/// refers to its series gets a resync) and ``maxSeriesPerSession`` definitions per epoch.
public struct SeriesTables: Sendable {
    public static let maxEpochsPerAgent = 2
    public static let maxSeriesPerSession = 16_384
    private var tables: [String: [UInt64: [UInt64: SeriesInfo]]] = [:]

    public init() {}

    public func lookup(agent: String, epoch: UInt64, index: UInt64) -> SeriesInfo? {
        tables[agent]?[epoch]?[index]
    }

    /// One agent's sessions (epoch → index → series): a cheap copy to decode with outside a lock.
    public func sessions(of agent: String) -> [UInt64: [UInt64: SeriesInfo]] { tables[agent] ?? [:] }

    /// Remembers `definitions` of a trusted batch (a definition replaces an earlier one: the
    /// agent's own numbering never changes within an epoch, so only a reinstalled agent reusing
    /// an epoch could differ, and its latest word wins).
    public mutating func define(agent: String, epoch: UInt64, _ definitions: [(index: UInt64, series: SeriesInfo)]) throws(CoreError) {
        guard !definitions.isEmpty else { return }
        var epochs = tables[agent] ?? [:]
        var table = epochs[epoch] ?? [:]
        for (index, series) in definitions { table[index] = series }
        guard table.count <= Self.maxSeriesPerSession else {
            throw CoreError(.limitExceeded, "agent '\(agent)' defined more than \(Self.maxSeriesPerSession) series in boot epoch \(epoch)")
        }
        epochs[epoch] = table
        while epochs.count > Self.maxEpochsPerAgent, let oldest = epochs.keys.min() { epochs[oldest] = nil }
        tables[agent] = epochs
    }

    /// Definitions held for one session (for tests).
    public func seriesCount(agent: String, epoch: UInt64) -> Int { tables[agent]?[epoch]?.count ?? 0 }
}

/// The aggregator's request to define again: "I do not hold your series of this boot epoch".
/// Layout: magic "GR" | version u8 = 1 | boot epoch varint. Sent on ``Topics/ack(agent:)`` in
/// answer to a v2 batch with a reference it cannot resolve (that batch is not acknowledged).
public struct WireResync: Sendable, Equatable {
    public var bootEpoch: UInt64

    public init(bootEpoch: UInt64) { self.bootEpoch = bootEpoch }

    public static let magic: [UInt8] = [0x47, 0x52]

    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 8)
        writer.write(Self.magic)
        writer.write(1)
        writer.writeVarint(bootEpoch)
        return writer.bytes
    }

    /// `nil` when `bytes` is not a resync (e.g. an acknowledgement).
    public static func decode(_ bytes: [UInt8]) throws(CoreError) -> WireResync? {
        guard bytes.count >= 3, bytes[0] == magic[0], bytes[1] == magic[1] else { return nil }
        var reader = ByteReader(bytes)
        _ = try reader.readBytes(2)
        let version = try reader.readByte()
        guard version == 1 else { throw CoreError(.unsupportedVersion, "resync version \(version) is not supported") }
        return WireResync(bootEpoch: try reader.readVarint())
    }
}
