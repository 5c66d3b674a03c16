import GemelloCore
import Synchronization

/// Fetches a remote JSON-LD context document (HTTP(S) GET). The aggregator gives the real one;
/// tests give a real HTTP server's.
public protocol ContextLoader: Sendable {
    /// The document's bytes; throws when it cannot be had (the broker answers 503 `LdContextNotAvailable`).
    func fetch(_ url: String) async throws -> [UInt8]
}

/// Turns the `@context` a request names (a `Link` header's URL, or the `@context` member of a
/// JSON-LD body: URLs and inline objects) into an ``LDContext``.
///
/// - The core context v1.8 is built in, never fetched, and always applied last: its terms cannot
///   be overridden (ETSI GS CIM 009, clause 5.5.7).
/// - The Smart Data Models context the twin uses is built in under its public URL.
/// - Other URLs are fetched through the ``ContextLoader`` and cached: at most `maxDocuments`
///   documents, each for `timeToLive` seconds (the least recently used goes first). `preloaded`
///   documents (from a local folder, for offline sites) never expire.
public final class ContextResolver: Sendable {
    public struct Limits: Sendable {
        public var maxDocuments: Int
        public var timeToLive: Double
        /// Bytes of one remote context document at most.
        public var maxDocumentBytes: Int
        public init(maxDocuments: Int = 128, timeToLive: Double = 3600, maxDocumentBytes: Int = 4 << 20) {
            self.maxDocuments = maxDocuments
            self.timeToLive = timeToLive
            self.maxDocumentBytes = maxDocumentBytes
        }
    }

    struct CachedDocument {
        var definitions: [JSON]
        var fetchedAt: Double
        var lastUsed: Double
        var permanent: Bool
    }

    struct State {
        var documents: [String: CachedDocument] = [:]
        /// The processed context per request `@context` (serialized), most requests repeat one.
        var processed: [String: (context: LDContext, at: Double)] = [:]
    }

    private let state: Mutex<State>
    private let loader: (any ContextLoader)?
    private let limits: Limits
    private let now: @Sendable () -> Double
    /// The core context alone: what a request that names no context gets.
    public let core: LDContext
    /// The Smart Data Models context (built in) with the core context: the twin's own terms.
    public let smartDataModels: LDContext
    private let coreDefinitions: [String: JSON]

    public static let coreContextURL = BuiltInContexts.coreURL
    public static let smartDataModelsContextURL = BuiltInContexts.smartDataModelsURL

    /// - Parameters:
    ///   - preloaded: URL → document bytes (the configured local folder), never fetched.
    ///   - now: seconds on any monotonic scale (injected for tests).
    public init(loader: (any ContextLoader)?, preloaded: [String: [UInt8]] = [:], limits: Limits = Limits(),
                now: @escaping @Sendable () -> Double) throws(NGSILDError) {
        self.loader = loader
        self.limits = limits
        self.now = now
        var initial = State()
        let builtIn = [(BuiltInContexts.coreURL, BuiltInContexts.core),
                       (BuiltInContexts.smartDataModelsURL, BuiltInContexts.smartDataModels)]
        for (url, text) in builtIn {
            initial.documents[url] = CachedDocument(definitions: try Self.contextMember(of: Array(text.utf8), url: url),
                                                    fetchedAt: 0, lastUsed: 0, permanent: true)
        }
        for (url, bytes) in preloaded {
            initial.documents[url] = CachedDocument(definitions: try Self.contextMember(of: bytes, url: url),
                                                    fetchedAt: 0, lastUsed: 0, permanent: true)
        }
        guard case .object(let coreObject)? = initial.documents[BuiltInContexts.coreURL]?.definitions.first else {
            throw NGSILDError(.internalError, "the built-in core context is not an object")
        }
        coreDefinitions = coreObject
        core = try LDContext(definitions: [coreObject])
        let sdm = (initial.documents[BuiltInContexts.smartDataModelsURL]?.definitions ?? []).compactMap(\.objectValue)
        smartDataModels = try LDContext(definitions: sdm + [coreObject])
        state = Mutex(initial)
    }

