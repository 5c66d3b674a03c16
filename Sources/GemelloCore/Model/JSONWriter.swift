/// A minimal JSON object writer, so the agent can emit announcements without Foundation
/// (Foundation alone would take the agent past its 10 MB RSS budget).
public struct JSONWriter {
    public private(set) var text = "{"
    private var first = true

    public init() {}

    private mutating func key(_ name: String) {
        if !first { text += "," }
        first = false
        text += Self.quote(name) + ":"
    }

    public mutating func field(_ name: String, _ value: String) { key(name); text += Self.quote(value) }
    public mutating func field(_ name: String, _ value: Int64) { key(name); text += String(value) }
    public mutating func field(_ name: String, _ value: Int) { key(name); text += String(value) }
    public mutating func field(_ name: String, _ value: UInt64) { key(name); text += String(value) }
    public mutating func field(_ name: String, _ value: Double) {
        key(name)
        text += value.isFinite ? "\(value)" : "null"
    }
    public mutating func field(_ name: String, _ value: Bool) { key(name); text += value ? "true" : "false" }
    public mutating func field(_ name: String, raw json: String) { key(name); text += json }

    public func finished() -> String { text + "}" }

    /// A JSON string literal with the escapes RFC 8259 requires.
    public static func quote(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
