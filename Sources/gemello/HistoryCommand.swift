import ArgumentParser
import Foundation
import GemelloCore

/// `gemello twin history`: one attribute's evolution from the temporal API, raw or per period.
struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "One attribute's history: every reading, or min/avg/max per period with --every.",
        discussion: """
            Times are ISO 8601 (2024-03-01T12:00:00Z) or dates (2024-03-01, midnight UTC).
            Examples:
              gemello twin history replay-milano-arpa:arpa-senato pm25 --from 2021-01-01 --to 2021-02-01
              gemello twin history replay-milano-arpa:arpa-senato temperature --every 1d --from 2020-01-01
            """)

    @OptionGroup var options: AggregatorOptions
    @OptionGroup var target: EntityAttribute
    var entity: String { target.entity }
    var attribute: String { target.attribute }
    @Option(help: "From this time (inclusive).")
    var from: String?
    @Option(help: "Up to this time (exclusive).")
    var to: String?
    @Option(help: "Aggregate per period: 15m, 1h, 1d, 1w, 1mo, 1y, or an ISO 8601 duration (P1D).")
    var every: String?
    @Option(help: "Only the newest N readings (within --from/--to).")
    var last: Int?

    func run() async throws {
        // The command line first (64 before any request), then the aggregator.
        var query = try TimeWindow(from: from, to: to).parameters + ["attrs=\(APIClient.escape(attribute))"]
        let period = try every.map(Self.isoDuration)
        if let last { query.append("lastN=\(last)") }
        let id = try await NGSIEntityView.resolve(entity, options.client)
        if let period {
            query += ["format=aggregatedValues", "aggrMethods=totalCount,min,avg,max", "aggrPeriodDuration=\(period)"]
            try await printAggregates(id: id, query: query)
        } else {
            query.append("format=temporalValues")
            try await printValues(id: id, query: query)
        }
    }

    /// Every page (a long history comes in pages of the aggregator's max-instances).
    func printValues(id: String, query: [String]) async throws {
        var rows: [(time: String, value: Double)] = []
        var parameters = query
        var pages = 0
        while true {
            let (data, headers) = try await options.client.getResponse("/ngsi-ld/v1/temporal/entities/\(APIClient.escape(id))?" + parameters.joined(separator: "&"))
            if options.json { print(String(decoding: data, as: UTF8.self)) }
            pages += 1
            let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            let values = ((object?[attribute] as? [String: Any])?["values"] as? [[Any]]) ?? []
            rows += values.compactMap { pair in
                guard pair.count == 2, let value = (pair[0] as? NSNumber)?.doubleValue, let time = pair[1] as? String else { return nil }
                return (time, value)
            }
            // 206: the history goes on after the range this page covered.
            guard let range = headers["content-range"], let end = Self.rangeEnd(range) else { break }
            if pages % 10 == 0 && !options.json { Console.error("… \(rows.count) readings so far") }
            // The next page starts just after the last instant of this one (a page never splits an instant).
            let next = TimeWindow.iso(try TimeWindow.parse(end).addingTimeInterval(0.001))
            parameters = parameters.filter { !$0.hasPrefix("timerel=") && !$0.hasPrefix("timeAt=") && !$0.hasPrefix("endTimeAt=") }
            parameters += try TimeWindow(from: next, to: to).parameters
        }
        if options.json { return }
        guard !rows.isEmpty else { print("no readings of \(attribute) in that window"); return }
        var table = Table(["OBSERVED AT", attribute.uppercased()])
        for row in rows { table.add([row.time, Self.format(row.value)]) }
        print(table.render(), terminator: "")
        let values = rows.map(\.value)
        print("\(rows.count) readings, min \(Self.format(values.min()!)), max \(Self.format(values.max()!))  \(Sparkline.render(values))")
    }

    func printAggregates(id: String, query: [String]) async throws {
        let data = try await options.client.getData("/ngsi-ld/v1/temporal/entities/\(APIClient.escape(id))?" + query.joined(separator: "&"))
        if options.json { print(String(decoding: data, as: UTF8.self)); return }
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let attribute = object?[self.attribute] as? [String: Any] ?? [:]
        func column(_ method: String) -> [[Any]] { attribute[method] as? [[Any]] ?? [] }
        let counts = column("totalCount"), mins = column("min"), avgs = column("avg"), maxes = column("max")
        guard !counts.isEmpty else { print("no readings of \(self.attribute) in that window"); return }
        var table = Table(["FROM", "TO", "COUNT", "MIN", "AVG", "MAX"])
        func number(_ row: [Any]) -> String { (row.first as? NSNumber).map { Self.format($0.doubleValue) } ?? "-" }
        for i in counts.indices {
            table.add([counts[i][1] as? String ?? "", counts[i][2] as? String ?? "", number(counts[i]),
                       i < mins.count ? number(mins[i]) : "-", i < avgs.count ? number(avgs[i]) : "-", i < maxes.count ? number(maxes[i]) : "-"])
        }
        print(table.render(), terminator: "")
        let averages = avgs.compactMap { ($0.first as? NSNumber)?.doubleValue }
        print("\(counts.count) periods  \(Sparkline.render(averages))")
    }

    /// The end of `date-time <start>-<end>/*`.
    static func rangeEnd(_ header: String) -> String? {
        guard header.hasPrefix("date-time "), let slash = header.lastIndex(of: "/") else { return nil }
        let span = header[header.index(header.startIndex, offsetBy: 10)..<slash]
        return span.count >= 49 ? String(span.suffix(24)) : nil  // two 24-character times and a dash
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%.4g", value)
    }

    /// `15m`, `1h`, `1d`, `1w`, `1mo`, `1y` or an ISO 8601 duration, as ISO 8601.
    static func isoDuration(_ text: String) throws -> String {
        if text.hasPrefix("P") { return text }
        let digits = text.prefix { $0.isNumber }
        guard let n = Int(digits), n > 0 else { throw ValidationError("--every \(text): write 15m, 1h, 1d, 1w, 1mo, 1y or an ISO 8601 duration such as P1D") }
        switch text.dropFirst(digits.count) {
        case "s": return "PT\(n)S"
        case "m", "min": return "PT\(n)M"
        case "h": return "PT\(n)H"
        case "d": return "P\(n)D"
        case "w": return "P\(n)W"
        case "mo": return "P\(n)M"
        case "y": return "P\(n)Y"
        default: throw ValidationError("--every \(text): write 15m, 1h, 1d, 1w, 1mo, 1y or an ISO 8601 duration such as P1D")
        }
    }
}

