/// The de-duplication record of the agents a transaction touches, in memory: each (agent, boot
/// epoch)'s stored sequences as ranges (sorted, disjoint, never adjacent), loaded once, updated
/// as the transaction's batches are recorded, and written back with ``changes``. Pure: no I/O.
/// (Why ranges rather than a window below a high-water mark: `TwinStore+Dedupe.swift`.)
struct DeliveryLedger: Sendable, Equatable {
    struct Key: Hashable, Sendable {
        var agent: String
        var epoch: Int64
    }

    private(set) var ranges: [Key: [ClosedRange<Int64>]]
    private let loaded: [Key: [ClosedRange<Int64>]]

    /// `rows` as stored: (key, first sequence, last sequence).
    init(_ rows: [(key: Key, first: Int64, last: Int64)]) {
        var ranges: [Key: [ClosedRange<Int64>]] = [:]
        for row in rows where row.first <= row.last { ranges[row.key, default: []].append(row.first...row.last) }
        for key in ranges.keys { ranges[key] = Self.normalized(ranges[key]!) }
        self.ranges = ranges
        self.loaded = ranges
    }

    /// Records `sequence` for `key`; false when it was already recorded (a duplicate).
    mutating func record(_ key: Key, _ sequence: Int64) -> Bool {
        var list = ranges[key] ?? []
        // The last range starting at or below the sequence.
        var low = 0, high = list.count
        while low < high {
            let mid = (low + high) / 2
            if list[mid].lowerBound <= sequence { low = mid + 1 } else { high = mid }
        }
        let below = low - 1
        if below >= 0 && list[below].contains(sequence) { return false }
        let joinsBelow = below >= 0 && list[below].upperBound == sequence - 1
        let joinsAbove = low < list.count && sequence < Int64.max && list[low].lowerBound == sequence + 1
        switch (joinsBelow, joinsAbove) {
        case (true, true):
            list[below] = list[below].lowerBound...list[low].upperBound
            list.remove(at: low)
        case (true, false):
            list[below] = list[below].lowerBound...sequence
        case (false, true):
            list[low] = sequence...list[low].upperBound
        case (false, false):
            list.insert(sequence...sequence, at: low)
        }
        ranges[key] = list
        return true
    }

    /// The keys whose ranges differ from what was loaded, with their ranges now.
    var changes: [(key: Key, ranges: [ClosedRange<Int64>])] {
        ranges.filter { loaded[$0.key] != $0.value }.map { ($0.key, $0.value) }
            .sorted { ($0.key.agent, $0.key.epoch) < ($1.key.agent, $1.key.epoch) }
    }

    /// Sorted, overlapping or adjacent ranges merged (what a store written by hand might hold).
    private static func normalized(_ list: [ClosedRange<Int64>]) -> [ClosedRange<Int64>] {
        var out: [ClosedRange<Int64>] = []
        for r in list.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, last.upperBound == .max || r.lowerBound <= last.upperBound + 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }
}
