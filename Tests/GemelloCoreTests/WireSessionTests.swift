@testable import GemelloCore
import Testing

/// Wire format v2 (docs/wire-format.md §3.5): series defined once per boot epoch and referenced
/// after the aggregator confirmed them; what a restarted aggregator and an old one see.
@Suite struct WireSessionTests {
    static let temperature = SeriesInfo(name: "weather/temperature", unit: "CEL")
    static let pm25 = SeriesInfo(name: "air/pm25", unit: "GQ")
    static let custom = SeriesInfo(name: "box/cpuUser", unit: "P1")
    static let bare = SeriesInfo(name: "/odd", unit: "mystery-unit")

    static func batch(_ series: [SeriesInfo], sequence: UInt64, epoch: UInt64 = 9) -> Batch {
        var batch = Batch(agentID: "tower-duomo-01", bootEpoch: epoch, sequence: sequence, createdAt: 1_700_000_000_000)
        var lookup: [SeriesInfo: UInt32] = [:]
        for (i, info) in series.enumerated() {
            batch.append(Reading(series: info, timestamp: 1_700_000_000_000 + Int64(i / 2) * 1000, value: Double(sequence) + Double(i) / 10), lookup: &lookup)
        }
        return batch
    }

    @Test func definesUntilConfirmedThenRefers() throws {
        var session = WireSession(bootEpoch: 9)
        var tables = SeriesTables()
        let first = Self.batch([Self.temperature, Self.pm25, Self.custom, Self.bare], sequence: 1)
        let maybe1 = session.entries(for: first)
        let entries1 = try #require(maybe1)
        #expect(entries1 == [SeriesEntry(index: 1, defines: true), SeriesEntry(index: 2, defines: true),
                             SeriesEntry(index: 3, defines: true), SeriesEntry(index: 4, defines: true)])
        // Not acknowledged yet: the next batch defines them again.
        let second = Self.batch([Self.pm25, Self.temperature], sequence: 2)
        let entries2 = session.entries(for: second)
        #expect(entries2 == [SeriesEntry(index: 2, defines: true), SeriesEntry(index: 1, defines: true)])

        // The aggregator decodes the first (self-contained: no table needed) and remembers.
        let frame1 = try WireFormat.encode(first, entries: entries1)
        #expect(frame1[2] == 2)
        let decoded1 = try WireFormat.decodeFrame(frame1, agentID: "tower-duomo-01") { tables.lookup(agent: "tower-duomo-01", epoch: $0, index: $1) }
        #expect(decoded1.batch == first, "v2 carries no agent id: the topic's is used")
        try tables.define(agent: "tower-duomo-01", epoch: 9, decoded1.definitions)
        session.acknowledged([1])

        let third = Self.batch([Self.temperature, Self.custom, Self.bare], sequence: 3)
        let maybe3 = session.entries(for: third)
        let entries3 = try #require(maybe3)
        #expect(entries3.allSatisfy { !$0.defines })
        let frame3 = try WireFormat.encode(third, entries: entries3)
        #expect(frame3.count < (try WireFormat.encode(third)).count - 30, "references are smaller than names")
        let decoded3 = try WireFormat.decodeFrame(frame3, agentID: "tower-duomo-01") { tables.lookup(agent: "tower-duomo-01", epoch: $0, index: $1) }
        #expect(decoded3.batch == third)
        #expect(decoded3.definitions.isEmpty)

        // A new series in a later batch: defined, the others referred to.
        let fourth = Self.batch([Self.temperature, SeriesInfo(name: "air/no2", unit: "GQ")], sequence: 4)
        let entries4 = session.entries(for: fourth)
        #expect(entries4 == [SeriesEntry(index: 1, defines: false), SeriesEntry(index: 5, defines: true)])
    }

    @Test func anAggregatorWithoutTheTableAsksForAResync() throws {
        var session = WireSession(bootEpoch: 9)
        _ = session.entries(for: Self.batch([Self.temperature], sequence: 1))
        session.acknowledged([1])
        let batch = Self.batch([Self.temperature, Self.pm25], sequence: 2)
        let maybe = session.entries(for: batch)
        let entries = try #require(maybe)
        #expect(entries == [SeriesEntry(index: 1, defines: false), SeriesEntry(index: 2, defines: true)])
        let frame = try WireFormat.encode(batch, entries: entries)
        // A restarted aggregator holds nothing: the reference fails, naming the epoch and index.
        let error = #expect(throws: CoreError.self) { try WireFormat.decode(frame, agentID: "tower-duomo-01") }
        #expect(error?.code == .unknownSeries)
        let resync = WireResync(bootEpoch: 9)
        #expect(try WireResync.decode(resync.encode()) == resync)
        #expect(try WireResync.decode(BatchAck(bootEpoch: 9, sequences: [1]).encode()) == nil, "an ack is not a resync")
        // The agent forgets what was confirmed: everything is defined again, and decodes alone.
        session.forgetConfirmations()
        let maybeAgain = session.entries(for: batch)
        let again = try #require(maybeAgain)
        #expect(again.allSatisfy { $0.defines })
        #expect(try WireFormat.decode(try WireFormat.encode(batch, entries: again), agentID: "tower-duomo-01") == batch)
        // A late ack of a batch encoded before the resync confirms nothing it no longer carries.
        session.acknowledged([1])
        #expect(session.confirmedCount == 0)
    }

    @Test func v2FramesAreSignedLikeV1() throws {
        let key = [UInt8](repeating: 7, count: 32)
        var session = WireSession(bootEpoch: 9)
        let batch = Self.batch([Self.temperature, Self.pm25], sequence: 1)
        let maybe = session.entries(for: batch)
        let entries = try #require(maybe)
        let frame = try WireFormat.encode(batch, signingKey: key, entries: entries)
        #expect(frame[2] == 2 && frame[3] & WireFormat.flagSigned != 0)
        #expect(WireFormat.verify(frame, key: key))
        #expect(!WireFormat.verify(frame, key: [UInt8](repeating: 8, count: 32)))
        #expect(try WireFormat.decode(frame, agentID: "tower-duomo-01") == batch)
    }

    @Test func batchesOfAnotherEpochAreSentAsV1() {
        var session = WireSession(bootEpoch: 9)
        let entries = session.entries(for: Self.batch([Self.temperature], sequence: 1, epoch: 8))
        #expect(entries == nil)
    }

    @Test func tablesAreBoundedPerAgent() throws {
        var tables = SeriesTables()
        for epoch: UInt64 in 1...3 { try tables.define(agent: "a", epoch: epoch, [(1, Self.temperature)]) }
        #expect(tables.lookup(agent: "a", epoch: 1, index: 1) == nil, "the oldest epoch is forgotten")
        #expect(tables.lookup(agent: "a", epoch: 3, index: 1) == Self.temperature)
        let tooMany = (1...UInt64(SeriesTables.maxSeriesPerSession + 1)).map { (index: $0, series: Self.pm25) }
        #expect(throws: CoreError.self) { try tables.define(agent: "b", epoch: 1, tooMany) }
        #expect(tables.seriesCount(agent: "b", epoch: 1) == 0, "a refused definition leaves the table as it was")
    }

    @Test func hostileV2FramesAreRejected() throws {
        var body = ByteWriter()
        body.writeVarint(9); body.writeVarint(1); body.writeSignedVarint(0); body.write(3)
        body.writeVarint(1); body.writeVarint(1)  // 1 reading, 1 row
        body.writeVarint(1)  // 1 series
        var zeroIndex = body
        zeroIndex.writeVarint(0 << 1 | 1)
        var hugeIndex = body
        hugeIndex.writeVarint((SeriesEntry.maxIndex + 1) << 1 | 1)
        for bad in [zeroIndex, hugeIndex] {
            let frame = WireFormat.frame(body: bad.bytes, bodyLength: bad.bytes.count, flags: 0, version: 2)
            let error = #expect(throws: CoreError.self) { try WireFormat.decode(frame, agentID: "a") }
            #expect(error?.code == .malformed)
        }
        #expect(throws: CoreError.self) { try WireFormat.encode(Self.batch([Self.temperature], sequence: 1), entries: []) }
    }

    @Test func acknowledgementsCarryFeaturesOldDecodersSkip() throws {
        let ack = BatchAck(bootEpoch: 9, sequences: [4, 5], features: .current)
        let bytes = ack.encode()
        #expect(try BatchAck.decode(bytes) == ack)
        // What an aggregator from before the features byte sends: no features.
        let old = BatchAck(bootEpoch: 9, sequences: [4, 5]).encode()
        #expect(old.count == bytes.count - 1)
        #expect(try BatchAck.decode(old).features == [])
    }
}
