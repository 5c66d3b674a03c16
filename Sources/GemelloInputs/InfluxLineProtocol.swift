import GemelloCore

/// InfluxDB line protocol (v2 reference, "Line protocol"): the text Telegraf's outputs, every
/// Influx client library and many scripts write.
///
///     measurement[,tag=value...] field=value[,field=value...] [timestamp]
///
/// Escapes: `\,` and `\ ` in measurements; `\,` `\=` `\ ` in tag keys, tag values and field keys;
/// `\"` and `\\` inside string field values. Field values: floats (`1.5`, `-2e3`), integers
/// (`42i`), unsigned (`42u`), booleans (`t`, `true`, `F`, `FALSE`, ...), strings (`"text"`).
/// Lines starting with `#` and blank lines are skipped.
public enum InfluxLineProtocol {
    public enum FieldValue: Sendable, Equatable {
        case number(Double)
        case bool(Bool)
        case string(String)
    }

    public struct Point: Sendable, Equatable {
        public var measurement: String
        public var tags: [(String, String)]
        public var fields: [(String, FieldValue)]
        /// In the writer's precision (nanoseconds unless told otherwise); nil: not given.
        public var timestamp: Int64?

        public static func == (a: Point, b: Point) -> Bool {
            a.measurement == b.measurement && a.timestamp == b.timestamp
                && a.tags.map(\.0) == b.tags.map(\.0) && a.tags.map(\.1) == b.tags.map(\.1)
                && a.fields.map(\.0) == b.fields.map(\.0) && a.fields.map(\.1) == b.fields.map(\.1)
        }
    }

    /// Timestamp precision (`precision=` on an HTTP write; Influx's names).
    public enum Precision: String, Sendable, CaseIterable {
        case ns, us, ms, s
        /// `u` is Influx 1.x's spelling of microseconds; `n` and `h`/`m` are refused as unusual.
        public init?(influx text: String) {
            if text == "u" { self = .us; return }
            self.init(rawValue: text)
        }

        /// Unix milliseconds of a timestamp in this precision (floored).
        public func milliseconds(_ t: Int64) -> Int64 {
            switch self {
            case .ns: return t >= 0 ? t / 1_000_000 : (t - 999_999) / 1_000_000
            case .us: return t >= 0 ? t / 1_000 : (t - 999) / 1_000
            case .ms: return t
            case .s: return t.multipliedReportingOverflow(by: 1000).overflow ? (t > 0 ? .max : .min) : t * 1000
            }
        }
    }

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    /// Every point of a text; the first malformed line stops the parse (a write is all or nothing,
    /// as InfluxDB answers 400 for it).
    public static func parse(_ text: some Collection<UInt8>) throws(ParseError) -> [Point] {
        var points: [Point] = []
        var number = 0
        var line: [UInt8] = []
        func flush() throws(ParseError) {
            number += 1
            defer { line.removeAll(keepingCapacity: true) }
            var start = 0
            while start < line.count, line[start] == 0x20 || line[start] == 0x09 { start += 1 }
            var end = line.count
            while end > start, line[end - 1] == 0x20 || line[end - 1] == 0x0D || line[end - 1] == 0x09 { end -= 1 }
            guard start < end, line[start] != UInt8(ascii: "#") else { return }
            do { points.append(try parseLine(line[start..<end])) } catch { throw ParseError(line: number, reason: error.reason) }
        }
        for byte in text {
            if byte == 0x0A { try flush() } else { line.append(byte) }
        }
        if !line.isEmpty { try flush() }
        return points
    }

    struct LineError: Error { var reason: String }

    static func parseLine(_ b: ArraySlice<UInt8>) throws(LineError) -> Point {
        var i = b.startIndex
        func token(stops: Set<UInt8>) -> String {
            var out: [UInt8] = []
            while i < b.endIndex, !stops.contains(b[i]) {
                if b[i] == 0x5C, i + 1 < b.endIndex, [0x2C, 0x3D, 0x20, 0x5C, 0x22].contains(b[i + 1]) {
                    out.append(b[i + 1]); i += 2
                } else {
                    out.append(b[i]); i += 1
                }
            }
            return String(decoding: out, as: UTF8.self)
        }
        let comma = UInt8(ascii: ","), space = UInt8(ascii: " "), equals = UInt8(ascii: "=")
        let measurement = token(stops: [comma, space])
        guard !measurement.isEmpty else { throw LineError(reason: "no measurement name") }
        var tags: [(String, String)] = []
        while i < b.endIndex, b[i] == comma {
            i += 1
            let key = token(stops: [equals, comma, space])
            guard i < b.endIndex, b[i] == equals, !key.isEmpty else { throw LineError(reason: "tag without '=value' in \(measurement)") }
            i += 1
            let value = token(stops: [comma, space])
            guard !value.isEmpty else { throw LineError(reason: "tag '\(key)' has an empty value") }
            tags.append((key, value))
        }
        guard i < b.endIndex, b[i] == space else { throw LineError(reason: "no fields after '\(measurement)'") }
        while i < b.endIndex, b[i] == space { i += 1 }
        var fields: [(String, FieldValue)] = []
        repeat {
            if !fields.isEmpty { i += 1 }  // the comma
            let key = token(stops: [equals, comma, space])
            guard i < b.endIndex, b[i] == equals, !key.isEmpty else { throw LineError(reason: "field without '=value' in \(measurement)") }
            i += 1
            fields.append((key, try fieldValue(b, &i, key: key)))
        } while i < b.endIndex && b[i] == comma
        var timestamp: Int64?
        if i < b.endIndex {
            guard b[i] == space else { throw LineError(reason: "unexpected text after the fields of \(measurement)") }
            while i < b.endIndex, b[i] == space { i += 1 }
            let text = String(decoding: b[i...], as: UTF8.self)
            guard let value = Int64(text) else { throw LineError(reason: "timestamp '\(text)' is not an integer") }
            timestamp = value
        }
        return Point(measurement: measurement, tags: tags, fields: fields, timestamp: timestamp)
    }

    static func fieldValue(_ b: ArraySlice<UInt8>, _ i: inout Int, key: String) throws(LineError) -> FieldValue {
        if i < b.endIndex, b[i] == 0x22 {  // a string
            i += 1
            var out: [UInt8] = []
            while i < b.endIndex, b[i] != 0x22 {
                if b[i] == 0x5C, i + 1 < b.endIndex, b[i + 1] == 0x22 || b[i + 1] == 0x5C { out.append(b[i + 1]); i += 2 } else { out.append(b[i]); i += 1 }
            }
            guard i < b.endIndex else { throw LineError(reason: "unterminated string in field '\(key)'") }
            i += 1
            return .string(String(decoding: out, as: UTF8.self))
        }
        let start = i
        while i < b.endIndex, b[i] != 0x2C, b[i] != 0x20 { i += 1 }
        let text = String(decoding: b[start..<i], as: UTF8.self)
        switch text {
        case "t", "T", "true", "True", "TRUE": return .bool(true)
        case "f", "F", "false", "False", "FALSE": return .bool(false)
        default: break
        }
        if text.hasSuffix("i"), let value = Int64(text.dropLast()) { return .number(Double(value)) }
        if text.hasSuffix("u"), let value = UInt64(text.dropLast()) { return .number(Double(value)) }
        if let value = Double(text), value.isFinite, text.first != "+", !text.lowercased().contains("n") { return .number(value) }
        throw LineError(reason: "field '\(key)' has no valid value ('\(text)')")
    }
}
