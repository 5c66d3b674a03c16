// swift-tools-version: 6.0
//
// The wire-format fuzz target, in its own package so the main build never needs libFuzzer.
// Run it with ops/fuzz/wire --minutes N (which builds it with -sanitize=fuzzer,address).
import PackageDescription

let package = Package(
    name: "GemelloFuzz",
    dependencies: [.package(name: "Gemello", path: "../..")],
    targets: [
        .executableTarget(name: "WireFuzz", dependencies: [.product(name: "GemelloCore", package: "Gemello")]),
    ]
)
