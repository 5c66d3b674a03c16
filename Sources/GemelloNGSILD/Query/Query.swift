import GemelloCore
/// The NGSI-LD query language (`q`, ETSI GS CIM 009 clause 4.9): terms on attribute values joined
/// by `;` (and) and `|` (or) with parentheses. `;` binds tighter than `|`, as in Orion-LD (the
/// grammar leaves precedence open; docs/ngsi-ld.md).
public indirect enum Query {
    case and([Query])
    case or([Query])
    case term(Term)

    public struct Path: Equatable, Sendable {
        /// Expanded attribute name.
        public var attribute: String
        /// Sub-attribute names after `.` (expanded, or the members observedAt, unitCode, datasetId,
        /// createdAt, modifiedAt).
        public var subAttributes: [String]
        /// Members of the (JSON object) value after `[...]`.
        public var members: [String]
    }

    public enum Value: Equatable {
        case number(Double)
        case string(String)
        case bool(Bool)
        case dateTime(Int64)
        /// An unquoted word that is none of the above (a URI such as `urn:ngsi-ld:Device:1`).
        case uri(String)
    }

    public enum Operation {
        case exists
        case equal([Value])
        case unequal([Value])
        case range(Value, Value, negated: Bool)
        case greater(Value), greaterOrEqual(Value), less(Value), lessOrEqual(Value)
        case matches(Regex<AnyRegexOutput>, negated: Bool)
    }

    /// A class, so that evaluating it over many entities passes one reference, not its parts.
    public final class Term {
        public let path: Path
        public let operation: Operation
        init(path: Path, operation: Operation) {
            self.path = path
            self.operation = operation
        }
    }

    /// Parses `q`; attribute names are expanded with `expand` (the request's context).
    public static func parse(_ text: String, expand: @escaping (String) -> String) throws(NGSILDError) -> Query {
        var parser = QueryParser(text: Array(text), expand: expand)
        let query = try parser.parseOr(depth: 0)
        guard parser.index == parser.text.count else {
            throw parser.error("unexpected \"\(parser.text[parser.index])\"")
        }
        return query
    }
}

struct QueryParser {
    let text: [Character]
    let expand: (String) -> String
    var index = 0

    init(text: [Character], expand: @escaping (String) -> String) {
        self.text = text
        self.expand = expand
    }

    func error(_ reason: String) -> NGSILDError {
        .badRequest("invalid q at character \(index + 1): \(reason) (q: \(String(text)))")
    }

    var atEnd: Bool { index >= text.count }
    var current: Character? { atEnd ? nil : text[index] }

    mutating func parseOr(depth: Int) throws(NGSILDError) -> Query {
        guard depth < 32 else { throw error("parentheses nested deeper than 32") }
        var items = [try parseAnd(depth: depth)]
        while current == "|" {
            index += 1
            items.append(try parseAnd(depth: depth))
        }
        return items.count == 1 ? items[0] : .or(items)
    }

    mutating func parseAnd(depth: Int) throws(NGSILDError) -> Query {
        var items = [try parsePrimary(depth: depth)]
        while current == ";" {
            index += 1
            items.append(try parsePrimary(depth: depth))
        }
        return items.count == 1 ? items[0] : .and(items)
    }

    mutating func parsePrimary(depth: Int) throws(NGSILDError) -> Query {
        guard let c = current else { throw error("a query term was expected") }
        if c == "(" {
            index += 1
            let inner = try parseOr(depth: depth + 1)
            guard current == ")" else { throw error("\")\" expected") }
            index += 1
            return inner
        }
        return .term(try parseTerm())
    }

    static let nameStops: Set<Character> = ["=", "!", "<", ">", "~", ";", "|", "(", ")", "[", "]", ".", "\"", ","]

    mutating func name() throws(NGSILDError) -> String {
        let start = index
        while let c = current, !Self.nameStops.contains(c), !c.isWhitespace { index += 1 }
        guard index > start else { throw error("an attribute name was expected") }
        return String(text[start..<index])
    }

    static let members: Set<String> = ["observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt"]

