// swift-tools-version: 6.0
import PackageDescription

// Interoperability checks: other people's SSE code against ours, both ways. Run ./test.sh.
let package = Package(
    name: "Interop",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "EventStreamKit", path: "../.."),
        .package(url: "https://github.com/apple/swift-openapi-runtime", from: "1.13.4"),
    ],
    targets: [
        // A failure type and a deadline, shared by both checks.
        .target(name: "InteropSupport"),
        // swift-openapi-runtime's SSE decoder reads EventStreamKit's HTTPServer, and the
        // two parsers are compared on a corpus of edge cases.
        .executableTarget(
            name: "OpenAPIReadsHub",
            dependencies: [
                "InteropSupport",
                .product(name: "EventStreamKit", package: "EventStreamKit"),
                .product(name: "EventStreamHTTP", package: "EventStreamKit"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
            ]
        ),
        // EventStreamKit's EventSource POSTs to an OpenAI-style endpoint (chat_server.py).
        .executableTarget(
            name: "ChatCompletionsClient",
            dependencies: ["InteropSupport", .product(name: "EventStreamKit", package: "EventStreamKit")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
