// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "VaporNotifications",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "EventStreamKit", path: "../.."),
        .package(url: "https://github.com/vapor/vapor", from: "4.122.3"),
    ],
    targets: [
        .executableTarget(
            name: "VaporNotifications",
            dependencies: [
                .product(name: "EventStreamKit", package: "EventStreamKit"),
                .product(name: "Vapor", package: "vapor"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
