/// A parsed YAML node with the line it started on (1-based), for error messages.
public struct YAMLNode: Sendable, Equatable {
    public indirect enum Value: Sendable, Equatable {
        case scalar(String)
        case mapping([YAMLEntry])
        case sequence([YAMLNode])
        /// `key:` with nothing after it.
        case empty
    }

    public var value: Value
    public var line: Int

    public init(_ value: Value, line: Int) {
        self.value = value
        self.line = line
    }
}

/// One `key: value` pair of a mapping, in file order.
public struct YAMLEntry: Sendable, Equatable {
    public var key: String
    public var line: Int
    public var node: YAMLNode
}