    /// The context for a request's `@context` value (`nil`: none named, the core context).
    public func resolve(_ context: JSON?) async throws(NGSILDError) -> LDContext {
        guard let context, !context.isNull else { return core }
        let key = context.serialized
        let time = now()
        if let hit = state.withLock({ $0.processed[key] }), time - hit.at < limits.timeToLive { return hit.context }
        var definitions: [[String: JSON]] = []
        try await collect(context, into: &definitions, depth: 0)
        definitions.append(coreDefinitions)  // the core context last: it cannot be overridden
        let processed = try LDContext(definitions: definitions)
        state.withLock { s in
            if s.processed.count >= limits.maxDocuments * 4 { s.processed.removeAll(keepingCapacity: true) }
            s.processed[key] = (processed, time)
        }
        return processed
    }

    /// The context for a `Link` header's URL.
    public func resolve(url: String) async throws(NGSILDError) -> LDContext {
        try await resolve(.string(url))
    }

    private func collect(_ value: JSON, into definitions: inout [[String: JSON]], depth: Int) async throws(NGSILDError) {
        guard depth < 8 else { throw NGSILDError.badRequest("invalid @context: remote contexts nested deeper than 8 levels") }
        switch value {
        case .null: return
        case .object(let object): definitions.append(object)
        case .array(let items):
            for item in items { try await collect(item, into: &definitions, depth: depth) }
        case .string(let url):
            for member in try await document(url) { try await collect(member, into: &definitions, depth: depth + 1) }
        default:
            throw NGSILDError.badRequest("invalid @context: \(value.kindName) is neither a URL, an object nor an array of them")
        }
    }

    /// The `@context` member of the document at `url`, from the cache or fetched.
    func document(_ url: String) async throws(NGSILDError) -> [JSON] {
        if url == "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld" || Self.isCoreContextURL(url) {
            return [.object(coreDefinitions)]  // any version of the core context: the built-in one (v1.8)
        }
        let time = now()
        let cached: [JSON]? = state.withLock { s in
            guard var document = s.documents[url] else { return nil }
            guard document.permanent || time - document.fetchedAt < limits.timeToLive else { return nil }
            document.lastUsed = time
            s.documents[url] = document
            return document.definitions
        }
        if let cached { return cached }
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw NGSILDError.badRequest("invalid @context: \"\(url)\" is not an http(s) URL")
        }
        guard let loader else {
            throw NGSILDError(.ldContextNotAvailable, "the context \(url) is not preloaded and fetching remote contexts is off; "
                              + "add it to the contexts folder (contexts.folder in the aggregator config)")
        }
        let bytes: [UInt8]
        do {
            bytes = try await loader.fetch(url)
        } catch {
            throw NGSILDError(.ldContextNotAvailable, "cannot fetch the @context \(url): \(error). "
                              + "Fix: make it reachable from the aggregator, or preload it (contexts.folder)")
        }
        guard bytes.count <= limits.maxDocumentBytes else {
            throw NGSILDError(.ldContextNotAvailable, "the @context \(url) is larger than \(limits.maxDocumentBytes) bytes")
        }
        let definitions: [JSON]
        do {
            definitions = try Self.contextMember(of: bytes, url: url)
        } catch {
            throw NGSILDError(.ldContextNotAvailable, "the document at \(url) is not a JSON-LD context: \(error.detail)")
        }
        state.withLock { s in
            let fetched = s.documents.filter { !$0.value.permanent }
            if fetched.count >= limits.maxDocuments, let oldest = fetched.min(by: { $0.value.lastUsed < $1.value.lastUsed }) {
                s.documents[oldest.key] = nil
            }
            s.documents[url] = CachedDocument(definitions: definitions, fetchedAt: time, lastUsed: time, permanent: false)
        }
        return definitions
    }

    static func isCoreContextURL(_ url: String) -> Bool {
        url.hasPrefix("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context") && url.hasSuffix(".jsonld")
    }

    /// The `@context` member of a context document, as a list of entries.
    static func contextMember(of bytes: [UInt8], url: String) throws(NGSILDError) -> [JSON] {
        let document: JSON
        do { document = try JSON.parse(bytes) } catch { throw NGSILDError.badRequest("\(url): \(error)") }
        guard let member = document["@context"] else { throw NGSILDError.badRequest("\(url) has no @context member") }
        return member.asList
    }

    /// Documents in the cache now (built-in and preloaded included), for `/metrics` and tests.
    public var cachedDocuments: Int { state.withLock { $0.documents.count } }
}
