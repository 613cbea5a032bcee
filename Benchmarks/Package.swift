// swift-tools-version: 6.0
import PackageDescription

// Benchmarks live in their own package so the root one keeps no extra targets or
// dependencies. Run from the repository root:
//   swift run -c release --package-path Benchmarks WireBenchmarks
//   swift run -c release --package-path Benchmarks FanoutBenchmarks
let package = Package(
    name: "EventStreamKitBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "EventStreamKit", path: "..")],
    targets: [
        .target(name: "BenchmarkSupport", path: "Sources/BenchmarkSupport"),
        .executableTarget(
            name: "FanoutBenchmarks",
            dependencies: ["BenchmarkSupport", .product(name: "EventStreamKit", package: "EventStreamKit")]
        ),
        .target(name: "CMallocStats", path: "Sources/CMallocStats"),
        .executableTarget(
            name: "IdleMemory",
            dependencies: [
                "CMallocStats",
                .product(name: "EventStreamKit", package: "EventStreamKit"),
                .product(name: "EventStreamHTTP", package: "EventStreamKit"),
            ]
        ),
        .executableTarget(
            name: "Soak",
            dependencies: [.product(name: "EventStreamKit", package: "EventStreamKit")]
        ),
        .executableTarget(
            name: "WireBenchmarks",
            dependencies: ["BenchmarkSupport", .product(name: "EventStreamKit", package: "EventStreamKit")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
