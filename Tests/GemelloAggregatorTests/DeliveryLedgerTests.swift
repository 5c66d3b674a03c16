@testable import GemelloAggregator
import GemelloTesting
import Testing

/// The in-memory de-duplication record, without a store.
@Suite struct DeliveryLedgerTests {
    static let key = DeliveryLedger.Key(agent: "a", epoch: 7)

    @Test func rangesMergeAsGapsFillAndRepeatsAreDuplicates() {
        var ledger = DeliveryLedger([(Self.key, 1, 5), (Self.key, 9, 9)])
        func record(_ s: Int64) -> Bool { ledger.record(Self.key, s) }
        #expect(!record(3) && !record(9))
        #expect(ledger.changes.isEmpty)
        #expect(record(7))
        #expect(ledger.ranges[Self.key] == [1...5, 7...7, 9...9])
        #expect(record(8) && record(6))
        #expect(ledger.ranges[Self.key] == [1...9])
        #expect(!record(6))
        #expect(record(0) && record(Int64.max) && !record(Int64.max))
        #expect(ledger.ranges[Self.key] == [0...9, Int64.max...Int64.max])
        #expect(ledger.changes.map(\.key) == [Self.key])
    }

    @Test func anyOrderEndsInOneRangeAndNeverForgets() {
        var order = Array(Int64(1)...500)
        var generator = SeededGenerator(seed: 9)
        order.shuffle(using: &generator)
        var ledger = DeliveryLedger([])
        var fresh = 0, repeated = 0
        for (n, s) in order.enumerated() {
            if ledger.record(Self.key, s) { fresh += 1 }
            if !ledger.record(Self.key, order[n / 2]) { repeated += 1 }
        }
        #expect(fresh == 500 && repeated == 500)
        #expect(ledger.ranges[Self.key] == [1...500])
        let other = DeliveryLedger.Key(agent: "a", epoch: 8)
        let isNew = ledger.record(other, 3)
        #expect(isNew)  // another epoch is another record
    }

    @Test func storedRangesAreNormalised() {
        let ledger = DeliveryLedger([(Self.key, 5, 9), (Self.key, 1, 4), (Self.key, 7, 12), (Self.key, 20, 19)])
        #expect(ledger.ranges[Self.key] == [1...12])
    }
}
