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
    ],
    targets: [
        .executableTarget(
            name: "HummingbirdNotifications",
            dependencies: [
                .product(name: "EventStreamKit", package: "EventStreamKit"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
