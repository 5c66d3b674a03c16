import GemelloCore

/// The encodings a user would otherwise reach for, built from the same batches as Gemello's so the
/// comparison in `gemello-bench wire` is like for like. Each is then compressed with zlib level 6.
enum WireBaselines {
    /// A JSON array of `{"series": …, "unit": …, "time": <Unix ms>, "value": <shortest round-trip>}`.
    static func json(_ batch: Batch) -> [UInt8] {
        var text = "["
        for i in 0..<batch.count {
            let info = batch.series[Int(batch.seriesIndex[i])]
            if i > 0 { text += "," }
            text += "{\"series\":\"\(info.name)\",\"unit\":\"\(info.unit)\",\"time\":\(batch.timestamps[i]),\"value\":\(batch.values[i])}"
        }
        text += "]"
        return Array(text.utf8)
    }

    /// Influx line protocol, one reading per line: `<sensor>,agent=<id> <attribute>=<value> <ns>`.
    static func lineProtocolPerReading(_ batch: Batch) -> [UInt8] {
        var text = ""
        for i in 0..<batch.count {
            let info = batch.series[Int(batch.seriesIndex[i])]
            text += "\(info.sensor),agent=\(batch.agentID) \(info.attribute)=\(batch.values[i]) \(batch.timestamps[i] * 1_000_000)\n"
        }
        return Array(text.utf8)
    }

    /// Influx line protocol as Telegraf writes it: one line per sensor and instant, its attributes
    /// as fields (a repeated field starts a new line), an `agent` tag, nanosecond timestamps.
    static func lineProtocol(_ batch: Batch) -> [UInt8] {
        var text = ""
        var i = 0
        while i < batch.count {
            let time = batch.timestamps[i]
            let sensor = batch.series[Int(batch.seriesIndex[i])].sensor
            var fields: [String] = []
            var seen: Set<Substring> = []
            while i < batch.count, batch.timestamps[i] == time {
                let info = batch.series[Int(batch.seriesIndex[i])]
                guard info.sensor == sensor, !seen.contains(info.attribute) else { break }
                seen.insert(info.attribute)
                fields.append("\(info.attribute)=\(batch.values[i])")
                i += 1
            }
            text += "\(sensor),agent=\(batch.agentID) \(fields.joined(separator: ",")) \(time * 1_000_000)\n"
        }
        return Array(text.utf8)
    }

    /// Sparkplug B (Eclipse Tahu `sparkplug_b.proto`): a `Payload` {timestamp = 1, metrics = 2,
    /// seq = 3} of `Metric` {name = 1, timestamp = 3, datatype = 4 (Double = 10), double_value = 13}.
    static func sparkplug(_ batch: Batch) -> [UInt8] {
        var payload = ProtobufWriter()
        payload.varintField(1, UInt64(bitPattern: batch.createdAt))
        for i in 0..<batch.count {
            var metric = ProtobufWriter()
            metric.bytesField(1, Array(batch.series[Int(batch.seriesIndex[i])].name.utf8))
            metric.varintField(3, UInt64(bitPattern: batch.timestamps[i]))
            metric.varintField(4, 10)
            metric.fixed64Field(13, batch.values[i].bitPattern)
            payload.bytesField(2, metric.bytes)
        }
        payload.varintField(3, batch.sequence % 256)
        return payload.bytes
    }
}

/// Just enough protobuf encoding for the Sparkplug baseline.
struct ProtobufWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func varintField(_ number: UInt64, _ value: UInt64) {
        varint(number << 3)
        varint(value)
    }

    mutating func bytesField(_ number: UInt64, _ value: [UInt8]) {
        varint(number << 3 | 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func fixed64Field(_ number: UInt64, _ value: UInt64) {
        varint(number << 3 | 1)
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
}
