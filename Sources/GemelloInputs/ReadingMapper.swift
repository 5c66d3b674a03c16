import GemelloCore

/// The text formats inputs read (an `exec` command's output, an HTTP or MQTT payload).
public enum ReadingFormat: String, Sendable, CaseIterable {
    /// `name value [unit]` per line (`#` comments): the simplest thing a script can print.
    case lines
    /// A JSON object (or an array of them): every number or boolean inside becomes a reading,
    /// nested keys joined with `_` (`{"battery": {"voltage": 12.6}}` → `battery_voltage`).
    case json
    /// InfluxDB line protocol (``InfluxLineProtocol``): `<measurement>_<field>` (just
    /// `<measurement>` for a field named `value`), optionally with chosen tags' values appended.
    case influx
}

/// Turns parsed values into readings of one sensor: attribute names made valid for NGSI-LD,
/// units from the configuration, series made once.
public struct ReadingMapper: Sendable {
    public var sensorID: String
    /// Attribute → UN/CEFACT unit; attributes not listed get `defaultUnit`.
    public var units: [String: String]
    public var defaultUnit: String
    /// Influx tags whose values are appended to the attribute name (`cpu,core=1 usage=3` with
    /// `name-tags: [core]` → `cpu_usage_1`).
    public var nameTags: [String]
    private var series: [String: SeriesInfo] = [:]

    public init(sensorID: String, units: [String: String] = [:], defaultUnit: String = "C62", nameTags: [String] = []) {
        self.sensorID = sensorID
        self.units = units
        self.defaultUnit = defaultUnit
        self.nameTags = nameTags
    }

    /// What a text held: readings, and values that could not be readings (strings, a name that
    /// cannot be made valid), counted.
    public struct Outcome: Sendable {
        public var readings: [Reading] = []
        public var skipped = 0
    }

    /// An NGSI-LD attribute name from anything: letters, digits and `_` kept, anything else `_`;
    /// a leading digit or `_` gets an `m` in front; at most 64 characters. Nil when nothing is left.
    public static func attributeName(_ raw: String) -> String? {
        var scalars = raw.unicodeScalars.map { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) ? Character($0) : "_" }
        while scalars.last == "_" { scalars.removeLast() }
        guard !scalars.isEmpty, scalars.contains(where: { $0 != "_" }) else { return nil }
        if !(scalars[0].isLetter) { scalars.insert("m", at: 0) }
        return String(scalars.prefix(64))
    }

    mutating func reading(_ rawName: String, _ value: Double, at time: Int64, unit: String? = nil) -> Reading? {
        guard value.isFinite, let name = Self.attributeName(rawName) else { return nil }
        let info: SeriesInfo
        if let known = series[name] {
            info = known
        } else {
            info = SeriesInfo(name: "\(sensorID)/\(name)", unit: units[name] ?? unit ?? defaultUnit)
            series[name] = info
        }
        return Reading(series: info, timestamp: time, value: value)
    }

    /// Readings from `text` in `format`; timestamps from the text where it has them (Influx, in
    /// `precision`), else `now`.
    public mutating func map(_ text: [UInt8], format: ReadingFormat, now: Int64,
                             precision: InfluxLineProtocol.Precision = .ns) throws(InputError) -> Outcome {
        var outcome = Outcome()
        switch format {
        case .lines:
            for (number, line) in text.split(separator: 0x0A).enumerated() {
                let fields = String(decoding: line, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
                guard let first = fields.first, !first.hasPrefix("#") else { continue }
                guard fields.count == 2 || fields.count == 3, let value = Double(fields[1]) else {
                    throw InputError("line \(number + 1): expected 'name value [unit]', got '\(fields.joined(separator: " ").prefix(80))'")
                }
                var unit: String?
                if fields.count == 3 {
                    guard UnitCode.isKnown(String(fields[2])) else {
                        throw InputError("line \(number + 1): '\(fields[2])' is not a known UN/CEFACT unit code (e.g. CEL, P1, VLT, C62)")
                    }
                    unit = String(fields[2])
                }
                if let reading = reading(String(first), value, at: now, unit: unit) { outcome.readings.append(reading) } else { outcome.skipped += 1 }
            }
        case .json:
            let json: JSON
            do { json = try JSON.parse(text, maxDepth: 16) } catch { throw InputError("\(error)") }
            func walk(_ value: JSON, _ path: String) {
                switch value {
                case .number(let n):
                    if let r = reading(path, n, at: now) { outcome.readings.append(r) } else { outcome.skipped += 1 }
                case .bool(let b):
                    if let r = reading(path, b ? 1 : 0, at: now) { outcome.readings.append(r) } else { outcome.skipped += 1 }
                case .object(let members):
                    for (key, member) in members.sorted(by: { $0.key < $1.key }) { walk(member, path.isEmpty ? key : path + "_" + key) }
                case .array(let items) where path.isEmpty:
                    for item in items { walk(item, path) }
                default:
                    outcome.skipped += 1
                }
            }
            walk(json, "")
        case .influx:
            let points: [InfluxLineProtocol.Point]
            do { points = try InfluxLineProtocol.parse(text) } catch { throw InputError("line protocol \(error)") }
            for point in points {
                let time = point.timestamp.map { precision.milliseconds($0) } ?? now
                var suffix = ""
                for tag in nameTags { if let value = point.tags.first(where: { $0.0 == tag })?.1 { suffix += "_" + value } }
                for (field, value) in point.fields {
                    let name = (field == "value" ? point.measurement : point.measurement + "_" + field) + suffix
                    switch value {
                    case .number(let n):
                        if let r = reading(name, n, at: time) { outcome.readings.append(r) } else { outcome.skipped += 1 }
                    case .bool(let b):
                        if let r = reading(name, b ? 1 : 0, at: time) { outcome.readings.append(r) } else { outcome.skipped += 1 }
                    case .string:
                        outcome.skipped += 1
                    }
                }
            }
        }
        return outcome
    }
}

extension ConfigSection {
    /// `units:` — attribute → UN/CEFACT code, every code checked.
    func unitMap(_ key: String = "units") throws(CoreError) -> [String: String] {
        var units: [String: String] = [:]
        guard let section = try section(key) else { return [:] }
        for attribute in section.keys {
            guard NGSIName.isValid(attribute) else {
                throw section.error(attribute, "not a valid attribute name", fix: "use letters, digits and '_', starting with a letter")
            }
            units[attribute] = try section.unitCode(attribute)
        }
        return units
    }

    /// `precision:` — of Influx timestamps (`ns` unless told).
    func precision(_ key: String = "precision") throws(CoreError) -> InfluxLineProtocol.Precision {
        let text = try string(key, default: "ns")
        guard let precision = InfluxLineProtocol.Precision(influx: text) else {
            throw error(key, "not a timestamp precision", value: text, fix: "use ns, us, ms or s")
        }
        return precision
    }
}