    mutating func parseTerm() throws(NGSILDError) -> Query.Term {
        let attribute = expand(try name())
        var subs: [String] = []
        var members: [String] = []
        while let c = current, c == "." || c == "[" {
            index += 1
            if c == "." {
                guard members.isEmpty else { throw error("a sub-attribute cannot follow a [member] path") }
                let n = try name()
                subs.append(Self.members.contains(n) ? n : expand(n))
            } else {
                members.append(try name())
                guard current == "]" else { throw error("\"]\" expected") }
                index += 1
            }
        }
        let path = Query.Path(attribute: attribute, subAttributes: subs, members: members)
        let op = readOperator()
        guard let op else { return Query.Term(path: path, operation: .exists) }
        let raw = try rawValue()
        guard !raw.isEmpty else { throw error("a value was expected after \(op)") }
        switch op {
        case "~=", "!~=":
            return Query.Term(path: path, operation: .matches(try SafePattern.compile(raw, what: "the pattern of \(op)"), negated: op == "!~="))
        case "==", "!=":
            if let range = try Self.range(raw, error: error) {
                return Query.Term(path: path, operation: .range(range.0, range.1, negated: op == "!="))
            }
            let values = try Self.list(raw, error: error)
            return Query.Term(path: path, operation: op == "==" ? .equal(values) : .unequal(values))
        default:
            let value = try Self.value(raw, error: error)
            if case .bool = value { throw error("\(op) compares numbers, strings and date-times, not booleans") }
            switch op {
            case ">": return Query.Term(path: path, operation: .greater(value))
            case ">=": return Query.Term(path: path, operation: .greaterOrEqual(value))
            case "<": return Query.Term(path: path, operation: .less(value))
            default: return Query.Term(path: path, operation: .lessOrEqual(value))
            }
        }
    }

    mutating func readOperator() -> String? {
        for op in ["!~=", "~=", "==", "!=", ">=", "<=", ">", "<"] {
            let chars = Array(op)
            if index + chars.count <= text.count, Array(text[index..<(index + chars.count)]) == chars {
                index += chars.count
                return op
            }
        }
        return nil
    }

    /// The value text up to the next `;`, `|` or `)` outside quotes.
    mutating func rawValue() throws(NGSILDError) -> String {
        let start = index
        var quoted = false
        var depth = 0
        while let c = current {
            if c == "\"" { quoted.toggle() }
            if !quoted {
                if c == "(" { depth += 1 }
                if c == ")" { if depth == 0 { break }; depth -= 1 }
                if c == ";" || c == "|" { break }
            }
            index += 1
        }
        guard !quoted else { throw error("unterminated quoted string") }
        return String(text[start..<index])
    }

    static func range(_ raw: String, error: (String) -> NGSILDError) throws(NGSILDError) -> (Query.Value, Query.Value)? {
        let chars = Array(raw)
        guard !raw.hasPrefix("\""), let dot = chars.indices.dropLast().first(where: { chars[$0] == "." && chars[$0 + 1] == "." }) else {
            return nil
        }
        let low = try value(String(chars[..<dot]), error: error)
        let high = try value(String(chars[(dot + 2)...]), error: error)
        return (low, high)
    }

    static func list(_ raw: String, error: (String) -> NGSILDError) throws(NGSILDError) -> [Query.Value] {
        var items: [String] = []
        var current = ""
        var quoted = false
        for c in raw {
            if c == "\"" { quoted.toggle() }
            if c == ",", !quoted { items.append(current); current = ""; continue }
            current.append(c)
        }
        items.append(current)
        var values: [Query.Value] = []
        for item in items { values.append(try value(item, error: error)) }
        return values
    }

    static func value(_ raw: String, error: (String) -> NGSILDError) throws(NGSILDError) -> Query.Value {
        guard !raw.isEmpty else { throw error("an empty value") }
        if raw.hasPrefix("\"") {
            guard raw.count >= 2, raw.hasSuffix("\"") else { throw error("unterminated quoted string \(raw)") }
            return .string(String(raw.dropFirst().dropLast()))
        }
        if let first = raw.first, "=<>!~".contains(first) { throw error("a value cannot start with \(first)") }
        if raw == "true" { return .bool(true) }
        if raw == "false" { return .bool(false) }
        if let n = Double(raw), n.isFinite, raw.first.map({ $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." }) == true {
            return .number(n)
        }
        if let ms = DateTime.milliseconds(raw) { return .dateTime(ms) }
        return .uri(raw)
    }
}
