@testable import GemelloAggregator
import GemelloCore
import GemelloTesting
import Testing

@Suite struct AggregatorConfigurationTests {
    /// The sample configuration in the repository is valid and states the defaults.
    @Test func theSampleConfigurationLoads() throws {
        let c = try AggregatorConfiguration.load(path: Repository.root.appendingPathComponent("aggregator-config/aggregator.yaml").path)
        #expect(c.history == HistoryStore.Policy())
        #expect(c.compactEvery == .seconds(5))
        #expect(c.ngsiMaxInstances == 10_000)
    }

    @Test func historyRetentionPerEntityType() throws {
        let c = try AggregatorConfiguration.decode("""
            history:
              chunk-points: 8192
              seal-after: 2m
              retention:
                TrafficFlowObserved: 400d
                "*": 3650d
              rollup-retention: 36500d
            """, file: "a.yaml")
        #expect(c.history.chunkPoints == 8192 && c.history.sealAfter == .seconds(120))
        #expect(c.history.retention(of: "TrafficFlowObserved") == .seconds(400 * 86_400))
        #expect(c.history.retention(of: "WeatherObserved") == .seconds(3650 * 86_400))
        #expect(c.history.rollupRetention == .seconds(36_500 * 86_400))
        #expect(HistoryStore.Policy().retention(of: "WeatherObserved") == nil)
    }

    @Test(arguments: [
        ("history:\n  chunk-points: 10\n", "history.chunk-points"),
        ("history:\n  retention:\n    WeatherObserved: soon\n", "history.retention.WeatherObserved"),
        ("history:\n  retention:\n    WeatherObserved: 1s\n", "history.retention.WeatherObserved"),
        ("history:\n  seal-afer: 1m\n", "history.seal-afer"),
    ])
    func badHistorySettingsNameTheKey(text: String, key: String) {
        do {
            _ = try AggregatorConfiguration.decode(text, file: "a.yaml")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.key == key, "\(error)")
            #expect(error.fix != nil)
        }
    }
}
