import GemelloCore

/// The temporal part of a temporal query (ETSI GS CIM 009 v1.8, clause 4.11 and the
/// `/temporal/entities` parameters): which instants, how many, and in which representation.
public struct TemporalQuery: Sendable, Equatable {
    public enum Relation: String, Sendable {
        case before, after, between
    }

    /// The temporal property the relation applies to.
    public enum TimeProperty: String, Sendable {
        case observedAt, createdAt, modifiedAt
    }

    public enum Representation: Sendable, Equatable {
        /// Every instance as a full attribute (the default).
        case normalized
        /// `values: [[value, time], …]` (`options=temporalValues` or `format=temporalValues`).
        case temporalValues
        /// `<method>: [[value, start, end], …]` per period (`aggregatedValues`).
        case aggregated(methods: [AggregationMethod], period: ISODuration)
    }

    public var relation: Relation?
    /// Unix ms of `timeAt` and `endTimeAt`.
    public var timeAt: Int64?
    public var endTimeAt: Int64?
    public var timeProperty = TimeProperty.observedAt
    /// The newest N instances (within the relation) per attribute.
    public var lastN: Int?
    public var representation = Representation.normalized

    public init() {}

    /// The closed range of instants the relation selects (`between` is `[timeAt, endTimeAt)`).
    public var range: ClosedRange<Int64> {
        switch relation {
        case .before?: Int64.min...(timeAt! - 1)
        case .after?: (timeAt! + 1)...Int64.max
        case .between?: timeAt!...(endTimeAt! - 1)
        case nil: Int64.min...Int64.max
        }
    }

