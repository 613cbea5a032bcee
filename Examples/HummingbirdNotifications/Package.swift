// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "HummingbirdNotifications",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "EventStreamKit", path: "../.."),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        // Already in Hummingbird's graph; named here to run the hub beside the app (see App.swift).
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        // The hub's observer hooks as swift-log lines and swift-metrics figures, exported on
        // `/metrics` by swift-prometheus (see EventStreamMetrics.swift).
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Already in Hummingbird's graph; named for `EventLoop` (see EventLoopExecutor.swift).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "HummingbirdNotifications",
            dependencies: [
                .product(name: "EventStreamKit", package: "EventStreamKit"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
