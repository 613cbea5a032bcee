@testable import EventStreamKit
@testable import EventStreamHTTP
import Synchronization
import Testing

/// The snippet of Docs/HTTPServer.md, compiled and run against a loopback client.
@Suite("Docs/HTTPServer.md snippet")
struct HTTPGuideTests {
    /// Stands in for the app's own authentication.
    struct Users: Sendable {
        func user(forToken token: String) -> String? { token == "Bearer t-alice" ? "alice" : nil }
    }

    @Test func servingEvents() async throws {
        let users = Users()
        let note = try EventType<String>("note", marshal: .text)

        let hub = EventServer<String>()
        var router = HTTPRouter()

        router.events("/events", from: hub, channels: { request in
            Set(request.query["channels"]?.split(separator: ",").map(String.init) ?? [])
        }) { request in
            // Authenticate here: a thrown HTTPError answers with its status, and no stream opens.
            guard let token = request.headers["Authorization"], let user = users.user(forToken: token) else {
                throw HTTPError(.unauthorized)
            }
            return user
        }
        router.post("/notify") { request in
            try await hub.send(String(decoding: request.body, as: UTF8.self), as: note, to: .everyone)
            return HTTPResponse(status: .accepted)
        }

        var configuration = HTTPServer.Configuration(host: "127.0.0.1", port: 0)
        configuration.logger = .silent
        let server = try HTTPServer(router: router, configuration: configuration)
        let running = Task { await server.run() }
        let poller = try Poller()

        let stranger = try LoopbackClient(port: server.port, poller: poller)
        try await stranger.send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await stranger.readToEnd().hasPrefix("HTTP/1.1 401 "))

        let alice = try LoopbackClient(port: server.port, poller: poller)
        try await alice.send("GET /events?channels=a,b HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer t-alice\r\n\r\n")
        _ = try await alice.read { $0.contains("\r\n\r\n") }
        #expect(await hub.clientCount(channel: "b") == 1)
        let poster = try LoopbackClient(port: server.port, poller: poller)
        try await poster.send("POST /notify HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        #expect(try await poster.readToEnd().hasPrefix("HTTP/1.1 202 "))
        #expect(try await alice.read { $0.contains("data: hello\n\n") }.contains("event: note"))

        server.shutdown()
        await running.value
        for client in [stranger, alice, poster] { client.close() }
        await poller.shutdown()
    }
}

/// Docs/HTTPServer.md, "Hooks for metrics": the observer, compiled as the guide shows it.
final class Refusals: HTTPServerObserver {
    let byStatus = Mutex<[Int: Int]>([:])

    func requestRefused(status: HTTPStatus, reason: String, request: HTTPRequest?) {
        byStatus.withLock { $0[status.code, default: 0] += 1 }
    }
}

@Suite("Docs/HTTPServer.md hooks snippet")
struct HTTPHooksGuideTests {
    @Test("the guide's observer counts refusals by status")
    func hooksSnippet() async throws {
        let refusals = Refusals()
        let server = try TestServer.start(configure: { configuration in
            // As in the guide, on the test's configuration:
            configuration.observer = refusals
        })
        _ = try await server.exchange("GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        _ = try await server.exchange("GET /events HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(refusals.byStatus.withLock { $0 } == [404: 1, 401: 1])
        await server.stop()
    }
}
