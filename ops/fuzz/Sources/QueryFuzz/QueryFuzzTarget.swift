import GemelloCore
import GemelloNGSILD

/// libFuzzer entry point for what the HTTP API parses out of a query string (ops/fuzz/query):
/// the `q` language (and its evaluation, where a client's `~=` pattern runs), type selectors,
/// `idPattern` (SafePattern), geo-query parameters, and JSON bodies. The input is split at
/// newlines into those parameters. Each must return a value or throw an `NGSILDError` (or the
/// JSON parser's error), never crash, and never run past libFuzzer's per-input timeout (a
/// regular expression that backtracks for exponential time would).
let entity = Entity(id: "urn:ngsi-ld:WeatherObserved:replay-milano-arpa:arpa-senato", types: ["WeatherObserved"], attributes: [
    "temperature": [Attribute(kind: .property, value: 3.7, observedAt: 1_483_225_200_000, unitCode: "CEL", createdAt: 0, modifiedAt: 0)],
    "name": [Attribute(kind: .property, value: "Milano Senato aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", createdAt: 0, modifiedAt: 0)],
    "refDevice": [Attribute(kind: .relationship, value: "urn:ngsi-ld:Device:replay-milano-arpa", createdAt: 0, modifiedAt: 0)],
], createdAt: 0, modifiedAt: 0)

func queryFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let parts = text.split(separator: "\n", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
    let part = { (i: Int) -> String in i < parts.count ? parts[i] : "" }
    if let query = try? Query.parse(part(0), expand: { $0 }) { _ = query.matches(entity) }
    if let types = try? TypeExpression.parse(part(1), expand: { $0 }) { _ = types.matches(entity.types) }
    if let pattern = try? SafePattern.compile(part(2), what: "idPattern") { _ = entity.id.wholeMatch(of: pattern) }
    if let coordinates = try? JSON.parse(part(4)) {
        _ = try? GeoQuery.parse(georel: part(3), geometry: "Polygon", coordinates: coordinates, property: "location")
        _ = try? GeoQuery.parse(georel: part(3), geometry: "Point", coordinates: coordinates, property: "location")
    }
    _ = try? JSON.parse(text)
    return 0
}
