import CZlib

/// The one error type of the zlib wrapper: every zlib return code is converted here.
public struct ZlibError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, independent of zlib's numeric codes.
    public enum Code: Sendable, Equatable {
        /// The compressed input is not a valid zlib stream (or its checksum does not match).
        case corruptInput
        /// The input ended before the compressed stream did.
        case truncatedInput
        /// Inflating would produce more than the caller's limit (a decompression bomb guard).
        case outputLimitExceeded(limit: Int)
        /// zlib could not allocate memory.
        case outOfMemory
        /// Any other zlib status code.
        case library(status: Int32)
    }

    public let code: Code
    /// zlib's own message, when it gave one.
    public let detail: String?

    public init(_ code: Code, detail: String? = nil) {
        self.code = code
        self.detail = detail
    }

    public var description: String {
        let base: String
        switch code {
        case .corruptInput: base = "compressed data is corrupt"
        case .truncatedInput: base = "compressed data is truncated"
        case .outputLimitExceeded(let limit): base = "decompressed data exceeds the limit of \(limit) bytes"
        case .outOfMemory: base = "zlib ran out of memory"
        case .library(let status): base = "zlib failed with status \(status)"
        }
        if let detail { return "\(base) (\(detail))" }
        return base
    }

    /// Converts a zlib status into an error; the single place where zlib codes are interpreted.
    static func check(_ status: Int32, stream: z_stream) throws(ZlibError) {
        switch status {
        case Z_OK, Z_STREAM_END: return
        case Z_DATA_ERROR: throw ZlibError(.corruptInput, detail: stream.msg.map { String(cString: $0) })
        case Z_MEM_ERROR: throw ZlibError(.outOfMemory)
        case Z_BUF_ERROR: throw ZlibError(.truncatedInput)
        default: throw ZlibError(.library(status: status), detail: stream.msg.map { String(cString: $0) })
        }
    }
}
