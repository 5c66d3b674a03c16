import ArgumentParser
import Foundation
import GemelloAggregator
import GemelloAggregatorHTTP
import GemelloCore
import GemelloRules
import Logging
import Prometheus
import ServiceLifecycle

/// `gemello-aggregator --config FILE`: ingest, twin store, HTTP API, as one ServiceGroup.
@main
struct AggregatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemello-aggregator",
        abstract: "Ingest agents' batches into the twin and serve it over NGSI-LD.",
        version: GemelloVersion.current)

    @Option(name: .long, help: "The aggregator's YAML configuration (see aggregator-config/).")
    var config: String

    @Option(name: .long, help: "Override the broker URL (mqtts://host:port, or mqtt:// to a broker on this machine).")
    var broker: String?

    @Option(name: .long, help: "Override the store: a file path (store.kind sqlite, store.path) or postgres://user@host:port/database.")
    var store: String?

    @Option(name: .long, help: ArgumentHelp(
        "Keep the twin store and the API token file in this folder (made if missing) under their configured names, "
            + "instead of where the configuration says (/var/lib/gemello as shipped). Default: $GEMELLO_STATE_DIR.", valueName: "dir"))
    var stateDir: String?

    @Option(name: .long, help: "Override http.port (0 picks a free port).")
    var httpPort: Int?

    @Option(name: .long, help: "Write the HTTP port to this file once listening (for scripts using --http-port 0).")
    var portFile: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(name: .long, help: ArgumentHelp(
        "Print this agent's stored history and exit (no broker, no HTTP): one line per reading, "
            + "'<sensor>/<attribute> <tab> <ms since 1970> <tab> <value>', each series in observation order.",
        valueName: "agent"))
    var exportHistory: String?

    func run() async throws {
        if let agent = exportHistory { return try export(agent) }
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var configuration: AggregatorConfiguration
        do { configuration = try AggregatorConfiguration.load(path: config) } catch {
            Console.error("gemello-aggregator: invalid configuration: \(error)")
            throw ExitCode(78)
        }
        if let broker { configuration.broker.url = broker }
        do { _ = try configuration.broker.address() } catch {
            Console.error("gemello-aggregator: invalid configuration: \(error)")
            throw ExitCode(78)
        }
        try applyStateDirectory(&configuration, make: true)
        if let store {
            do { try configuration.overrideStore(store) } catch {
                Console.error("gemello-aggregator: \(error)")
                throw ExitCode(64)
            }
        }
        if let httpPort { configuration.httpPort = httpPort }
        let logger = Logger(label: "gemello.aggregator")
        let twin: TwinStore
        do { twin = try TwinStore.open(configuration) } catch {
            Console.error("gemello-aggregator: \(error)")
            throw ExitCode(74)
        }
        if twin.migratedReadings > 0 {
            logger.notice("twin store migrated to the columnar history", metadata: ["readings": "\(twin.migratedReadings)"])
        }
        let counters = IngestCounters()
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[AggregatorMetrics.batchLatencyLabel] =
            [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600].map { Duration.milliseconds(Int64($0 * 1000)) }
        factory.durationHistogramBuckets[AggregatorMetrics.readingDelayLabel] =
            AggregatorMetrics.readingDelayBuckets.map { Duration.milliseconds(Int64($0 * 1000)) }
        let metrics = AggregatorMetrics(factory: factory, agentLabelLimit: configuration.metricsAgentLabels)
        let ngsi: Twin
        do { ngsi = try await Twin.open(store: twin, configuration: configuration, counters: counters, metrics: metrics, logger: logger) } catch {
            Console.error("gemello-aggregator: \(error)")
            throw ExitCode(error.code == .configuration ? 78 : 74)
        }
        let alerts: AlertEngine
        do {
            try await ngsi.broker.forwardTelemetry(configuration.alerts.sinks, logger: logger)
            alerts = try AlertEngine(store: twin, configuration: configuration.alerts, projection: ngsi.projection, counters: counters,
                                     metrics: metrics, shared: configuration.shareGroup != nil, logger: logger)
        } catch {
            Console.error("gemello-aggregator: \(error)")
            throw ExitCode(error.code == .configuration ? 78 : 74)
        }
        logger.info("alerts ready", metadata: ["rules": "\(alerts.rules.count)", "sinks": "\(configuration.alerts.sinks.count)",
                                               "open": "\((try? twin.openAlerts().count) ?? 0)"])
        let sinks = SinkDispatcher(store: twin, outbox: alerts.outbox, owner: configuration.clientID, logger: logger)
        var enrolment: EnrolmentGate?
        if let path = configuration.enrolmentFile {
            do { enrolment = try EnrolmentGate(path: path, logger: logger) } catch {
                Console.error("gemello-aggregator: \(error)")
                throw ExitCode(78)
            }
        } else {
            logger.warning("security.enrolment is not set: batches are taken from any agent the broker lets publish (docs/security.md)")
        }
        let ingest = IngestService(configuration: configuration, store: twin, counters: counters, metrics: metrics,
                                   projection: ngsi.projection, alerts: alerts, enrolment: enrolment, logger: logger)
        let monitor = FleetMonitor(store: twin, configuration: configuration, counters: counters, metrics: metrics, alerts: alerts,
                                   logger: logger)
        let compactor = HistoryCompactor(store: twin, policy: configuration.history, interval: configuration.compactEvery,
                                         metrics: metrics, logger: logger)
        let portFile = self.portFile
        let host = configuration.httpHost
        let access: APIAccess
        do { access = try APIAccess(policy: configuration.api, logger: logger) } catch {
            Console.error("gemello-aggregator: \(error)")
            throw ExitCode(78)
        }
        if configuration.api.tokensFile == nil {
            logger.warning("http.tokens-file is not set: the HTTP API is open to everyone who can reach \(host):\(configuration.httpPort) (docs/security.md)")
        }
        let scheme = configuration.httpTLS == nil ? "http" : "https"
        let auth = configuration.api.tokensFile == nil ? "none" : "bearer tokens"
        do {
            let http = try AggregatorHTTP.application(store: twin, broker: ngsi.broker, counters: counters, configuration: configuration,
                                                      metrics: registry, alerts: alerts, access: access, logger: logger) { port in
                logger.info("HTTP API listening", metadata: ["url": "\(scheme)://\(host):\(port)",
                                                             "auth": "\(auth)"])
                if let portFile { try? "\(port)\n".write(toFile: portFile, atomically: true, encoding: .utf8) }
            }
            // Stops in reverse order: HTTP first, then the alert sinks and notifications (their outboxes
            // keep what is not yet delivered), the rules' ticks, the projection, history compaction, the
            // fleet monitor, then ingest (which commits its current batch).
            let group = ServiceGroup(configuration: .init(
                services: [.init(service: ingest), .init(service: monitor), .init(service: compactor), .init(service: ngsi.projection),
                           .init(service: alerts), .init(service: ngsi.notifications), .init(service: sinks), .init(service: http)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        } catch let error as AggregatorError where error.code == .configuration {
            Console.error("gemello-aggregator: \(error)")
            throw ExitCode(78)
        }
    }
}

extension AggregatorCommand {
    /// `--state-dir` or `$GEMELLO_STATE_DIR`: the store and token file in that folder (made when
    /// `make`: an export only reads).
    func applyStateDirectory(_ configuration: inout AggregatorConfiguration, make: Bool) throws {
        guard let folder = stateDir ?? ProcessInfo.processInfo.environment["GEMELLO_STATE_DIR"].flatMap({ $0.isEmpty ? nil : $0 }) else { return }
        if make {
            do { try FileText.makeFolder(folder) } catch {
                Console.error("gemello-aggregator: --state-dir: \(error.reason). Fix: name a folder this user may write")
                throw ExitCode(73)  // EX_CANTCREAT
            }
        }
        configuration.moveState(to: folder)
    }

    /// `--export-history AGENT`: the twin store's readings of one agent, for checks and exports.
    func export(_ agent: String) throws {
        var configuration: AggregatorConfiguration
        do { configuration = try AggregatorConfiguration.load(path: config) } catch {
            Console.error("gemello-aggregator: invalid configuration: \(error)")
            throw ExitCode(78)
        }
        try applyStateDirectory(&configuration, make: false)
        if let store {
            do { try configuration.overrideStore(store) } catch {
                Console.error("gemello-aggregator: \(error)")
                throw ExitCode(64)
            }
        }
        guard configuration.storeKind != .sqlite || FileManager.default.fileExists(atPath: configuration.storePath) else {
            Console.error("gemello-aggregator: no twin store at \(configuration.storePath). Fix: pass --store PATH or set store.path")
            throw ExitCode(66)
        }
        do {
            let twin = try TwinStore.open(configuration)
            var out = ""
            for series in try twin.seriesCounts(agent: agent).keys.sorted() {
                for (timestamp, value) in try twin.history(agent: agent, series: series) {
                    out += "\(series)\t\(timestamp)\t\(value)\n"
                    if out.utf8.count > 1 << 20 { FileHandle.standardOutput.write(Data(out.utf8)); out = "" }
                }
            }
            FileHandle.standardOutput.write(Data(out.utf8))
        } catch {
            Console.error("gemello-aggregator: \(error)")
            throw ExitCode(74)
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
