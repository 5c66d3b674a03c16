import GemelloCore
/// An entity type selector (`type=` in queries, clause 4.17): names joined by `,` or `|` (or),
/// `;` (and), with parentheses, e.g. `(Building;Home)|Vehicle`.
public indirect enum TypeExpression: Sendable, Equatable {
    case type(String)
    case and([TypeExpression])
    case or([TypeExpression])

    /// Parses the selector; each type name is expanded with `expand`.
    public static func parse(_ text: String, expand: (String) -> String) throws(NGSILDError) -> TypeExpression {
        var tokens: [String] = []
        var word = ""
        for c in text {
            if "(),;|".contains(c) {
                if !word.isEmpty { tokens.append(word); word = "" }
                tokens.append(String(c))
            } else if !c.isWhitespace {
                word.append(c)
            }
        }
        if !word.isEmpty { tokens.append(word) }
        var index = 0
        func fail(_ why: String) -> NGSILDError { .badRequest("invalid type selector \"\(text)\": \(why)") }
        func parseOr(_ depth: Int) throws(NGSILDError) -> TypeExpression {
            guard depth < 16 else { throw fail("nested too deep") }
            var items = [try parseAnd(depth)]
            while index < tokens.count, tokens[index] == "," || tokens[index] == "|" {
                index += 1
                items.append(try parseAnd(depth))
            }
            return items.count == 1 ? items[0] : .or(items)
        }
        func parseAnd(_ depth: Int) throws(NGSILDError) -> TypeExpression {
            var items = [try parsePrimary(depth)]
            while index < tokens.count, tokens[index] == ";" {
                index += 1
                items.append(try parsePrimary(depth))
            }
            return items.count == 1 ? items[0] : .and(items)
        }
        func parsePrimary(_ depth: Int) throws(NGSILDError) -> TypeExpression {
            guard index < tokens.count else { throw fail("a type name was expected") }
            let token = tokens[index]
            index += 1
            if token == "(" {
                let inner = try parseOr(depth + 1)
                guard index < tokens.count, tokens[index] == ")" else { throw fail("\")\" expected") }
                index += 1
                return inner
            }
            guard !"(),;|".contains(token) else { throw fail("unexpected \"\(token)\"") }
            return .type(expand(token))
        }
        let expression = try parseOr(0)
        guard index == tokens.count else { throw fail("unexpected \"\(tokens[index])\"") }
        return expression
    }

    public func matches(_ types: [String]) -> Bool {
        switch self {
        case .type(let t): types.contains(t)
        case .and(let items): items.allSatisfy { $0.matches(types) }
        case .or(let items): items.contains { $0.matches(types) }
        }
    }

    /// The types named, when the selector is a plain list of alternatives (index look-ups).
    public var alternatives: [String]? {
        switch self {
        case .type(let t): [t]
        case .or(let items):
            items.allSatisfy { if case .type = $0 { true } else { false } }
                ? items.compactMap { if case .type(let t) = $0 { t } else { nil } } : nil
        case .and: nil
        }
    }
}
