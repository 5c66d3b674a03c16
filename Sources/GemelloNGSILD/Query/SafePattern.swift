import GemelloCore
/// Regular expressions from clients (`idPattern`, the `~=` and `!~=` operators of `q`) compiled
/// only when they cannot make the backtracking matcher run for exponential time (ReDoS): at most
/// 256 characters, no back-references, at most four unbounded repetitions, and no repeated group
/// that itself repeats or alternates (`(a+)+`, `(.*)*`, `(a|aa)+`). Those are refused as
/// `TooComplexQuery` (403) with the reason; every pattern a client needs to select entity ids
/// and text values can be written without them.
public enum SafePattern {
    public static let maxLength = 256
    public static let maxUnbounded = 4

    public static func compile(_ pattern: String, what: String) throws(NGSILDError) -> Regex<AnyRegexOutput> {
        if let problem = problem(in: pattern) {
            throw NGSILDError(.tooComplexQuery, "\(what) '\(pattern.prefix(80))' is refused: \(problem)")
        }
        do { return try Regex(pattern) } catch {
            throw NGSILDError.badRequest("\(what) '\(pattern.prefix(80))' is not a valid regular expression")
        }
    }

    /// Why `pattern` could backtrack catastrophically, or nil.
    public static func problem(in pattern: String) -> String? {
        let chars = Array(pattern)
        guard chars.count <= maxLength else { return "longer than \(maxLength) characters" }
        // Per open group: whether it holds a repetition or an alternation.
        var groups: [(repeats: Bool, alternates: Bool)] = []
        var unbounded = 0
        var i = 0
        var lastClosed: (repeats: Bool, alternates: Bool)?  // the group that just closed, if the next char may quantify it
        func quantifier(at j: Int) -> (unbounded: Bool, length: Int)? {
            guard j < chars.count else { return nil }
            switch chars[j] {
            case "*", "+": return (true, 1)
            case "?": return (false, 1)
            case "{":
                var k = j + 1
                var body = ""
                while k < chars.count && chars[k] != "}" { body.append(chars[k]); k += 1 }
                guard k < chars.count, !body.isEmpty, body.allSatisfy({ $0.isNumber || $0 == "," }) else { return nil }
                return (body.hasSuffix(",") || (body.split(separator: ",").last.flatMap { Int($0) } ?? 0) > 16, k - j + 1)
            default: return nil
            }
        }
        while i < chars.count {
            let c = chars[i]
            if let q = quantifier(at: i), i > 0 {
                if let closed = lastClosed, q.unbounded, closed.repeats || closed.alternates {
                    return "a repeated group repeats or alternates inside (nested quantifiers backtrack exponentially)"
                }
                if q.unbounded { unbounded += 1 }
                if !groups.isEmpty { groups[groups.count - 1].repeats = true }
                lastClosed = nil
                i += q.length
                if i < chars.count && (chars[i] == "?" || chars[i] == "+") { i += 1 }  // lazy / possessive suffix
                continue
            }
            lastClosed = nil
            switch c {
            case "\\":
                if i + 1 < chars.count, chars[i + 1].isNumber || chars[i + 1] == "k" { return "back-references are not supported" }
                i += 2
                continue
            case "[":
                // A character class: skip to its closing bracket.
                var k = i + 1
                if k < chars.count && chars[k] == "^" { k += 1 }
                if k < chars.count && chars[k] == "]" { k += 1 }
                while k < chars.count && chars[k] != "]" { k += chars[k] == "\\" ? 2 : 1 }
                i = k + 1
                continue
            case "(":
                groups.append((false, false))
            case ")":
                guard let group = groups.popLast() else { i += 1; continue }
                if !groups.isEmpty {
                    groups[groups.count - 1].repeats = groups[groups.count - 1].repeats || group.repeats
                    groups[groups.count - 1].alternates = groups[groups.count - 1].alternates || group.alternates
                }
                lastClosed = group
            case "|":
                if !groups.isEmpty { groups[groups.count - 1].alternates = true }
            default:
                break
            }
            i += 1
        }
        if unbounded > maxUnbounded { return "more than \(maxUnbounded) unbounded repetitions" }
        return nil
    }
}
