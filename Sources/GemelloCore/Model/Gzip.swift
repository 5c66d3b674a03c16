import GemelloZlib

/// gzip bodies (HTTP `Content-Encoding: gzip`, as Telegraf's InfluxDB v2 output sends by default).
public enum Gzip {
    /// The inflated bytes, at most `limit` of them (a small hostile body must not inflate to gigabytes).
    public static func decompress(_ bytes: [UInt8], limit: Int) throws(CoreError) -> [UInt8] {
        do {
            return try Zlib.decompress(bytes, limit: limit, gzip: true)
        } catch {
            throw CoreError(.decompressionFailed, "gzip body: \(error)")
        }
    }

    /// gzip-compresses (tests, and clients of our own).
    public static func compress(_ bytes: [UInt8]) throws(CoreError) -> [UInt8] {
        do {
            return try Zlib.compress(bytes, gzip: true)
        } catch {
            throw CoreError(.decompressionFailed, "gzip: \(error)")
        }
    }
}
