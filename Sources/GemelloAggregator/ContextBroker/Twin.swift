import Foundation
import GemelloCore
import GemelloNGSILD
import Logging
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The twin's NGSI-LD side, assembled from the configuration: the context resolver (built-in,
/// preloaded and fetched contexts), the broker, and the projection of telemetry into it.
public struct Twin: Sendable {
    public let broker: ContextBroker
    public let projection: TwinProjection
    public let subscriptions: SubscriptionManager
    /// Delivers notifications (a `Service`: run it in the aggregator's group).
    public let notifications: NotificationDispatcher

    /// Opens the broker over the twin store's file and loads every entity (telemetry, devices,
    /// client data) into memory.
    public static func open(store: TwinStore, configuration: AggregatorConfiguration, counters: IngestCounters? = nil,
                            metrics: AggregatorMetrics? = nil, clock: any WallClock = SystemWallClock(),
                            logger: Logger) async throws(AggregatorError) -> Twin {
        let preloaded = try preloadedContexts(configuration.contextsFolder)
        let resolver: ContextResolver
        do {
            resolver = try ContextResolver(
                loader: configuration.contextsFetch ? HTTPContextLoader(timeout: configuration.contextsFetchTimeout) : nil,
                preloaded: preloaded,
                limits: .init(maxDocuments: configuration.contextsCacheSize, timeToLive: configuration.contextsCacheTTL.seconds),
                now: { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 })
        } catch {
            throw AggregatorError(.configuration, "contexts: \(error.detail)")
        }
        var limits = ContextBroker.Limits()
        limits.defaultLimit = configuration.ngsiDefaultLimit
        limits.maxLimit = configuration.ngsiMaxLimit
        limits.maxBatch = configuration.ngsiMaxBatch
        limits.maxInstances = configuration.ngsiMaxInstances
        let broker = try ContextBroker(store: store, contexts: resolver, limits: limits, clock: clock,
                                       shared: configuration.shareGroup != nil)
        let subscriptions = try await SubscriptionManager(documents: broker.documents, contexts: resolver,
                                                          outboxLimit: configuration.outboxLimit, metrics: metrics)
        broker.attach(subscriptions)
        let notifications = NotificationDispatcher(manager: subscriptions, broker: broker, clock: clock, logger: logger,
                                                   owner: configuration.clientID, shared: configuration.shareGroup != nil,
                                                   mqttCAFile: configuration.subscriptionsMQTTCAFile)
        let projection = TwinProjection(store: store, broker: broker, configuration: configuration, counters: counters,
                                        clock: clock, logger: logger)
        try projection.loadAll()
        logger.info("twin loaded", metadata: ["entities": "\(broker.entityCount)", "subscriptions": "\(subscriptions.count)",
                                              "queuedNotifications": "\(subscriptions.outboxCount.load(ordering: .relaxed))",
                                              "preloadedContexts": "\(preloaded.count)"])
        return Twin(broker: broker, projection: projection, subscriptions: subscriptions, notifications: notifications)
    }

    /// The documents of `folder/index.txt` (`<URL> <file>` per line; `#` comments).
    static func preloadedContexts(_ folder: String?) throws(AggregatorError) -> [String: [UInt8]] {
        guard let folder else { return [:] }
        let indexPath = folder + "/index.txt"
        guard let index = try? String(contentsOfFile: indexPath, encoding: .utf8) else {
            throw AggregatorError(.configuration, "contexts.folder: cannot read \(indexPath). Fix: list the preloaded contexts there "
                                  + "as '<URL> <file>' lines, or remove contexts.folder")
        }
        var out: [String: [UInt8]] = [:]
        for (number, line) in index.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.isEmpty { continue }
            guard fields.count == 2 else {
                throw AggregatorError(.configuration, "\(indexPath):\(number + 1): expected '<URL> <file>', got '\(line)'")
            }
            let path = folder + "/" + fields[1]
            guard let data = FileManager.default.contents(atPath: path) else {
                throw AggregatorError(.configuration, "\(indexPath):\(number + 1): cannot read \(path). Fix: put the context file there")
            }
            out[String(fields[0])] = Array(data)
        }
        return out
    }
}

/// Fetches remote JSON-LD contexts over HTTP(S) (URLSession), with a timeout.
struct HTTPContextLoader: ContextLoader {
    let timeout: Duration

    func fetch(_ url: String) async throws -> [UInt8] {
        guard let target = URL(string: url) else { throw AggregatorError(.configuration, "not a URL: \(url)") }
        var request = URLRequest(url: target, timeoutInterval: timeout.seconds)
        request.setValue("application/ld+json, application/json", forHTTPHeaderField: "Accept")
        // URLSession's own timeout is per idle interval; the race bounds the whole fetch.
        struct FetchError: Error, CustomStringConvertible { let description: String }
        let (data, status): (Data, Int)
        do {
            (data, status) = try await withThrowingTaskGroup(of: (Data, Int)?.self) { group in
            group.addTask { [request] in
                let (data, response) = try await URLSession.shared.data(for: request)
                return (data, (response as? HTTPURLResponse)?.statusCode ?? 200)
            }
            group.addTask { try await Task.sleep(for: timeout); return nil }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let result = first else {
                throw AggregatorError(.configuration, "no answer within \(timeout.seconds) s")
            }
            return result
        }
        } catch let error as AggregatorError {
            throw error
        } catch {
            throw FetchError(description: (error as NSError).localizedDescription)
        }
        guard (200..<300).contains(status) else { throw AggregatorError(.configuration, "HTTP \(status) from \(url)") }
        return Array(data)
    }
}
