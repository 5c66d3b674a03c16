/// Typed, validated access to one mapping of a configuration file.
///
/// Every key asked for is remembered, so ``rejectUnknownKeys()`` can name a misspelt key and
/// suggest the closest real one. Errors carry the file, the line, the full key path, the value
/// and the fix.
public final class ConfigSection {
    public let file: String
    /// Dotted path of this section (`buffer`, `inputs[2]`), empty at the root.
    public let path: String
    public let line: Int
    private let entries: [YAMLEntry]
    private var asked: [String] = []

    public init(file: String, path: String, node: YAMLNode) throws(CoreError) {
        self.file = file
        self.path = path
        self.line = node.line
        switch node.value {
        case .mapping(let entries): self.entries = entries
        case .empty: self.entries = []
        default:
            throw CoreError(.invalidConfiguration, "expected a section of 'key: value' lines", file: file,
                            line: node.line, key: path.isEmpty ? nil : path, fix: "indent the keys of this section under it")
        }
    }

    /// Reads and parses a configuration file; an unreadable file is a configuration error.
    public static func load(path: String) throws(CoreError) -> ConfigSection {
        try parse(try readText(path: path), file: path)
    }

    /// The configuration file's text, or an error that names the file and the fix.
    public static func readText(path: String) throws(CoreError) -> String {
        do { return try FileText.read(path) } catch {
            throw CoreError(.invalidConfiguration, "cannot read the configuration file: \(error.reason)", file: path,
                            fix: "check the path passed to --config")
        }
    }

    /// A file path; a relative one is resolved against the folder of this configuration file.
    public func path(_ key: String, default fallback: String? = nil) throws(CoreError) -> String {
        FileText.resolve(try string(key, default: fallback), relativeTo: file)
    }

    /// Parses a whole file's text into its root section.
    public static func parse(_ text: String, file: String) throws(CoreError) -> ConfigSection {
        try ConfigSection(file: file, path: "", node: YAMLParser.parse(text, file: file))
    }

    public func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func entry(_ key: String) -> YAMLEntry? {
        asked.append(key)
        return entries.first { $0.key == key }
    }

    public func has(_ key: String) -> Bool { entries.contains { $0.key == key } }

    /// The keys of this section, in file order (for sections whose keys are names, not settings).
    public var keys: [String] { entries.map(\.key) }

    /// An error about `key` of this section (for checks the caller makes itself).
    public func error(_ key: String, _ message: String, value: String? = nil, fix: String? = nil) -> CoreError {
        CoreError(.invalidConfiguration, message, file: file, line: entries.first { $0.key == key }?.line ?? line,
                  key: keyPath(key), value: value, fix: fix)
    }

    private func scalar(_ key: String) throws(CoreError) -> (String, Int)? {
        guard let entry = entry(key) else { return nil }
        switch entry.node.value {
        case .scalar(let text): return (text, entry.line)
        case .empty: return nil
        default:
            throw CoreError(.invalidConfiguration, "expected a single value, found a section or list", file: file,
                            line: entry.line, key: keyPath(key), fix: "write the value on the same line as the key")
        }
    }

    private func missing(_ key: String, _ what: String) -> CoreError {
        CoreError(.invalidConfiguration, "required key is missing", file: file, line: line, key: keyPath(key),
                  fix: "add '\(key): <\(what)>'" + (path.isEmpty ? "" : " under '\(path)'"))
    }

    private func bad(_ key: String, line: Int, _ message: String, value: String, fix: String) -> CoreError {
        CoreError(.invalidConfiguration, message, file: file, line: line, key: keyPath(key), value: value, fix: fix)
    }

    public func optionalString(_ key: String) throws(CoreError) -> String? { try scalar(key)?.0 }

    public func string(_ key: String, default fallback: String? = nil) throws(CoreError) -> String {
        if let (text, _) = try scalar(key) { return text }
        if let fallback { return fallback }
        throw missing(key, "text")
    }

