import GemelloCore

/// What an MQTT message's payload holds.
public enum MQTTPayloadFormat: String, Sendable, CaseIterable {
    /// A plain number (`21.5`; `true`/`false` as 1/0): one reading, named by the subscription.
    case value
    /// A JSON object: chosen `fields` (paths) or every number in it; the time from `time-path`.
    case json
    /// SenML (RFC 8428) in JSON: base name, time, unit and value resolved per record.
    case senml
    /// InfluxDB line protocol.
    case influx
}

/// One `subscriptions:` entry of an `mqtt-subscribe` input.
public struct MQTTSubscription: Sendable, Equatable {
    public struct Field: Sendable, Equatable {
        /// Dot-separated keys and array indexes: `uplink_message.decoded_payload.temperature`.
        public var path: String
        public var attribute: String
        public var unit: String?
    }

    public var filter: String
    public var format: MQTTPayloadFormat
    /// For `value`: the attribute, `{n}` standing for topic level n (0-based): `{1}_temperature`.
    public var attribute: String?
    public var unit: String?
    public var fields: [Field]
    public var timePath: String?
    public var precision: InfluxLineProtocol.Precision
}

/// Payload → readings (pure; the golden tests feed it real devices' payloads).
struct MQTTPayloadDecoder: Sendable {
    var mapper: ReadingMapper

    /// Readings of one message; throws when the payload is not what the subscription says.
    mutating func readings(_ s: MQTTSubscription, topic: String, payload: [UInt8], arrival: Int64) throws(InputError) -> ReadingMapper.Outcome {
        switch s.format {
        case .value:
            let text = String(decoding: payload, as: UTF8.self).trimmingCharacters(in: " \n\r\t")
            let value: Double
            switch text {
            case "true": value = 1
            case "false": value = 0
            default:
                guard let number = Double(text), number.isFinite else { throw InputError("'\(text.prefix(40))' on \(topic) is not a number") }
                value = number
            }
            let name = Self.expand(s.attribute ?? "{last}", topic: topic)
            var outcome = ReadingMapper.Outcome()
            if let r = mapper.reading(name, value, at: arrival, unit: s.unit) { outcome.readings.append(r) } else { outcome.skipped += 1 }
            return outcome
        case .influx:
            return try mapper.map(payload, format: .influx, now: arrival, precision: s.precision)
        case .json:
            let json: JSON
            do { json = try JSON.parse(payload, maxDepth: 32) } catch { throw InputError("\(topic): \(error)") }
            var time = arrival
            if let timePath = s.timePath {
                guard let stamp = Self.lookup(json, timePath), let ms = Self.milliseconds(stamp) else {
                    throw InputError("\(topic): no usable time at '\(timePath)' (RFC 3339 text, or Unix seconds or milliseconds)")
                }
                time = ms
            }
            guard !s.fields.isEmpty else { return try mapper.map(payload, format: .json, now: time) }
            var outcome = ReadingMapper.Outcome()
            for field in s.fields {
                let value: Double
                switch Self.lookup(json, field.path) {
                case .number(let n)?: value = n
                case .bool(let b)?: value = b ? 1 : 0
                default: outcome.skipped += 1; continue
                }
                if let r = mapper.reading(Self.expand(field.attribute, topic: topic), value, at: time, unit: field.unit) {
                    outcome.readings.append(r)
                } else {
                    outcome.skipped += 1
                }
            }
            return outcome
        case .senml:
            return try senml(payload, topic: topic, arrival: arrival)
        }
    }

