// swift-tools-version: 6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "EventStreamKit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "EventStreamKit", targets: ["EventStreamKit"]),
        .library(name: "EventStreamHTTP", targets: ["EventStreamHTTP"]),
        .executable(name: "EventStreamDemo", targets: ["EventStreamDemo"]),
    ],
    targets: [
        .target(name: "CEventStreamSystem"),
        .target(
            name: "EventStreamKit",
            dependencies: [.target(name: "CEventStreamSystem", condition: .when(platforms: [.linux]))],
            swiftSettings: swiftSettings
        ),
        // The built-in HTTP/1.1 server: its own module, so that an app embedding the hub in
        // Hummingbird or Vapor imports no `HTTP…` name of ours (Docs/Decisions/0011-modules-by-role.md).
        .target(
            name: "EventStreamHTTP",
            dependencies: ["EventStreamKit"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "EventStreamDemo",
            dependencies: ["EventStreamKit", "EventStreamHTTP"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EventStreamKitTests",
            // The demo is a dependency so that `swift test` builds it: its commands are tested
            // as a subprocess.
            dependencies: ["EventStreamKit", "EventStreamHTTP", "EventStreamDemo"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
