import GemelloCore

/// libFuzzer entry point for the wire format v1 decoder (ops/fuzz/wire).
///
/// Each input is tried as a whole frame (magic, version, CRC, zlib paths) and as a bare body (so
/// mutations reach the body and the range decoder past the checksum). The decoder must return a
/// batch or throw a `CoreError`, never crash; and a batch it accepts must survive a re-encode and
/// decode bit for bit, which checks the encoder on inputs no test author would think of.
func wireFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
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
