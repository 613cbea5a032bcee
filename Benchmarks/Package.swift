// swift-tools-version: 6.0
import PackageDescription

// Benchmarks live in their own package so the root one keeps no extra targets or
// dependencies. Run from the repository root:
//   swift run -c release --package-path Benchmarks WireBenchmarks
let package = Package(
    name: "EventStreamKitBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "EventStreamKit", path: "..")],
    targets: [
        .target(name: "BenchmarkSupport", path: "Sources/BenchmarkSupport"),
        .executableTarget(
            name: "WireBenchmarks",
            dependencies: ["BenchmarkSupport", .product(name: "EventStreamKit", package: "EventStreamKit")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
