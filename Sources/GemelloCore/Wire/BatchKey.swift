/// An agent's batch-signing key: 32 random bytes written as 64 hexadecimal digits on the first
/// line of a file (`gemello agent enroll` makes it; the agent and the aggregator's enrolment
/// registry hold the same key).
public enum BatchKey {
    public static let length = 32

    /// Reads the key file at `path`; `file` is the configuration that named it (for errors).
    public static func load(_ path: String, file: String) throws(CoreError) -> [UInt8] {
        let text: String
        do { text = try FileText.read(path) } catch {
            throw CoreError(.invalidConfiguration, "cannot read the batch key file: \(error.reason)", file: file,
                            key: "batch-key-file", value: path, fix: "check the path and that this user may read it (mode 0600)")
        }
        guard let key = parse(String(text.prefix { $0 != "\n" && $0 != "\r" })) else {
            throw CoreError(.invalidConfiguration, "the batch key file does not hold a key", file: file, key: "batch-key-file",
                            value: path, fix: "it must hold \(length * 2) hexadecimal digits on its first line, as 'gemello agent enroll' writes it")
        }
        return key
    }

    /// A key from its hexadecimal text; nil when not exactly ``length`` bytes of hex.
    public static func parse(_ text: String) -> [UInt8]? {
        guard let key = text.hexBytes, key.count == length else { return nil }
        return key
    }
}
