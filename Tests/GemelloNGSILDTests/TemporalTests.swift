import GemelloCore
@testable import GemelloNGSILD
import Testing

@Suite struct TemporalTests {
    /// The byte writer writes what the tree writer does, for every kind of number and string.
    @Test(arguments: [0, 7, -7, 42, 1e15, -9_007_199_254_740_991, 3.5, -0.25, 1e-7, 1.0e300, .pi, .nan, .infinity])
    func jsonTextNumbersMatchTheTreeWriter(value: Double) {
        var text = JSONText()
        text.number(value)
        #expect(String(decoding: text.bytes, as: UTF8.self) == JSON.number(value).serialized)
    }

    @Test func jsonTextStringsAndTimesMatch() {
        for s in ["plain", "quote \" back \\ slash", "tab\there", "città"] {
            var text = JSONText()
            text.string(s)
            #expect(String(decoding: text.bytes, as: UTF8.self) == JSON.string(s).serialized)
        }
        for ms: Int64 in [0, 1_704_067_200_123, -1, 253_402_300_799_999] {
            var text = JSONText()
            text.time(ms)
            #expect(String(decoding: text.bytes, as: UTF8.self) == JSON.string(Timestamp.iso8601(milliseconds: ms)).serialized)
        }
        #expect(Timestamp.iso8601(milliseconds: 1_704_067_200_123) == "2024-01-01T00:00:00.123Z")
        #expect(Timestamp.iso8601(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
    }

    @Test func isoDurations() throws {
        #expect(try ISODuration.parse("P1D") == ISODuration(months: 0, milliseconds: 86_400_000))
        #expect(try ISODuration.parse("PT1H30M") == ISODuration(months: 0, milliseconds: 5_400_000))
        #expect(try ISODuration.parse("P1Y2M") == ISODuration(months: 14, milliseconds: 0))
        #expect(try ISODuration.parse("P2W") == ISODuration(months: 0, milliseconds: 14 * 86_400_000))
        #expect(try ISODuration.parse("PT0.5S") == ISODuration(months: 0, milliseconds: 500))
        #expect(try ISODuration.parse("PT0S").isZero)
        for bad in ["", "P", "1D", "PT", "P1H", "PT1D", "P1M1Y", "P1DT", "P-1D", "P1.5M", "PXD"] {
            #expect(throws: NGSILDError.self, "\(bad)") { try ISODuration.parse(bad) }
        }
        // Months follow the calendar (31 January + 1 month = 29 February 2024).
        let jan31 = CivilDate.days(year: 2024, month: 1, day: 31) * 86_400_000 + 3_600_000
        #expect(Timestamp.iso8601(milliseconds: ISODuration(months: 1, milliseconds: 0).advance(jan31)) == "2024-02-29T01:00:00.000Z")
    }

    @Test func periodsSkipEmptyOnesAndStartAtTheOrigin() {
        let hour: Int64 = 3_600_000
        let times: [Int64] = [0, hour, 2 * hour, 50 * hour, 50 * hour + 1]
        let periods = PeriodAggregate.aggregate(times: times, values: [1, 2, 3, 10, 10], origin: 0, end: 51 * hour,
                                                period: ISODuration(months: 0, milliseconds: 24 * hour), distinct: true)
        #expect(periods.map(\.start) == [0, 48 * hour])
        #expect(periods.map(\.end) == [24 * hour, 72 * hour])
        #expect(periods[0].value(.avg) == 2 && periods[0].value(.sumsq) == 14 && periods[0].value(.totalCount) == 3)
        #expect(abs(periods[0].value(.stddev) - (2.0 / 3).squareRoot()) < 1e-12)
        #expect(periods[1].value(.distinctCount) == 1 && periods[1].value(.min) == 10)
        let whole = PeriodAggregate.aggregate(times: times, values: [1, 2, 3, 10, 10], origin: 0, end: 51 * hour, period: .zero, distinct: false)
        #expect(whole.count == 1 && whole[0].value(.sum) == 26 && whole[0].end == 51 * hour)
    }

    /// Hours summed up (readings past their retention) and raw readings left in between add up.
    @Test func summariesAndPointsMergeByTime() {
        let hour: Int64 = 3_600_000
        let summaries = [PeriodAggregate.Summary(time: 0, count: 2, sum: 4, sumOfSquares: 10, min: 1, max: 3),
                         PeriodAggregate.Summary(time: 5 * hour, count: 1, sum: 7, sumOfSquares: 49, min: 7, max: 7)]
        let periods = PeriodAggregate.aggregate(times: [2 * hour, 30 * hour], values: [5, 1], summaries: summaries, origin: 0,
                                                end: 31 * hour, period: ISODuration(months: 0, milliseconds: 24 * hour), distinct: true)
        #expect(periods.count == 2)
        #expect(periods[0].value(.totalCount) == 4 && periods[0].value(.sum) == 16 && periods[0].value(.max) == 7 && periods[0].value(.min) == 1)
        #expect(periods[0].value(.distinctCount).isNaN && periods[1].value(.distinctCount) == 1)
    }

    @Test func temporalQueryRanges() throws {
        func parse(_ pairs: [String: String], options: Set<String> = []) throws -> TemporalQuery {
            try TemporalQuery.parse(parameter: { pairs[$0] }, options: options)
        }
        let between = try parse(["timerel": "between", "timeAt": "2024-01-01T00:00:00Z", "endTimeAt": "2024-01-02T00:00:00Z"])
        #expect(between.range == 1_704_067_200_000...(1_704_153_600_000 - 1))
        #expect(try parse(["timerel": "after", "timeAt": "2024-01-01T00:00:00Z"]).range.lowerBound == 1_704_067_200_001)
        #expect(try parse([:], options: ["temporalValues"]).representation == .temporalValues)
        #expect(try parse(["format": "normalized"], options: ["temporalValues"]).representation == .normalized)
        #expect(throws: NGSILDError.self) { try parse(["timerel": "between", "timeAt": "2024-01-02T00:00:00Z", "endTimeAt": "2024-01-01T00:00:00Z"]) }
    }
}
