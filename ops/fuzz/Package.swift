// swift-tools-version: 6.0
//
// The fuzz targets, in their own package so the main build never needs libFuzzer: the wire-format
// decoder (ops/fuzz/wire --minutes N) and the HTTP API's query parsers (ops/fuzz/query --minutes N),
// each built with -sanitize=fuzzer,address by its script.
import PackageDescription

let package = Package(
    name: "GemelloFuzz",
    dependencies: [.package(name: "Gemello", path: "../..")],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(name: "WireFuzz", dependencies: ["FuzzDriver", .product(name: "GemelloCore", package: "Gemello")]),
        .executableTarget(name: "QueryFuzz", dependencies: ["FuzzDriver", .product(name: "GemelloCore", package: "Gemello"), .product(name: "GemelloNGSILD", package: "Gemello")]),
    ]
)
