import GemelloCore
import GemelloNGSILD
import Testing

/// Client regular expressions that could backtrack for exponential time are refused (403
/// TooComplexQuery); ordinary id and text patterns compile.
@Suite struct SafePatternTests {
    @Test(arguments: ["urn:ngsi-ld:Building:.*", "^urn:ngsi-ld:WeatherObserved:replay-[a-z]+:.*$", "(ab)+", "(a|b){2}",
                      "tower-(duomo|navigli)-0[0-9]", "[(+*)]+", "\\(a+\\)+", "a{2,5}b?", ".*sewer.*"])
    func ordinaryPatternsCompile(_ pattern: String) throws {
        #expect(SafePattern.problem(in: pattern) == nil)
        _ = try SafePattern.compile(pattern, what: "idPattern")
    }

    @Test(arguments: ["(a+)+$", "(.*)*x", "(a|aa)+$", "(\\w+\\s?)+$", "((ab)*c)*", "(x+x+)+y", "(a|b)*", "(a)\\1", "a*b*c*d*e*",
                      String(repeating: "a", count: 257)])
    func catastrophicPatternsAreRefused(_ pattern: String) {
        #expect(SafePattern.problem(in: pattern) != nil)
        #expect(throws: NGSILDError.self) { _ = try SafePattern.compile(pattern, what: "idPattern") }
        do { _ = try SafePattern.compile(pattern, what: "idPattern") } catch {
            #expect(error.kind == .tooComplexQuery || pattern.count > 256)
        }
    }

    /// The same guard sits in the query language's ~= and !~=.
    @Test func queryOperatorsUseIt() {
        #expect(throws: NGSILDError.self) { _ = try Query.parse("name~=(a+)+$", expand: { $0 }) }
        #expect((try? Query.parse("name~=^Gratt.*", expand: { $0 })) != nil)
    }
}
