import GemelloCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Replays a CSV file of real measurements as if a sensor were producing them, at a chosen speed.
///
/// Handles what real exports contain: `;` separators, decimal commas, missing markers (`-200`,
/// empty cells), rows made only of separators, repeated timestamps (kept, in file order) and
/// local times at a fixed UTC offset. Readings keep the file's timestamps.
public struct CSVReplayInput: Input {
    public let configuration: Configuration
    public var sensor: SensorInfo { configuration.sensor }
    /// The replay's position (a byte offset in the file) is kept in the buffer under this key,
    /// committed with the readings before it: a restarted agent continues where its buffer ends.
    public var checkpointKey: String? { "csv-replay \(configuration.sensor.id) \(configuration.file)" }

    public init(configuration: Configuration) { self.configuration = configuration }

    /// Rows are handed to the sink in chunks of this many readings (or at each pause).
    static let chunkReadings = 2_000

    public func run(into sink: some ReadingSink, resumingFrom checkpoint: Int64?) async throws -> InputSummary {
        let c = configuration
        let key = checkpointKey!
        guard let file = fopen(c.file, "rb") else {
            throw InputError("csv-replay '\(c.sensor.id)': cannot open \(c.file): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var reader = LineReader(file: file)
        guard let headerLine = reader.next() else {
            throw InputError("csv-replay '\(c.sensor.id)': \(c.file) is empty")
        }
        let header = CSVFields.split(headerLine, separator: c.separator).map { String(decoding: $0, as: UTF8.self).trimmed() }
        var resumedAt: Int64 = 0, restarted = 0
        if let checkpoint, checkpoint > reader.offset {
            fseek(file, 0, SEEK_END)
            let size = Int64(ftell(file))
            if checkpoint <= size {
                fseek(file, Int(checkpoint), SEEK_SET)
                reader.offset = checkpoint
                resumedAt = checkpoint
            } else {
                fseek(file, Int(reader.offset), SEEK_SET)  // the file shrank or was replaced: replay it all
                restarted = 1
            }
        }
        func columnIndex(_ name: String) throws -> Int {
            guard let index = header.firstIndex(of: name) else {
                throw InputError("csv-replay '\(c.sensor.id)': column '\(name)' is not in the header of \(c.file); "
                                 + "columns are: \(header.filter { !$0.isEmpty }.joined(separator: ", "))")
            }
            return index
        }
        let timeIndexes = try c.timestampColumns.map(columnIndex)
        let valueIndexes = try c.columns.map { try columnIndex($0.header) }
        let series = c.columns.map { SeriesInfo(name: "\(c.sensor.id)/\($0.attribute)", unit: $0.unit) }
        let missing = Set(c.missingMarkers.map { Array($0.utf8) })
        // "-200" also matches "-200,0" and "-200.00": markers that are numbers match by value.
        let missingValues = Set(c.missingMarkers.compactMap { CSVFields.number(Array($0.utf8)[...], decimalComma: c.decimalComma) })

        var rows = 0, produced = 0, missingCells = 0, invalidCells = 0, skippedRows = 0
        var chunk: [Reading] = []
        chunk.reserveCapacity(Self.chunkReadings + series.count)
        var pacer = c.speed.map { ReplayPacer(speed: $0) }
        var timeText: [UInt8] = []
        // Byte offset just past the last line whose readings are all in `chunk` or delivered.
        var processedThrough = reader.offset
        func deliver() async throws {
            try await sink.accept(chunk, checkpoint: InputCheckpoint(key: key, position: processedThrough))
            produced += chunk.count
            chunk.removeAll(keepingCapacity: true)
        }

        do {
            while let line = reader.next() {
                try Task.checkCancellation()
                let fields = CSVFields.split(line, separator: c.separator)
                timeText.removeAll(keepingCapacity: true)
                for (n, index) in timeIndexes.enumerated() where index < fields.count {
                    if n > 0 { timeText.append(UInt8(ascii: " ")) }
                    timeText.append(contentsOf: fields[index].trimmedBytes())
                }
                guard let timestamp = c.timestampFormat.parse(timeText) else {
                    skippedRows += 1  // trailing ';;;;' rows, blank lines, unparseable dates
                    processedThrough = reader.offset
                    continue
                }
                rows += 1
                if var active = pacer {
                    if let wait = active.delay(forDataTime: timestamp, now: ContinuousClock.now), wait > .milliseconds(1) {
                        if !chunk.isEmpty { try await deliver() }
                        try await Task.sleep(for: wait)
                    }
                    pacer = active
                }
                for (column, index) in valueIndexes.enumerated() {
                    guard index < fields.count else { missingCells += 1; continue }
                    let cell = fields[index].trimmedBytes()
                    if missing.contains(Array(cell)) { missingCells += 1; continue }
                    guard let value = CSVFields.number(cell, decimalComma: c.decimalComma) else {
                        invalidCells += 1
                        continue
                    }
                    if missingValues.contains(value) { missingCells += 1; continue }
                    chunk.append(Reading(series: series[column], timestamp: timestamp, value: value))
                }
                processedThrough = reader.offset
                if chunk.count >= Self.chunkReadings { try await deliver() }
            }
        } catch is CancellationError {
            // Stopping: every processed line is delivered below, with the position after it.
        }
        try await deliver()
        return InputSummary([("rows", rows), ("readings", produced), ("missing", missingCells),
                             ("invalid", invalidCells), ("skippedRows", skippedRows), ("resumedAtByte", Int(resumedAt)),
                             ("restartedFromTop", restarted)])
    }
}

/// Maps data time to wall time: data second `t` is due `(t - t0) / speed` after the first row.
struct ReplayPacer {
    let speed: Double
    var origin: (data: Int64, wall: ContinuousClock.Instant)?

    init(speed: Double) { self.speed = speed }

    mutating func delay(forDataTime time: Int64, now: ContinuousClock.Instant) -> Duration? {
        guard let origin else {
            self.origin = (time, now)
            return nil
        }
        let due = origin.wall + .milliseconds(Int64(Double(time - origin.data) / speed))
        return due > now ? due - now : nil
    }
}

/// Reads a file line by line with `getline`, without loading it whole (agents have little RAM).
struct LineReader {
    let file: UnsafeMutablePointer<FILE>
    private var buffer: UnsafeMutablePointer<CChar>?
    private var capacity = 0
    /// Byte offset just past the last line returned (where the next one starts).
    var offset: Int64 = 0

    init(file: UnsafeMutablePointer<FILE>) { self.file = file }

    /// The next line without its `\n` / `\r\n`, or `nil` at the end.
    mutating func next() -> [UInt8]? {
        let length = getline(&buffer, &capacity, file)
        guard length >= 0, let buffer else {
            free(self.buffer)
            self.buffer = nil
            return nil
        }
        offset += Int64(length)
        var count = length
        while count > 0, buffer[count - 1] == 0x0A || buffer[count - 1] == 0x0D { count -= 1 }
        return buffer.withMemoryRebound(to: UInt8.self, capacity: count) { Array(UnsafeBufferPointer(start: $0, count: count)) }
    }
}

/// CSV field splitting (RFC 4180 double quotes) and number parsing.
enum CSVFields {
    static func split(_ line: [UInt8], separator: UInt8) -> [ArraySlice<UInt8>] {
        var fields: [ArraySlice<UInt8>] = []
        var start = 0
        var quoted = false
        for (index, byte) in line.enumerated() {
            if byte == 0x22 { quoted.toggle() }
            else if byte == separator && !quoted {
                fields.append(unquote(line[start..<index]))
                start = index + 1
            }
        }
        fields.append(unquote(line[start..<line.count]))
        return fields
    }

    static func unquote(_ field: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        if field.count >= 2, field.first == 0x22, field.last == 0x22 { return field.dropFirst().dropLast() }
        return field
    }

    /// Parses a decimal number, with `,` as the decimal mark when `decimalComma`.
    static func number(_ cell: ArraySlice<UInt8>, decimalComma: Bool) -> Double? {
        guard !cell.isEmpty else { return nil }
        var text = String(decoding: cell, as: UTF8.self)
        if decimalComma {
            guard !text.contains(".") else { return nil }  // "1.234,5" thousands marks are not expected here
            text = text.replacingCommaWithDot()
        }
        guard let value = Double(text), value.isFinite else { return nil }
        return value
    }
}

extension ArraySlice<UInt8> {
    func trimmedBytes() -> ArraySlice<UInt8> {
        var slice = self
        while let first = slice.first, first == 0x20 || first == 0x09 { slice = slice.dropFirst() }
        while let last = slice.last, last == 0x20 || last == 0x09 { slice = slice.dropLast() }
        return slice
    }
}

extension String {
    func trimmed() -> String {
        String(decoding: Array(utf8)[...].trimmedBytes(), as: UTF8.self)
    }

    func replacingCommaWithDot() -> String {
        String(decoding: utf8.map { $0 == UInt8(ascii: ",") ? UInt8(ascii: ".") : $0 }, as: UTF8.self)
    }
}