    /// Parses the request parameters (`parameter(name)` is the raw value or nil).
    /// `format` and `options` follow the non-temporal rules: `format` wins.
    public static func parse(parameter: (String) -> String?, options: Set<String>) throws(NGSILDError) -> TemporalQuery {
        var q = TemporalQuery()
        if let timerel = parameter("timerel") {
            guard let relation = Relation(rawValue: timerel) else { throw .badRequest("timerel=\(timerel) is not before, after or between") }
            q.relation = relation
        }
        func time(_ name: String) throws(NGSILDError) -> Int64? {
            guard let text = parameter(name) else { return nil }
            guard let ms = DateTime.milliseconds(text) else { throw .badRequest("\(name)=\(text) is not an ISO 8601 date-time with a zone (e.g. 2024-03-01T00:00:00Z)") }
            return ms
        }
        q.timeAt = try time("timeAt")
        q.endTimeAt = try time("endTimeAt")
        switch q.relation {
        case nil:
            guard q.timeAt == nil, q.endTimeAt == nil else { throw .badRequest("timeAt and endTimeAt need timerel") }
        case .before?, .after?:
            guard q.timeAt != nil else { throw .badRequest("timerel=\(q.relation!.rawValue) needs timeAt") }
        case .between?:
            guard let start = q.timeAt, let end = q.endTimeAt else { throw .badRequest("timerel=between needs timeAt and endTimeAt") }
            guard start < end else { throw .badRequest("endTimeAt must be after timeAt") }
        }
        if let property = parameter("timeproperty") {
            guard let p = TimeProperty(rawValue: property) else {
                throw .badRequest("timeproperty=\(property) is not observedAt, createdAt or modifiedAt")
            }
            q.timeProperty = p
        }
        if let lastN = parameter("lastN") {
            guard let n = Int(lastN), n > 0 else { throw .badRequest("lastN=\(lastN) is not a whole number above 0") }
            q.lastN = n
        }
        let format = parameter("format")
        let aggregated = format == "aggregatedValues" || (format == nil && options.contains("aggregatedValues"))
        let temporalValues = format == "temporalValues" || (format == nil && options.contains("temporalValues"))
        if let format, !["temporalValues", "aggregatedValues", "normalized"].contains(format) {
            throw .badRequest("format=\(format) is not normalized, temporalValues or aggregatedValues")
        }
        if aggregated {
            guard let methodsText = parameter("aggrMethods") else { throw .badRequest("aggregatedValues needs aggrMethods") }
            var methods: [AggregationMethod] = []
            for name in methodsText.split(separator: ",") {
                guard let method = AggregationMethod(rawValue: String(name)) else {
                    throw .badRequest("aggrMethods: \(name) is not one of \(AggregationMethod.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                if !methods.contains(method) { methods.append(method) }
            }
            guard !methods.isEmpty else { throw .badRequest("aggrMethods is empty") }
            let period = try parameter("aggrPeriodDuration").map { text throws(NGSILDError) in try ISODuration.parse(text) } ?? .zero
            q.representation = .aggregated(methods: methods, period: period)
        } else if temporalValues {
            q.representation = .temporalValues
        } else if parameter("aggrMethods") != nil || parameter("aggrPeriodDuration") != nil {
            throw .badRequest("aggrMethods and aggrPeriodDuration need options=aggregatedValues or format=aggregatedValues")
        }
        return q
    }
}

/// An ISO 8601 duration `P[n]Y[n]M[n]DT[n]H[n]M[n]S` or `P[n]W`: calendar months (years are 12)
/// and exact milliseconds (days are 24 h: times are UTC).
public struct ISODuration: Sendable, Equatable {
    public var months: Int
    public var milliseconds: Int64

    public static let zero = ISODuration(months: 0, milliseconds: 0)

    public var isZero: Bool { months == 0 && milliseconds == 0 }

    public static func parse(_ text: String) throws(NGSILDError) -> ISODuration {
        let bad = NGSILDError.badRequest("aggrPeriodDuration=\(text) is not an ISO 8601 duration such as P1D, PT1H or P1Y2M")
        var chars = Substring(text)
        guard chars.first == "P", chars.count > 1 else { throw bad }
        chars = chars.dropFirst()
        var months = 0, ms: Int64 = 0
        var inTime = false, number = "", sawComponent = false
        var lastRank = -1
        for c in chars {
            if c == "T" {
                guard !inTime, number.isEmpty else { throw bad }
                inTime = true
                continue
            }
            if c.isNumber || c == "." {
                number.append(c)
                continue
            }
            guard !number.isEmpty, let value = Double(number), value >= 0 else { throw bad }
            let rank: Int
            switch (inTime, c) {
            case (false, "Y"): rank = 0; guard value == value.rounded() else { throw bad }; months += Int(value) * 12
            case (false, "M"): rank = 1; guard value == value.rounded() else { throw bad }; months += Int(value)
            case (false, "W"): rank = 2; ms += Int64(value * 7 * 86_400_000)
            case (false, "D"): rank = 3; ms += Int64(value * 86_400_000)
            case (true, "H"): rank = 4; ms += Int64(value * 3_600_000)
            case (true, "M"): rank = 5; ms += Int64(value * 60_000)
            case (true, "S"): rank = 6; ms += Int64((value * 1000).rounded())
            default: throw bad
            }
            guard rank > lastRank else { throw bad }
            lastRank = rank
            number = ""
            sawComponent = true
        }
        guard number.isEmpty, sawComponent, !(inTime && lastRank < 4) else { throw bad }
        guard months <= 12 * 10_000, ms <= 86_400_000 * 366 * 10_000 else { throw bad }
        return ISODuration(months: months, milliseconds: ms)
    }

    /// `time` advanced by this duration (months on the UTC calendar, day clamped to the month's end).
    public func advance(_ time: Int64) -> Int64 {
        var t = time
        if months != 0 {
            let days = t >= 0 ? t / 86_400_000 : (t - 86_399_999) / 86_400_000
            let msOfDay = t - days * 86_400_000
            let date = CivilDate.fromDays(days)
            let total = date.year * 12 + (date.month - 1) + months
            let year = total / 12, month = total % 12 + 1
            var day = date.day
            while day > 28 && !CivilDate.isValid(year: year, month: month, day: day) { day -= 1 }
            t = CivilDate.days(year: year, month: month, day: day) * 86_400_000 + msOfDay
        }
        return t &+ milliseconds
    }
}

/// The aggregation methods of clause 4.5.19.
public enum AggregationMethod: String, Sendable, CaseIterable {
    case totalCount, distinctCount, sum, avg, min, max, stddev, sumsq
}

/// Aggregates of one period's values.
public struct PeriodAggregate: Sendable, Equatable {
    public var start: Int64
    public var end: Int64
    public var count = 0
    public var sum = 0.0
    public var sumOfSquares = 0.0
    public var min = Double.infinity
    public var max = -Double.infinity
    public var distinct: Set<UInt64> = []
    /// Some of the period's readings came as summaries: its distinct count is unknown.
    public var summarized = false

    public init(start: Int64, end: Int64) {
        self.start = start
        self.end = end
    }

    /// The value of `method` (population standard deviation for `stddev`).
    public func value(_ method: AggregationMethod) -> Double {
        switch method {
        case .totalCount: Double(count)
        case .distinctCount: summarized ? .nan : Double(distinct.count)
        case .sum: sum
        case .avg: sum / Double(count)
        case .min: min
        case .max: max
        case .sumsq: sumOfSquares
        case .stddev: (Swift.max(0, sumOfSquares / Double(count) - (sum / Double(count)) * (sum / Double(count)))).squareRoot()
        }
    }

    /// Readings already summed up (an hour of a series whose raw readings expired).
    public struct Summary: Sendable, Equatable {
        public var time: Int64
        public var count: Int
        public var sum, sumOfSquares, min, max: Double
        public init(time: Int64, count: Int, sum: Double, sumOfSquares: Double, min: Double, max: Double) {
            self.time = time
            self.count = count
            self.sum = sum
            self.sumOfSquares = sumOfSquares
            self.min = min
            self.max = max
        }
    }

    /// Buckets `summaries` and `points` (each in time order; disjoint readings) into periods of
    /// `period` starting at `origin` (a summary counts in the period of its start); a zero period
    /// is one bucket over `[origin, end)`. Periods without points are left out. A period fed by summaries has no
    /// distinct count (NaN: the values behind a summary are gone).
    public static func aggregate(times: [Int64], values: [Double], summaries: [Summary] = [], origin: Int64, end: Int64,
                                 period: ISODuration, distinct: Bool) -> [PeriodAggregate] {
        var out: [PeriodAggregate] = []
        guard !times.isEmpty || !summaries.isEmpty else { return out }
        let period = period.isZero ? ISODuration(months: 0, milliseconds: Swift.max(1, end - origin)) : period
        var start = origin
        var next = period.advance(start)
        // Running totals of the current period, kept in locals (no copies of the struct per point).
        var count = 0, sum = 0.0, squares = 0.0, low = Double.infinity, high = -Double.infinity
        var seen = Set<UInt64>()
        var summarized = false
        var periodStart = start, periodEnd = next
        func close() {
            guard count > 0 else { return }
            var a = PeriodAggregate(start: periodStart, end: periodEnd)
            a.count = count; a.sum = sum; a.sumOfSquares = squares; a.min = low; a.max = high
            a.summarized = summarized
            if distinct { a.distinct = seen; seen.removeAll(keepingCapacity: true) }
            out.append(a)
            count = 0; sum = 0; squares = 0; low = .infinity; high = -.infinity; summarized = false
        }
        func move(to t: Int64) {
            guard t >= next else { return }  // (t ≥ origin: callers start at the first time)
            close()
            if period.months == 0 {
                // Exact periods: jump straight to the one holding t (empty ones are left out).
                let skip = (t - start) / period.milliseconds
                start += skip * period.milliseconds
                next = start + period.milliseconds
            } else {
                while t >= next {
                    start = next
                    next = period.advance(start)
                }
            }
            periodStart = start
            periodEnd = next
        }
        // Summaries and points merged by time (they come from disjoint readings).
        let sums = summaries.filter { $0.count > 0 && $0.time >= origin }
        var si = 0, pi = 0
        while si < sums.count || pi < times.count {
            if si < sums.count && (pi >= times.count || sums[si].time <= times[pi]) {
                let s = sums[si]
                si += 1
                move(to: s.time)
                count += s.count
                sum += s.sum
                squares += s.sumOfSquares
                if s.min < low { low = s.min }
                if s.max > high { high = s.max }
                summarized = true
            } else {
                let t = times[pi], v = values[pi]
                pi += 1
                move(to: t)
                count += 1
                sum += v
                squares += v * v
                if v < low { low = v }
                if v > high { high = v }
                if distinct { seen.insert((v == 0 ? 0 : v).bitPattern) }
            }
        }
        close()
        return out
    }
}
