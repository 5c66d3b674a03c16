import GemelloCore
import GemelloNGSILD
import Testing

/// Expansion and compaction with the built-in contexts (ETSI GS CIM 009 clause 5.5.7; JSON-LD 1.1).
@Suite struct LDContextTests {
    let resolver = try! ContextResolver(loader: nil, now: { 0 })

    @Test func coreContextExpandsCoreTermsAndDefaultsTheRest() {
        let core = resolver.core
        #expect(core.expand("Property") == "https://uri.etsi.org/ngsi-ld/Property")
        #expect(core.expand("location") == "https://uri.etsi.org/ngsi-ld/location")
        #expect(core.expand("observedAt") == "https://uri.etsi.org/ngsi-ld/observedAt")
        // Not a core term: the core @vocab (default-context).
        #expect(core.expand("temperature") == "https://uri.etsi.org/ngsi-ld/default-context/temperature")
        #expect(core.compact("https://uri.etsi.org/ngsi-ld/default-context/temperature") == "temperature")
        #expect(core.compact("https://uri.etsi.org/ngsi-ld/location") == "location")
        // An IRI no term covers comes back whole (the spec: non-core terms as full IRIs).
        #expect(core.compact("https://uri.fiware.org/ns/data-models#temperature") == "https://uri.fiware.org/ns/data-models#temperature")
        #expect(core.expand("https://example.org/x") == "https://example.org/x")
        #expect(core.expand("ngsi-ld:Property") == "https://uri.etsi.org/ngsi-ld/Property")
        #expect(core.takesVocabValues("watchedAttributes"))
    }

    @Test func smartDataModelsTermsRoundTrip() {
        let sdm = resolver.smartDataModels
        // As the published context defines them (not all under one namespace).
        #expect(sdm.expand("temperature") == "https://smart-data-models.github.io/data-models/terms.jsonld#/definitions/temperature")
        #expect(sdm.expand("WeatherObserved") == "https://uri.fiware.org/ns/data-models#WeatherObserved")
        #expect(sdm.compact(sdm.expand("temperature")) == "temperature")
        #expect(sdm.compact(sdm.expand("AirQualityObserved")) == "AirQualityObserved")
        // Core terms cannot be overridden.
        #expect(sdm.expand("location") == "https://uri.etsi.org/ngsi-ld/location")
    }

    @Test func inlineContextsDefineTermsAndPrefixes() async throws {
        let context = try await resolver.resolve([
            "ex": "https://example.org/ns#",
            "speed": "ex:speed",
            "Car": ["@id": "https://example.org/ns#Car"],
        ] as JSON)
        #expect(context.expand("speed") == "https://example.org/ns#speed")
        #expect(context.expand("ex:brand") == "https://example.org/ns#brand")
        #expect(context.expand("Car") == "https://example.org/ns#Car")
        #expect(context.compact("https://example.org/ns#speed") == "speed")
        #expect(context.compact("https://example.org/ns#brand") == "ex:brand")
        #expect(context.expand("Property") == "https://uri.etsi.org/ngsi-ld/Property")
    }

    @Test func anyCoreContextURLIsTheBuiltInOne() async throws {
        let old = try await resolver.resolve(url: "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.3.jsonld")
        #expect(old.expand("temperature") == resolver.core.expand("temperature"))
    }

    @Test func anUnfetchableContextIsLdContextNotAvailable() async {
        do {
            _ = try await resolver.resolve(url: "http://127.0.0.1:9/nothing.jsonld")
            Issue.record("expected an error")
        } catch {
            #expect(error.kind == .ldContextNotAvailable && error.status == 503)
        }
    }

    @Test func malformedInlineContextsAreBadRequests() async {
        await #expect(throws: NGSILDError.self) { try await resolver.resolve(["term": 42] as JSON) }
        await #expect(throws: NGSILDError.self) { try await resolver.resolve(42 as JSON) }
    }
}

/// A loader that counts fetches (the document cache is what is tested; transport is tested in
/// the integration suite against a real HTTP server).
final class CountingLoader: ContextLoader, @unchecked Sendable {
    // @unchecked: the counter is only read after the awaited calls return.
    var fetches = 0
    let document: String
    init(_ document: String) { self.document = document }
    func fetch(_ url: String) async throws -> [UInt8] {
        fetches += 1
        return Array(document.utf8)
    }
}

@Suite struct ContextCacheTests {
    @Test func fetchedContextsAreCachedForTheirTimeToLive() async throws {
        let loader = CountingLoader(#"{"@context": {"speed": "https://example.org/speed"}}"#)
        let clock = ManualSeconds()
        let resolver = try ContextResolver(loader: loader, limits: .init(maxDocuments: 2, timeToLive: 60), now: { clock.value })
        for _ in 0..<3 { _ = try await resolver.resolve(url: "http://ctx.example/a.jsonld") }
        #expect(loader.fetches == 1)
        clock.value = 61
        let context = try await resolver.resolve(url: "http://ctx.example/a.jsonld")
        #expect(loader.fetches == 2)
        #expect(context.expand("speed") == "https://example.org/speed")
    }

    @Test func theCacheHoldsAtMostItsSize() async throws {
        let loader = CountingLoader(#"{"@context": {"x": "https://example.org/x"}}"#)
        let resolver = try ContextResolver(loader: loader, limits: .init(maxDocuments: 2, timeToLive: 600), now: { 0 })
        for name in ["a", "b", "c"] { _ = try await resolver.resolve(.array([.string("http://ctx.example/\(name).jsonld"), ["n": .string(name)]])) }
        #expect(resolver.cachedDocuments == 2 + 2)  // two fetched + the two built in
    }

    @Test func preloadedContextsAreNeverFetched() async throws {
        let resolver = try ContextResolver(loader: nil, preloaded: ["https://example.org/ctx.jsonld": Array(#"{"@context": {"speed": "https://example.org/speed"}}"#.utf8)],
                                           now: { 0 })
        #expect(try await resolver.resolve(url: "https://example.org/ctx.jsonld").expand("speed") == "https://example.org/speed")
    }
}

final class ManualSeconds: @unchecked Sendable {
    // @unchecked: set and read by one test task.
    var value: Double = 0
}