/// The entity and attribute a history command is about.
struct EntityAttribute: ParsableArguments {
    @Argument(help: "The entity id, or its unique end such as 'replay-milano-arpa:arpa-senato'.")
    var entity: String
    @Argument(help: "The attribute (Smart Data Models term, e.g. temperature, pm25).")
    var attribute: String
}

/// `gemello twin lineage`: where a value in the twin came from.
struct LineageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lineage",
        abstract: "Which agent, site, boot epoch and batch delivered an attribute's value at a time, and when it was committed.",
        discussion: "Without a reading at exactly that time, the newest one before it (the value the twin showed then).")

    @OptionGroup var options: AggregatorOptions
    @OptionGroup var target: EntityAttribute
    var entity: String { target.entity }
    var attribute: String { target.attribute }
    @Argument(help: "The time (ISO 8601, or a date for midnight UTC).")
    var time: String

    func run() async throws {
        let id = try await NGSIEntityView.resolve(entity, options.client)
        let at = try TimeWindow.parse(time)
        // The newest readings at or before `time`: those at exactly `time` if there are any.
        let after = Date(timeIntervalSince1970: at.timeIntervalSince1970 + 0.001)
        let path = "/ngsi-ld/v1/temporal/entities/\(APIClient.escape(id))?attrs=\(APIClient.escape(attribute))&timerel=before"
            + "&timeAt=\(TimeWindow.iso(after))&lastN=20&options=lineage"
        let data = try await options.client.getData(path)
        if options.json { print(String(decoding: data, as: UTF8.self)); return }
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let instances = (object?[attribute] as? [[String: Any]]) ?? []
        guard let newest = instances.last?["observedAt"] as? String else {
            print("\(attribute) of \(id) has no reading at or before \(TimeWindow.iso(at))")
            return
        }
        let shown = instances.filter { $0["observedAt"] as? String == newest }
        if newest != TimeWindow.iso(at) { print("no reading at \(TimeWindow.iso(at)); the newest before it:") }
        for instance in shown {
            let lineage = (instance["lineage"] as? [String: Any])?["value"] as? [String: Any] ?? [:]
            func text(_ key: String) -> String { lineage[key].map { "\($0)" } ?? "-" }
            print("""
                \(id) \(attribute) = \(instance["value"].map { "\($0)" } ?? "?") \(instance["unitCode"] as? String ?? "") observed \(newest)
                  agent        \(text("agent"))
                  site         \(text("site"))
                  boot epoch   \(text("bootEpoch"))
                  batch        \(text("batch"))
                  committed    \(text("committedAt"))
                  instanceId   \(instance["instanceId"] as? String ?? "-")
                """)
        }
    }
}

/// `--from` / `--to` as temporal query parameters.
struct TimeWindow {
    var parameters: [String] = []

    init(from: String?, to: String?) throws {
        let start = try from.map(Self.parse), end = try to.map(Self.parse)
        switch (start, end) {
        case let (s?, e?):
            guard s < e else { throw ValidationError("--from must be before --to") }
            parameters = ["timerel=between", "timeAt=\(Self.iso(s))", "endTimeAt=\(Self.iso(e))"]
        case let (s?, nil):
            // after is exclusive: start one millisecond earlier so --from itself is included.
            parameters = ["timerel=after", "timeAt=\(Self.iso(s.addingTimeInterval(-0.001)))"]
        case let (nil, e?): parameters = ["timerel=before", "timeAt=\(Self.iso(e))"]
        case (nil, nil): break
        }
    }

    static func parse(_ text: String) throws -> Date {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withFullDate]
        if let date = formatter.date(from: text) { return date }
        throw ValidationError("'\(text)' is not a time: write 2024-03-01T12:00:00Z or 2024-03-01")
    }

    static func iso(_ date: Date) -> String {
        Timestamp.iso8601(milliseconds: Int64((date.timeIntervalSince1970 * 1000).rounded()))
    }
}

/// ▁▂▃▄▅▆▇█ over at most 60 columns (each the mean of its slice of the values).
enum Sparkline {
    static let blocks: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    static func render(_ values: [Double], width: Int = 60) -> String {
        let finite = values.filter(\.isFinite)
        guard !finite.isEmpty else { return "" }
        let columns = min(width, finite.count)
        let means = (0..<columns).map { c -> Double in
            let slice = finite[(c * finite.count / columns)..<max(c * finite.count / columns + 1, (c + 1) * finite.count / columns)]
            return slice.reduce(0, +) / Double(slice.count)
        }
        let low = means.min()!, high = means.max()!
        return String(means.map { high > low ? blocks[min(7, Int((($0 - low) / (high - low)) * 8))] : blocks[3] })
    }
}
