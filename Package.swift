// swift-tools-version: 6.0
//
// Gemello: sensor telemetry from the edge of Milan's network into its digital twin.
// The target list mirrors the architecture (docs/ARCHITECTURE.md), bottom to top:
// C shims -> one thin Swift wrapper per C library -> pure core -> agent / aggregator
// libraries -> aggregator HTTP -> thin executables. Dependencies only point down.
import PackageDescription

/// Our own targets' settings. With GEMELLO_WERROR=1 in the environment (ops/test under CI=true)
/// a warning in our code is an error; the dependencies' warnings are theirs and stay warnings.
let ownWarnings: [SwiftSetting] = Context.environment["GEMELLO_WERROR"] == "1" ? [.unsafeFlags(["-warnings-as-errors"])] : []
let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")] + ownWarnings
/// The agent's inputs, one folder each in Sources/GemelloInputs (see InputRegistry.swift).
let inputFolders = ["CSVReplay", "Exec", "InfluxListener", "Modbus", "MQTTSubscribe", "Simulated", "System"]

let package = Package(
    name: "Gemello",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gemello-agent", targets: ["gemello-agent"]),
        .executable(name: "gemello-aggregator", targets: ["gemello-aggregator"]),
        .executable(name: "gemello", targets: ["gemello"]),
        // The core (readings, batches, wire format v1) for other Swift consumers and ops/fuzz.
        .library(name: "GemelloCore", targets: ["GemelloCore"]),
        // NGSI-LD without I/O (the query language, contexts, entities), for ops/fuzz/query.
        .library(name: "GemelloNGSILD", targets: ["GemelloNGSILD"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        // Bearer tokens on the HTTP API (HTTPFields.bearer).
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        // Already in the graph through Hummingbird; named for NIOHTTPTypes (the slow-client deadline handler).
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Already in the graph through Hummingbird; named for HTTPField.Name (Link, NGSILD-Results-Count).
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // The twin store's PostgreSQL backend (store.kind: postgres).
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // Already in the graph through Hummingbird and postgres-nio; named for NIOCore (futures).
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
    ],
    targets: [
        // MARK: C shims (system libraries, found through pkg-config)
        .systemLibrary(name: "CMosquitto", pkgConfig: "libmosquitto",
                       providers: [.apt(["libmosquitto-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CModbus", pkgConfig: "libmodbus",
                       providers: [.apt(["libmodbus-dev"])]),

        // MARK: One thin Swift wrapper per C library: the only importer of its shim
        .target(name: "GemelloMosquitto", dependencies: ["CMosquitto"], swiftSettings: strict),
        .target(name: "GemelloSQLite", dependencies: ["CSQLite"], swiftSettings: strict),
        .target(name: "GemelloZlib", dependencies: ["CZlib"], swiftSettings: strict),
        .target(name: "GemelloModbus", dependencies: ["CModbus"], swiftSettings: strict),

        // MARK: Pure core: readings, batches, wire format, topics, protocol messages, config
        .target(name: "GemelloCore", dependencies: ["GemelloZlib"], swiftSettings: strict),
        // The twin store's protocol (connections, rows, values; no I/O) and its two backends.
        .target(name: "GemelloStorage", swiftSettings: strict),
        .target(name: "GemelloStorageSQLite", dependencies: ["GemelloStorage", "GemelloSQLite"], swiftSettings: strict),
        .target(name: "GemelloStoragePostgres", dependencies: [
            "GemelloStorage",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        // NGSI-LD without I/O: JSON, JSON-LD contexts, entities, the query language, geo-queries.
        .target(name: "GemelloNGSILD", dependencies: ["GemelloCore"], swiftSettings: strict),
        .target(name: "GemelloRules", dependencies: ["GemelloCore"], swiftSettings: strict),

        // How agent, aggregator and CLI reach the broker: URL, TLS, identity, the loopback rule.
        .target(name: "GemelloBrokerAccess", dependencies: ["GemelloCore", "GemelloMosquitto"], swiftSettings: strict),

        // The agent's inputs: one folder each (code, README.md, sample.yaml), the core only.
        .target(name: "GemelloInputs", dependencies: ["GemelloCore"],
                exclude: inputFolders.flatMap { ["\($0)/README.md", "\($0)/sample.yaml"] }, swiftSettings: strict),

        // MARK: Daemons as libraries (they never import each other)
        .target(name: "GemelloAgent", dependencies: [
            "GemelloCore", "GemelloInputs", "GemelloSQLite", "GemelloMosquitto", "GemelloModbus", "GemelloBrokerAccess",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ], swiftSettings: strict),
        .target(name: "GemelloAggregator", dependencies: [
            "GemelloCore", "GemelloNGSILD", "GemelloRules", "GemelloStorage", "GemelloStorageSQLite", "GemelloStoragePostgres", "GemelloMosquitto", "GemelloBrokerAccess",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ], swiftSettings: strict),
        .target(name: "GemelloAggregatorHTTP", dependencies: [
            "GemelloAggregator", "GemelloCore", "GemelloNGSILD", "GemelloRules",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdHTTP2", package: "hummingbird"),
            .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ], swiftSettings: strict),

        // MARK: Testing kit shared by all test targets (broker harness, datasets, fake clock)
        .target(name: "GemelloTesting", dependencies: ["GemelloCore"], swiftSettings: strict),

        // MARK: Thin executables
        // The field daemon parses its few flags by hand: swift-argument-parser would bring
        // FoundationEssentials into the process (docs/BENCHMARKS.md, "Agent footprint").
        .executableTarget(name: "gemello-agent", dependencies: [
            "GemelloAgent", "GemelloInputs", "GemelloCore",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        .executableTarget(name: "gemello-aggregator", dependencies: [
            "GemelloAggregator", "GemelloAggregatorHTTP", "GemelloCore", "GemelloRules",
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], swiftSettings: strict),
        .executableTarget(name: "gemello", dependencies: [
            "GemelloAgent", "GemelloInputs", "GemelloCore", "GemelloMosquitto", "GemelloBrokerAccess", "GemelloRules",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ], swiftSettings: strict),

        // Benchmarks behind docs/BENCHMARKS.md (run through ops/bench/*).
        .executableTarget(name: "gemello-bench", dependencies: [
            "GemelloAgent", "GemelloInputs", "GemelloAggregator", "GemelloCore", "GemelloRules", "GemelloStorage", "GemelloStoragePostgres", "GemelloTesting",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], swiftSettings: strict),

        // MARK: Tests
        .testTarget(name: "GemelloCoreTests", dependencies: ["GemelloCore", "GemelloTesting"], swiftSettings: ownWarnings),
        .testTarget(name: "GemelloNGSILDTests", dependencies: ["GemelloNGSILD", "GemelloCore"], swiftSettings: ownWarnings),
        .testTarget(name: "GemelloRulesTests", dependencies: ["GemelloRules", "GemelloCore", "GemelloTesting"], swiftSettings: ownWarnings),
        .testTarget(name: "GemelloInputsTests", dependencies: ["GemelloInputs", "GemelloCore", "GemelloTesting"], exclude: ["Golden"], swiftSettings: ownWarnings),
        .testTarget(name: "GemelloAgentTests", dependencies: ["GemelloAgent", "GemelloInputs", "GemelloBrokerAccess", "GemelloCore", "GemelloTesting"], swiftSettings: ownWarnings),
        .testTarget(name: "GemelloAggregatorTests", dependencies: [
            "GemelloAggregator", "GemelloCore", "GemelloSQLite", "GemelloStorage", "GemelloStorageSQLite", "GemelloStoragePostgres", "GemelloTesting",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: ownWarnings),
        .testTarget(name: "GemelloIntegrationTests", dependencies: [
            "GemelloAgent", "GemelloInputs", "GemelloAggregator", "GemelloAggregatorHTTP", "GemelloCore", "GemelloMosquitto", "GemelloNGSILD", "GemelloRules", "GemelloSQLite", "GemelloStorage", "GemelloStoragePostgres", "GemelloTesting",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], swiftSettings: ownWarnings),
    ]
)