    /// RFC 8428 §4.6 resolution: base fields carry over to later records until changed; times
    /// below 2^28 are relative to now; a record without a value (`v`, `vb`, `s`) is skipped.
    private mutating func senml(_ payload: [UInt8], topic: String, arrival: Int64) throws(InputError) -> ReadingMapper.Outcome {
        let json: JSON
        do { json = try JSON.parse(payload, maxDepth: 8) } catch { throw InputError("\(topic): \(error)") }
        guard case .array(let records) = json else { throw InputError("\(topic): SenML is a JSON array of records") }
        var outcome = ReadingMapper.Outcome()
        var baseName = "", baseTime = 0.0, baseUnit: String?, baseValue = 0.0
        for record in records {
            guard case .object(let r) = record else { throw InputError("\(topic): a SenML record is not an object") }
            if case .string(let bn)? = r["bn"] { baseName = bn }
            if case .number(let bt)? = r["bt"] { baseTime = bt }
            if case .string(let bu)? = r["bu"] { baseUnit = bu }
            if case .number(let bv)? = r["bv"] { baseValue = bv }
            let value: Double
            if case .number(let v)? = r["v"] { value = baseValue + v } else if case .bool(let b)? = r["vb"] { value = b ? 1 : 0 } else if case .number(let sum)? = r["s"] { value = sum } else {
                if r["vs"] != nil || r["vd"] != nil || r["n"] != nil { outcome.skipped += 1 }
                continue
            }
            var name = baseName
            if case .string(let n)? = r["n"] { name += n }
            var seconds = baseTime
            if case .number(let t)? = r["t"] { seconds += t }
            let time = seconds < 268_435_456 ? arrival + Int64((seconds * 1000).rounded()) : Int64((seconds * 1000).rounded())
            var senmlUnit = baseUnit
            if case .string(let u)? = r["u"] { senmlUnit = u }
            let unit = senmlUnit.flatMap { Self.senmlUnits[$0] }
            if let reading = mapper.reading(name.isEmpty ? "value" : name, value, at: time, unit: unit) {
                outcome.readings.append(reading)
            } else {
                outcome.skipped += 1
            }
        }
        return outcome
    }

    /// SenML units (RFC 8428 §12.1, the IANA registry) → UN/CEFACT codes Gemello knows.
    static let senmlUnits: [String: String] = [
        "Cel": "CEL", "K": "KEL", "%RH": "P1", "%": "P1", "%EL": "P1", "/": "C62", "V": "VLT", "A": "AMP", "W": "WTT",
        "Wh": "WHR", "kWh": "KWH", "m": "MTR", "Pa": "PAL", "hPa": "A97", "lx": "LUX", "s": "SEC", "ms": "C26",
        "m/s": "MTS", "km/h": "KMH", "dB": "2N", "ug/m3": "GQ", "ppm": "59", "ppb": "61", "m3/h": "MQH", "B": "AD",
    ]

    /// `{n}` → topic level n, `{last}` → the last level, `{topic}` → every level joined by `_`.
    static func expand(_ template: String, topic: String) -> String {
        guard template.contains("{") else { return template }
        let levels = topic.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var out = template.replacingOccurrences("{last}", levels.last ?? "")
        out = out.replacingOccurrences("{topic}", levels.joined(separator: "_"))
        for (i, level) in levels.enumerated() { out = out.replacingOccurrences("{\(i)}", level) }
        return out
    }

    static func lookup(_ json: JSON, _ path: String) -> JSON? {
        var current = json
        for key in path.split(separator: ".") {
            switch current {
            case .object(let members): guard let next = members[String(key)] else { return nil }; current = next
            case .array(let items): guard let i = Int(key), items.indices.contains(i) else { return nil }; current = items[i]
            default: return nil
            }
        }
        return current
    }

    /// RFC 3339 text, or a Unix time: seconds below 10^11, milliseconds from there.
    static func milliseconds(_ value: JSON) -> Int64? {
        switch value {
        case .string(let text): return DateTime.milliseconds(text)
        case .number(let n) where n.isFinite && abs(n) < 1e15: return n < 1e11 ? Int64((n * 1000).rounded()) : Int64(n.rounded())
        default: return nil
        }
    }
}

extension String {
    /// Every occurrence of `target` replaced (Foundation-free).
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = "", rest = self[...]
        while let range = rest.firstRange(of: target) {
            out += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }
}
