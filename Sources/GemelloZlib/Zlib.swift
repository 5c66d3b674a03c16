import CZlib

/// Thin, allocation-conscious wrapper over zlib's deflate/inflate and crc32.
///
/// Whole-buffer operations only: Gemello's batches are small (kilobytes), so streaming would add
/// complexity without saving memory.
public enum Zlib {
    /// Compresses `input` into a zlib stream (RFC 1950) at `level` (0...9, 6 is zlib's default).
    /// With `gzip`, a gzip member (RFC 1952) instead.
    public static func compress(_ input: [UInt8], level: Int32 = 6, gzip: Bool = false) throws(ZlibError) -> [UInt8] {
        var stream = z_stream()
        try ZlibError.check(gzip ? gemello_deflate_init_gzip(&stream, level) : gemello_deflate_init(&stream, level), stream: stream)
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        var output = [UInt8](repeating: 0, count: bound)
        var status: Int32 = Z_OK
        var produced = 0
        input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { destination in
                // zlib never writes through next_in; the cast only satisfies its non-const API.
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                stream.avail_in = uInt(source.count)
                stream.next_out = destination.baseAddress
                stream.avail_out = uInt(destination.count)
                status = deflate(&stream, Z_FINISH)
                produced = destination.count - Int(stream.avail_out)
            }
        }
        guard status == Z_STREAM_END else {
            try ZlibError.check(status == Z_OK ? Z_BUF_ERROR : status, stream: stream)
            throw ZlibError(.library(status: status))
        }
        output.removeSubrange(produced...)
        return output
    }

    /// Inflates a zlib stream (or, with `gzip`, a gzip member), refusing to produce more than `limit` bytes.
    ///
    /// The output grows in steps and the limit is checked before each step, so a small hostile
    /// input that would inflate to gigabytes fails after allocating at most `limit` bytes.
    public static func decompress(_ input: [UInt8], limit: Int, sizeHint: Int = 0, gzip: Bool = false) throws(ZlibError) -> [UInt8] {
        var stream = z_stream()
        try ZlibError.check(gzip ? gemello_inflate_init_gzip(&stream) : gemello_inflate_init(&stream), stream: stream)
        defer { inflateEnd(&stream) }
        var output = [UInt8]()
        var capacity = min(limit, max(sizeHint, input.count * 4, 1024))
        output.reserveCapacity(capacity)
        var status: Int32 = Z_OK
        var produced = 0
        try input.withUnsafeBufferPointer { (source) throws(ZlibError) in
            stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
            stream.avail_in = uInt(source.count)
            while true {
                if produced == capacity {
                    guard capacity < limit else {
                        // One more byte would pass the limit: probe with a 1-byte buffer.
                        var probe: UInt8 = 0
                        let more = withUnsafeMutablePointer(to: &probe) { pointer -> Bool in
                            stream.next_out = pointer
                            stream.avail_out = 1
                            let probeStatus = inflate(&stream, Z_NO_FLUSH)
                            return probeStatus == Z_OK && stream.avail_out == 0
                        }
                        if more { throw ZlibError(.outputLimitExceeded(limit: limit)) }
                        status = Z_STREAM_END
                        break
                    }
                    capacity = min(limit, capacity * 2)
                }
                output.append(contentsOf: repeatElement(0, count: capacity - output.count))
                status = output.withUnsafeMutableBufferPointer { destination in
                    stream.next_out = destination.baseAddress! + produced
                    stream.avail_out = uInt(capacity - produced)
                    let result = inflate(&stream, Z_NO_FLUSH)
                    produced = capacity - Int(stream.avail_out)
                    return result
                }
                if status == Z_STREAM_END { break }
                if status == Z_OK { continue }
                if status == Z_BUF_ERROR && stream.avail_in == 0 { throw ZlibError(.truncatedInput) }
                try ZlibError.check(status, stream: stream)
            }
        }
        if status != Z_STREAM_END { throw ZlibError(.truncatedInput) }
        output.removeSubrange(produced...)
        return output
    }

    /// CRC-32 (the zlib/PNG polynomial) of `bytes`.
    public static func crc32(_ bytes: some Collection<UInt8>) -> UInt32 {
        let value = bytes.withContiguousStorageIfAvailable { buffer in
            CZlib.crc32(0, buffer.baseAddress, uInt(buffer.count))
        } ?? Array(bytes).withUnsafeBufferPointer { buffer in
            CZlib.crc32(0, buffer.baseAddress, uInt(buffer.count))
        }
        return UInt32(truncatingIfNeeded: value)
    }
}
