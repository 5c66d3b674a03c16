import GemelloCore

/// Reading the twin's history, as the temporal API needs it (one series at a time, with the
/// lineage of every point). The twin store's `HistoryStore` implements it.
public protocol TwinHistory: Sendable {
    /// One series' points within `range` (ms, inclusive), in observation order; nil for an unknown
    /// series. With `limit`, at least the oldest `limit + 1` when there are more (not all of them).
    func points(agent: String, series: String, in range: ClosedRange<Int64>, limit: Int?) throws(AggregatorError) -> SeriesChunk?
    /// The newest `n` points at or before `end`, in observation order.
    func lastPoints(agent: String, series: String, n: Int, before end: Int64) throws(AggregatorError) -> SeriesChunk?
    /// Deletes the `ordinal`-th point (0-based, in stored order) observed at `time` and delivered
    /// by batch (`epoch`, `sequence`); whether there was one.
    func deletePoint(agent: String, series: String, time: Int64, epoch: UInt64, sequence: UInt64, ordinal: Int) throws(AggregatorError) -> Bool
    /// Deletes every point of the series (its latest value stays); how many there were.
    func deleteHistory(agent: String, series: String) throws(AggregatorError) -> Int
    /// Hourly rollups (hours starting within `range`) of the readings retention dropped from the
    /// raw history: together with the raw points they are every reading, each once.
    func rollups(agent: String, series: String, in range: ClosedRange<Int64>) throws(AggregatorError) -> [HourRollup]
    /// The site an agent announced in its birth.
    func site(ofAgent agent: String) throws(AggregatorError) -> String?
}

extension HistoryStore: TwinHistory {
    public func site(ofAgent agent: String) throws(AggregatorError) -> String? {
        try read { db in
            let row = try db.query("SELECT site_id FROM agents WHERE id = ?", [.text(agent)])
            return try row.step() && !row.isNull(0) ? row.text(0) : nil
        }
    }
}

/// One hour of one series: what aggregation needs once the raw readings are gone.
public struct HourRollup: Sendable, Equatable {
    /// The hour's start (ms since the Unix epoch, a multiple of 3,600,000).
    public var hour: Int64
    public var count: Int64
    public var sum: Double
    public var sumOfSquares: Double
    public var min: Double
    public var max: Double
}
