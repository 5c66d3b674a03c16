import GemelloCore

/// libFuzzer entry point for the wire format v1 decoder (ops/fuzz/wire), and for the history's
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
