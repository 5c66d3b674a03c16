import GemelloCore

/// libFuzzer entry point for the wire format v1 and v2 decoders (ops/fuzz/wire), and for the history's
/// chunk decoder (docs/history-format.md), which shares its range coder and column coding.
///
/// Each input is tried as a whole frame (magic, version, CRC, zlib paths) and as a bare body (so
/// mutations reach the body and the range decoder past the checksum). The decoder must return a
/// batch or throw a `CoreError`, never crash; and a batch it accepts must survive a re-encode and
/// decode bit for bit, which checks the encoder on inputs no test author would think of.
func wireFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // A chunk read back from a damaged store must be an error, never a crash; one that decodes
    // must re-encode to a chunk that decodes the same.
    if let chunk = try? SeriesChunk(decoding: bytes) {
        do {
            let again = try SeriesChunk(decoding: try chunk.encoded())
            guard again.timestamps == chunk.timestamps, again.values.map(\.bitPattern) == chunk.values.map(\.bitPattern),
                  again.sourceIndex.map({ again.sources[Int($0)] }) == chunk.sourceIndex.map({ chunk.sources[Int($0)] }) else {
                fatalError("an accepted history chunk changes when re-encoded")
            }
        } catch {
            fatalError("an accepted history chunk does not re-encode: \(error)")
        }
    }
    _ = try? WireFormat.decode(bytes)
    // Version 2: references to session series 1…3 resolve, others are unknown.
    _ = try? WireFormat.decodeFrame(bytes, agentID: "fuzz", lookup: sessionSeries)
    if let batch = try? WireFormat.decodeBody(bytes, version: 2, agentID: "fuzz", lookup: sessionSeries) {
        // Re-encoded with every series defined, it must decode the same without any table.
        let entries = (0..<batch.series.count).map { SeriesEntry(index: UInt64($0 + 1), defines: true) }
        do {
            let again = try WireFormat.decode(try WireFormat.encode(batch, entries: entries), agentID: "fuzz")
            guard again.isBitIdentical(to: batch) else { fatalError("an accepted v2 batch changes when re-encoded") }
        } catch {
            fatalError("an accepted v2 batch does not re-encode: \(error)")
        }
    }
    guard let batch = try? WireFormat.decodeBody(bytes) else { return 0 }
    let again: Batch
    do {
        again = try WireFormat.decode(try WireFormat.encode(batch))
    } catch {
        fatalError("an accepted batch does not re-encode: \(error)")
    }
    guard again.isBitIdentical(to: batch) else { fatalError("an accepted batch changes when re-encoded") }
    return 0
}

/// What a fuzzed v2 frame's references resolve to: three series, the rest unknown.
private func sessionSeries(_ epoch: UInt64, _ index: UInt64) -> SeriesInfo? {
    switch index {
    case 1: SeriesInfo(name: "weather/temperature", unit: "CEL")
    case 2: SeriesInfo(name: "air/pm25", unit: "GQ")
    case 3: SeriesInfo(name: "custom", unit: "x")
    default: nil
    }
}
