@testable import GemelloCore
import GemelloZlib

/// The wire format v1 test vectors (Tests/Fixtures/wire-vectors/*.vector, shown in
/// docs/wire-format.md): what another implementation tests its decoder against.
///
/// Each valid vector is built here from a batch; `GEMELLO_WRITE_VECTORS=1 swift test --filter
/// WireVectorTests` rewrites the fixture files after a deliberate format change.
enum WireVectors {
    struct Valid {
        let name: String
        let description: String
        let batch: Batch
        let compressionLevel: Int32
        /// Wire v2: the session entries (one per series); nil for v1.
        var entries: [SeriesEntry]? = nil
    }

    struct Invalid {
        let name: String
        let description: String
        let bytes: [UInt8]
        let error: CoreError.Code
    }

    static func batch(agent: String = "tower-duomo", epoch: UInt64 = 1, sequence: UInt64 = 1, createdAt: Int64,
                      resolution: TimeResolution = .milliseconds, _ readings: [(SeriesInfo, Int64, Double)]) -> Batch {
        var batch = Batch(agentID: agent, bootEpoch: epoch, sequence: sequence, createdAt: createdAt, timeResolution: resolution)
        var lookup: [SeriesInfo: UInt32] = [:]
        for (series, time, value) in readings { batch.append(Reading(series: series, timestamp: time, value: value), lookup: &lookup) }
        return batch
    }

    static let temperature = SeriesInfo(name: "arpa-senato/temperature", unit: "CEL")
    static let wind = SeriesInfo(name: "arpa-senato/windSpeed", unit: "MTS")
    static let pm25 = SeriesInfo(name: "arpa-senato/pm25", unit: "GQ")
    static let rain = SeriesInfo(name: "arpa-senato/precipitation", unit: "MMT")
    static let hour: Int64 = 3_600_000
    static let newYear2017: Int64 = 1_483_225_200_000  // 2016-12-31T23:00:00Z

    static let valid: [Valid] = [
        Valid(name: "minimal", description: "One reading: 3.7 °C at 2016-12-31T23:00:00Z, no compression.",
              batch: batch(agent: "a", createdAt: newYear2017, [(temperature, newYear2017, 3.7)]), compressionLevel: 0),
        Valid(name: "rows-and-patterns",
              description: "Three series over four hourly rows; the third row lacks pm25, so it uses a second pattern.",
              batch: batch(sequence: 42, createdAt: newYear2017 + 4 * hour, [
                (pm25, newYear2017, 139), (temperature, newYear2017, 3.7), (wind, newYear2017, 0.6),
                (pm25, newYear2017 + hour, 139), (temperature, newYear2017 + hour, 3.8), (wind, newYear2017 + hour, 0.5),
                (temperature, newYear2017 + 2 * hour, 3.1), (wind, newYear2017 + 2 * hour, 0.7),
                (pm25, newYear2017 + 3 * hour, 139), (temperature, newYear2017 + 3 * hour, 2.9), (wind, newYear2017 + 3 * hour, 0.5),
              ]), compressionLevel: 0),
        Valid(name: "special-doubles",
              description: "Values no decimal scale reproduces: NaN with payloads, ±Inf, -0.0, subnormals, extremes (an IEEE-754 XOR column).",
              batch: batch(createdAt: 1_700_000_000_000, [
                -0.0, .nan, Double(bitPattern: 0x7FF8_0000_0000_BEEF), Double(bitPattern: 0x7FF0_0000_0000_0001), -.nan,
                .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude,
                .greatestFiniteMagnitude, 0.1 + 0.2, 1e300, 0.0,
              ].enumerated().map { (SeriesInfo(name: "lab/probe", unit: "C62"), 1_700_000_000_000 + Int64($0.offset), $0.element) }),
              compressionLevel: 0),
        Valid(name: "microseconds-out-of-order",
              description: "Microsecond timestamps, out of order, repeated and before 1970, kept exactly as sent.",
              batch: batch(createdAt: 1_700_000_000_000, resolution: .microseconds, [
                (temperature, 1_700_000_000_000_123, 20.5), (temperature, 1_699_999_999_999_877, 20.25),
                (wind, 1_699_999_999_999_877, 1.5), (temperature, 1_700_000_000_000_123, 20.5),
                (temperature, -86_400_000_001, -3.0), (wind, 1_700_000_000_000_123, 1.5),
              ]), compressionLevel: 0),
        Valid(name: "step-and-second-order",
              description: "A rain gauge tipping in 0.2 mm steps (step 2 at scale 1) and a steady ramp (deltas of deltas).",
              batch: batch(createdAt: newYear2017 + 12 * hour, (0..<12).flatMap { i -> [(SeriesInfo, Int64, Double)] in
                let rain: [Double] = [0, 0, 0.2, 0.6, 0.4, 0, 0, 0, 1.2, 0.2, 0, 0]
                return [(Self.rain, newYear2017 + Int64(i) * hour, rain[i]),
                        (SeriesInfo(name: "tower-power/voltage", unit: "VLT"), newYear2017 + Int64(i) * hour, 48.0 + Double(i * i) / 100)]
              }), compressionLevel: 0),
        Valid(name: "custom-names-zlib",
              description: "Names and units outside the v1 tables, a series without a sensor part; the body is zlib-compressed.",
              batch: batch(agent: "fiber-node-navigli-07", epoch: 12, sequence: 9_000, createdAt: 1_700_000_060_000,
                           (0..<8).flatMap { i -> [(SeriesInfo, Int64, Double)] in
                let t = 1_700_000_000_000 + Int64(i) * 5_000
                return [(SeriesInfo(name: "sewer-probe-a/hydrogenSulfideSensorResponse", unit: "mV"), t, 412 + Double(i % 3)),
                        (SeriesInfo(name: "sewer-probe-a/methaneSensorResponse", unit: "mV"), t, 388 - Double(i % 2)),
                        (SeriesInfo(name: "sewer-probe-b/hydrogenSulfideSensorResponse", unit: "mV"), t, 401),
                        (SeriesInfo(name: "uptime", unit: "SEC"), t, Double(86_400 + i * 5))]
              }), compressionLevel: 6),
        Valid(name: "empty", description: "A batch with no readings (no coded section).",
              batch: batch(agent: "a", epoch: 2, sequence: 3, createdAt: 0, []), compressionLevel: 0),
        Valid(name: "v2-definitions",
              description: "Version 2: no agent id (the topic's, tower-duomo, is used); session series 1 and 2 defined in the batch, a third (5) with a unit outside the table.",
              batch: v2Batch, compressionLevel: 0,
              entries: [SeriesEntry(index: 1, defines: true), SeriesEntry(index: 2, defines: true), SeriesEntry(index: 5, defines: true)]),
    ]