    public func int(_ key: String, default fallback: Int? = nil, range: ClosedRange<Int>) throws(CoreError) -> Int {
        guard let (text, line) = try scalar(key) else {
            if let fallback { return fallback }
            throw missing(key, "number")
        }
        guard let value = Int(text.replacingUnderscores()) else {
            throw bad(key, line: line, "not a whole number", value: text, fix: "write a number between \(range.lowerBound) and \(range.upperBound)")
        }
        guard range.contains(value) else {
            throw bad(key, line: line, "out of range", value: text, fix: "write a number between \(range.lowerBound) and \(range.upperBound)")
        }
        return value
    }

    public func double(_ key: String, default fallback: Double? = nil, range: ClosedRange<Double>) throws(CoreError) -> Double {
        guard let (text, line) = try scalar(key) else {
            if let fallback { return fallback }
            throw missing(key, "number")
        }
        guard let value = Double(text), value.isFinite else {
            throw bad(key, line: line, "not a number", value: text, fix: "write a decimal number such as 45.4642")
        }
        guard range.contains(value) else {
            throw bad(key, line: line, "out of range", value: text, fix: "write a number between \(range.lowerBound) and \(range.upperBound)")
        }
        return value
    }

    public func bool(_ key: String, default fallback: Bool) throws(CoreError) -> Bool {
        guard let (text, line) = try scalar(key) else { return fallback }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw bad(key, line: line, "not a boolean", value: text, fix: "write true or false")
        }
    }

    /// A duration such as `500ms`, `5s`, `2m`, `1h`, `7d`; a bare number means seconds.
    public func duration(_ key: String, default fallback: Duration, range: ClosedRange<Duration>) throws(CoreError) -> Duration {
        guard let (text, line) = try scalar(key) else { return fallback }
        guard let value = Self.parseDuration(text) else {
            throw bad(key, line: line, "not a duration", value: text, fix: "write a duration such as 500ms, 5s, 2m, 1h or 7d")
        }
        guard range.contains(value) else {
            throw bad(key, line: line, "out of range", value: text, fix: "write a duration between \(range.lowerBound) and \(range.upperBound)")
        }
        return value
    }

    static func parseDuration(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count).trimmingTrailingSpaces()
            if let value = Double(number), value >= 0, value.isFinite { return .milliseconds(Int64((value * scale * 1000).rounded())) }
        }
        if let seconds = Double(text), seconds >= 0, seconds.isFinite { return .milliseconds(Int64((seconds * 1000).rounded())) }
        return nil
    }

    /// A size in bytes such as `64MiB`, `1GiB`, `500MB` or `4096` (binary units are powers of 1024,
    /// decimal ones of 1000).
    public func byteSize(_ key: String, default fallback: Int64, range: ClosedRange<Int64>) throws(CoreError) -> Int64 {
        guard let (text, line) = try scalar(key) else { return fallback }
        guard let value = Self.parseByteSize(text) else {
            throw bad(key, line: line, "not a size", value: text, fix: "write a size such as 512MiB, 2GiB or 800MB")
        }
        guard range.contains(value) else {
            throw bad(key, line: line, "out of range", value: text,
                      fix: "write a size between \(range.lowerBound) and \(range.upperBound) bytes")
        }
        return value
    }

    /// A rate in bytes per second (`256KiB/s`, `2MB/s`; the `/s` may be left out), or
    /// `unlimited`: then `nil`.
    public func byteRate(_ key: String, default fallback: Int64?, range: ClosedRange<Int64>) throws(CoreError) -> Int64? {
        guard let (text, line) = try scalar(key) else { return fallback }
        if text == "unlimited" { return nil }
        let size = text.hasSuffix("/s") ? String(text.dropLast(2)) : text
        guard let value = Self.parseByteSize(size) else {
            throw bad(key, line: line, "not a rate", value: text, fix: "write bytes per second such as 256KiB/s or 2MB/s, or 'unlimited'")
        }
        guard range.contains(value) else {
            throw bad(key, line: line, "out of range", value: text,
                      fix: "write a rate between \(range.lowerBound) and \(range.upperBound) bytes per second, or 'unlimited'")
        }
        return value
    }

    static func parseByteSize(_ text: String) -> Int64? {
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("TiB", 1_099_511_627_776),
                                         ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count).trimmingTrailingSpaces()
            if let value = Double(number), value >= 0, value * scale < 9e18 { return Int64((value * scale).rounded()) }
            return nil
        }
        return Int64(text).flatMap { $0 >= 0 ? $0 : nil }
    }

    /// One of the raw values of `T`.
    public func choice<T: RawRepresentable & CaseIterable>(_ key: String, default fallback: T? = nil) throws(CoreError) -> T
    where T.RawValue == String {
        guard let (text, line) = try scalar(key) else {
            if let fallback { return fallback }
            throw missing(key, T.allCases.map(\.rawValue).joined(separator: "|"))
        }
        guard let value = T(rawValue: text) else {
            let allowed = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw bad(key, line: line, "not one of the allowed values", value: text, fix: "use one of: \(allowed)")
        }
        return value
    }

    /// A list of single values (`[a, b]` or `- a` lines); a lone value counts as a one-item list.
    public func optionalStringList(_ key: String) throws(CoreError) -> [String]? {
        guard let entry = entry(key) else { return nil }
        switch entry.node.value {
        case .scalar(let text): return [text]
        case .empty: return nil
        case .sequence(let items):
            var result: [String] = []
            for item in items {
                guard case .scalar(let text) = item.value else {
                    throw CoreError(.invalidConfiguration, "expected a list of single values", file: file, line: item.line,
                                    key: keyPath(key), fix: "write the list as [a, b, c]")
                }
                result.append(text)
            }
            return result
        case .mapping:
            throw CoreError(.invalidConfiguration, "expected a list, found a section", file: file, line: entry.line,
                            key: keyPath(key), fix: "write the list as [a, b, c]")
        }
    }

    /// A nested section, or `nil` when absent.
    public func section(_ key: String) throws(CoreError) -> ConfigSection? {
        guard let entry = entry(key) else { return nil }
        return try ConfigSection(file: file, path: keyPath(key), node: entry.node)
    }

    /// A nested section, or an empty one (all defaults) when absent.
    public func sectionOrEmpty(_ key: String) throws(CoreError) -> ConfigSection {
        if let section = try section(key) { return section }
        return try ConfigSection(file: file, path: keyPath(key), node: YAMLNode(.empty, line: line))
    }

    /// A list whose items are sections (`- key: value`).
    public func sections(_ key: String) throws(CoreError) -> [ConfigSection] {
        guard let entry = entry(key) else { return [] }
        switch entry.node.value {
        case .sequence(let items):
            var result: [ConfigSection] = []
            for (index, item) in items.enumerated() {
                result.append(try ConfigSection(file: file, path: "\(keyPath(key))[\(index)]", node: item))
            }
            return result
        case .empty: return []
        default:
            throw CoreError(.invalidConfiguration, "expected a list of sections", file: file, line: entry.line,
                            key: keyPath(key), fix: "write each item on its own line starting with '- '")
        }
    }

    /// The keys of a free-form mapping (for maps such as column → series), in file order.
    public func mappingEntries(_ key: String) throws(CoreError) -> [(key: String, section: ConfigSection)] {
        guard let entry = entry(key) else { return [] }
        guard case .mapping(let children) = entry.node.value else {
            throw CoreError(.invalidConfiguration, "expected a section", file: file, line: entry.line, key: keyPath(key),
                            fix: "indent one entry per line under '\(key):'")
        }
        var result: [(String, ConfigSection)] = []
        for child in children {
            result.append((child.key, try ConfigSection(file: file, path: "\(keyPath(key)).\(child.key)", node: child.node)))
        }
        return result
    }

    /// Fails on the first key that nothing asked for, suggesting the closest known key.
    public func rejectUnknownKeys() throws(CoreError) {
        for entry in entries where !asked.contains(entry.key) {
            let suggestion = asked.min { Self.editDistance($0, entry.key) < Self.editDistance($1, entry.key) }
            let known = Array(Set(asked)).sorted().joined(separator: ", ")
            let fix = suggestion.flatMap { Self.editDistance($0, entry.key) <= 3 ? "did you mean '\($0)'? Known keys here: \(known)" : nil }
                ?? "remove it; known keys here: \(known)"
            throw CoreError(.invalidConfiguration, "unknown key", file: file, line: entry.line,
                            key: keyPath(entry.key), fix: fix)
        }
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

extension String {
    func replacingUnderscores() -> String { filter { $0 != "_" } }
}
