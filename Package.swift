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
        .executable(name: "EventStreamDemo", targets: ["EventStreamDemo"]),
    ],
    targets: [
        .target(name: "CEventStreamSystem"),
        .target(
            name: "EventStreamKit",
            dependencies: [.target(name: "CEventStreamSystem", condition: .when(platforms: [.linux]))],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "EventStreamDemo",
            dependencies: ["EventStreamKit"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EventStreamKitTests",
            // The demo is a dependency so that `swift test` builds it: its commands are tested
            // as a subprocess.
            dependencies: ["EventStreamKit", "EventStreamDemo"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
