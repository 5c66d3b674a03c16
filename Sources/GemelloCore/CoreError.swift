/// The one error type of the core: wire-format rejections and configuration problems.
///
/// An opaque struct with a code and context, so messages can name the file, the key, the value
/// and the fix without the caller assembling strings.
public struct CoreError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: Sendable, Equatable {
        // Wire format
        /// The payload ended before a field did.
        case truncated
        /// The first bytes are not a Gemello frame.
        case badMagic
        /// A version this decoder does not understand.
        case unsupportedVersion
        /// The CRC-32 over the body does not match.
        case checksumMismatch
        /// A declared count or size is past the format's hard limits.
        case limitExceeded
        /// Structurally invalid content (bad varint, counts that lie, bad UTF-8).
        case malformed
        /// The compressed body would not inflate.
        case decompressionFailed
        /// A v2 batch refers to a session series its decoder does not hold (the aggregator asks
        /// the agent to define its series again: a resync).
        case unknownSeries
        // Configuration
        /// A configuration file is unreadable, not valid YAML, or has a bad key or value.
        case invalidConfiguration
    }

    public let code: Code
    /// The problem, in words.
    public let message: String
    /// Configuration context: the file, its line, the key path and the offending value.
    public var file: String?
    public var line: Int?
    public var key: String?
    public var value: String?
    /// How to fix it, when we know.
    public var fix: String?
    /// Wire format: the boot epoch of the batch, where the error concerns it (`unknownSeries`).
    public var bootEpoch: UInt64?

    public init(_ code: Code, _ message: String, file: String? = nil, line: Int? = nil,
                key: String? = nil, value: String? = nil, fix: String? = nil) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        self.value = value
        self.fix = fix
    }

    public var description: String {
        var text = ""
        if let file { text += line.map { "\(file):\($0): " } ?? "\(file): " }
        if let key { text += "key '\(key)': " }
        text += message
        if let value { text += " (got '\(value)')" }
        if let fix { text += ". Fix: \(fix)" }
        return text
    }
}