    /// Two rows of three series, as a tower sends every ten seconds.
    static let v2Batch = batch(epoch: 1_764_460_800, sequence: 17, createdAt: 1_764_460_815_000, [
        (temperature, 1_764_460_800_000, 7.4), (SeriesInfo(name: "air/pm25", unit: "GQ"), 1_764_460_800_000, 21),
        (SeriesInfo(name: "box/loadAverage1", unit: "load"), 1_764_460_800_000, 0.42),
        (temperature, 1_764_460_810_000, 7.5), (SeriesInfo(name: "air/pm25", unit: "GQ"), 1_764_460_810_000, 22),
        (SeriesInfo(name: "box/loadAverage1", unit: "load"), 1_764_460_810_000, 0.4),
    ])

    static var invalid: [Invalid] {
        let minimal = frame(valid[0])
        let body = body(valid[0].batch)
        func mutated(_ change: (inout [UInt8]) -> Void) -> [UInt8] {
            var bytes = minimal
            change(&bytes)
            return bytes
        }
        var lyingLayout = try! BodyLayout(valid[0].batch)  // "minimal" claiming 2 readings in its 1 row
        lyingLayout.readingCount = 2
        var lyingCount = ByteWriter()
        lyingLayout.write(to: &lyingCount)
        lyingCount.write(lyingLayout.encodeColumns(valid[0].batch))
        var overflow = ByteWriter()
        overflow.writeString("a")
        overflow.write([UInt8](repeating: 0xFF, count: 10) + [0x01])  // an 11-byte boot epoch
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        let compressedZeros = (try? Zlib.compress(zeros, level: 9)) ?? []
        return [
            Invalid(name: "bad-magic", description: "Starts with 'XM' instead of 'GM'.",
                    bytes: mutated { $0[0] = 0x58 }, error: .badMagic),
            Invalid(name: "version-3", description: "A version 3 frame: a v1/v2 decoder refuses it and leaves it unacknowledged.",
                    bytes: mutated { $0[2] = 3 }, error: .unsupportedVersion),
            Invalid(name: "v2-unknown-reference",
                    description: "Version 2 referring to session series 1 and 2 without defining them: a decoder that does not hold them answers with a resync.",
                    bytes: (try? WireFormat.encode(v2Batch, compressionLevel: 0, entries: [
                        SeriesEntry(index: 1, defines: false), SeriesEntry(index: 2, defines: false), SeriesEntry(index: 5, defines: true)])) ?? [],
                    error: .unknownSeries),
            Invalid(name: "reserved-flag", description: "Flag bit 2 is reserved in v1 (bit 1 marks a signed frame).",
                    bytes: WireFormat.frame(body: body, bodyLength: body.count, flags: 0x04), error: .malformed),
            Invalid(name: "bad-checksum", description: "One body bit flipped; the CRC-32 no longer matches.",
                    bytes: mutated { $0[$0.count - 1] ^= 0x01 }, error: .checksumMismatch),
            Invalid(name: "truncated", description: "The minimal frame without its last 3 bytes (CRC fixed up).",
                    bytes: WireFormat.frame(body: Array(body.dropLast(3)), bodyLength: body.count - 3, flags: 0), error: .truncated),
            Invalid(name: "count-lies", description: "The header declares 2 readings; its only row holds 1.",
                    bytes: WireFormat.frame(body: lyingCount.bytes, bodyLength: lyingCount.bytes.count, flags: 0),
                    error: .malformed),
            Invalid(name: "varint-overflow", description: "An 11-byte varint where a boot epoch belongs.",
                    bytes: WireFormat.frame(body: overflow.bytes, bodyLength: overflow.bytes.count, flags: 0), error: .malformed),
            Invalid(name: "inflates-past-declared-length",
                    description: "A 1 KB zlib body that inflates to 1 MiB while the frame declares 100 bytes: inflation stops at byte 101.",
                    bytes: WireFormat.frame(body: compressedZeros, bodyLength: 100, flags: 1), error: .decompressionFailed),
            Invalid(name: "declared-length-past-limit",
                    description: "The frame declares a 1 GiB body, past the 32 MiB limit: refused before inflating.",
                    bytes: WireFormat.frame(body: compressedZeros, bodyLength: 1 << 30, flags: 1), error: .limitExceeded),
        ]
    }

    static func frame(_ vector: Valid) -> [UInt8] {
        (try? WireFormat.encode(vector.batch, compressionLevel: vector.compressionLevel, entries: vector.entries)) ?? []
    }

    static func body(_ batch: Batch) -> [UInt8] { (try? WireFormat.encodeBody(batch)) ?? [] }
}
