// swift-tools-version:6.0
// A plain Vapor 4 SSE peer for ../shared/bench, built like its hummingbird-sse peer.
// Benchmarks/compare.sh and Benchmarks/run-all.sh copy this folder into the bench's peers/
// and build it there (swift build -c release); it is not part of the EventStreamKit package.
import PackageDescription

let package = Package(
    name: "vapor-sse",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(url: "https://github.com/vapor/vapor", from: "4.122.3"),
    ],
    targets: [
        .executableTarget(
            name: "VaporSSE",
            dependencies: [.product(name: "Vapor", package: "vapor")]
        )
    ]
)
