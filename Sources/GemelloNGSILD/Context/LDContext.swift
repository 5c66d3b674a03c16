import GemelloCore
/// A processed JSON-LD `@context` as NGSI-LD uses it: term → IRI, compact IRIs (`prefix:suffix`),
/// `@vocab`, and which terms take `@vocab`-typed values.
///
/// This is the subset of JSON-LD 1.1 context processing that NGSI-LD brokers apply to entity
/// types, attribute names and vocabulary values (Orion-LD does the same): names are expanded by
/// the active context when a request comes in and compacted by it when a reply goes out. Scoped
/// contexts, `@reverse`, `@language` maps and `@protected` are not interpreted (see docs/ngsi-ld.md).
public struct LDContext: Sendable {
    struct Term: Sendable {
        var iri: String
        /// `"@type": "@vocab"`: the term's string values are themselves terms to expand.
        var vocabValues: Bool
    }

    private(set) var terms: [String: Term] = [:]
    private(set) var vocab: String?
    /// IRI → the term that compacts to it (shortest, then lexically first).
    private var inverse: [String: String] = [:]
    /// Prefix IRIs (terms ending in `/` or `#`) for compact IRIs in replies, longest first.
    private var prefixes: [(iri: String, prefix: String)] = []

    /// An empty context (no terms): every name is kept as it is.
    public init() {}

    /// Applies context definitions in order (a later definition of a term overrides an earlier one).
    /// Each is a JSON object of term definitions (what a `@context` member holds once remote
    /// contexts are fetched).
    public init(definitions: [[String: JSON]]) throws(NGSILDError) {
        var raw: [String: JSON] = [:]
        for definition in definitions {
            for (key, value) in definition {
                if key == "@vocab" {
                    vocab = value.stringValue
                } else if key.hasPrefix("@") {
                    continue  // @version, @protected, @base, @language: accepted, not interpreted
                } else {
                    raw[key] = value
                }
            }
        }
        var resolved: [String: Term] = [:]
        for (key, value) in raw {
            let id: String?
            var vocabValues = false
            switch value {
            case .string(let s): id = s
            case .object(let o):
                id = o["@id"]?.stringValue
                vocabValues = o["@type"]?.stringValue == "@vocab"
            case .null: continue  // a term explicitly undefined
            default:
                throw NGSILDError.badRequest("invalid @context: term \"\(key)\" is defined as \(value.kindName); write an IRI string or an object with @id")
            }
            guard let id else {
                // {"@type": ...} without @id: the term expands through @vocab.
                resolved[key] = Term(iri: (vocab ?? "") + key, vocabValues: vocabValues)
                continue
            }
            resolved[key] = Term(iri: id, vocabValues: vocabValues)
        }
        // Resolve compact IRIs and term references in the definitions themselves (`ngsi-ld:Property`).
        for (key, term) in resolved {
            var iri = term.iri
            for _ in 0..<4 {  // a chain of prefixes, bounded against cycles
                let next = Self.expandPrefix(iri, in: resolved)
                if next == iri { break }
                iri = next
            }
            resolved[key]?.iri = iri
        }
        terms = resolved
        for (key, term) in resolved {
            if let existing = inverse[term.iri], existing.count < key.count || (existing.count == key.count && existing < key) { continue }
            inverse[term.iri] = key
            if term.iri.hasSuffix("/") || term.iri.hasSuffix("#") { prefixes.append((term.iri, key)) }
        }
        prefixes.sort { $0.iri.count != $1.iri.count ? $0.iri.count > $1.iri.count : $0.prefix < $1.prefix }
    }

    private static func expandPrefix(_ value: String, in terms: [String: Term]) -> String {
        guard let colon = value.firstIndex(of: ":") else { return terms[value]?.iri ?? value }
        let prefix = String(value[..<colon])
        let suffix = value[value.index(after: colon)...]
        if suffix.hasPrefix("//") { return value }  // an absolute IRI such as https://...
        if let base = terms[prefix] { return base.iri + suffix }
        return value
    }

    /// Expands an entity type, attribute name or other vocabulary term (JSON-LD IRI expansion with
    /// `vocab: true`).
    public func expand(_ name: String) -> String {
        if let term = terms[name] { return term.iri }
        if name.contains(":") {
            let expanded = Self.expandPrefix(name, in: terms)
            if expanded != name { return expanded }
            return name  // an absolute IRI (scheme:...) or an unknown prefix: kept as it is
        }
        if let vocab { return vocab + name }
        return name
    }

    /// Compacts an IRI to the shortest term of this context, or `prefix:suffix`, or the part after
    /// `@vocab`, or leaves it whole (the spec: non-core terms come back as full IRIs).
    public func compact(_ iri: String) -> String {
        if let term = inverse[iri] { return term }
        if let vocab, iri.hasPrefix(vocab), iri.count > vocab.count {
            let rest = String(iri.dropFirst(vocab.count))
            if terms[rest] == nil, !rest.contains(":") { return rest }
        }
        for (prefixIRI, prefix) in prefixes where iri.hasPrefix(prefixIRI) && iri.count > prefixIRI.count {
            let rest = iri.dropFirst(prefixIRI.count)
            if !rest.hasPrefix("//") { return prefix + ":" + rest }
        }
        return iri
    }

    /// Whether the values of `iri` (an expanded name) are vocabulary terms (`"@type": "@vocab"`).
    public func takesVocabValues(_ name: String) -> Bool { terms[name]?.vocabValues ?? false }
}
