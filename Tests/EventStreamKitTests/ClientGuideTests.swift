import Foundation
import Testing
@testable import EventStreamKit

/// The snippets of Docs/Client.md, compiled and run against the library's own server.
@Suite("Docs/Client.md snippets")
struct ClientGuideTests {
    struct Notification: Codable, Sendable { var title: String }

    @Test func readingAStream() async throws {
        let server = try TestServer.start()
        let url = "http://127.0.0.1:\(server.port)/events?user=alice"
        let hub = server.hub
        let sender = Task {
            try await waitUntil("alice") { await hub.clientCount(source: "alice") == 1 }
            _ = try await hub.send(ServerSentEvent(event: "notification", data: #"{"title":"Hi"}"#), to: .source("alice"))
            _ = try await hub.send(ServerSentEvent(data: "stop"), to: .source("alice"))
        }
        var printed: [String] = []
        func print(_ items: Any...) { printed.append(items.map { "\($0)" }.joined(separator: " ")) }

        // Docs/Client.md: "Reading a stream"
        var configuration = EventSource.Configuration()
        configuration.backoff = .exponential(maximum: .seconds(30))
        let source = try EventSource(
            url: url,
            headers: ["Authorization": "Bearer t-alice"],
            lastEventID: "",  // or the last ID your app stored, to resume after a restart
            configuration: configuration
        )
        for try await event in source {
            print(event.type, event.data, event.lastEventID)
            if event.data == "stop" { source.close() }  // ends the loop; any task may call it
        }
        // end of snippet

        try await sender.value
        #expect(printed.count == 2)
        #expect(printed.first?.hasPrefix(#"notification {"title":"Hi"} "#) == true)
        #expect(source.readyState == .closed)
        await server.stop()
    }

    @Test func typedValues() async throws {
        let server = try TestServer.start()
        let url = "http://127.0.0.1:\(server.port)/events?user=bob"
        let hub = server.hub
        let sender = Task {
            try await waitUntil("bob") { await hub.clientCount(source: "bob") == 1 }
            let notification = try EventType<Notification>("notification", marshal: .json())
            _ = try await hub.send(Notification(title: "You have mail"), as: notification, to: .source("bob"))
        }
        var titles: [String] = []

        // Docs/Client.md: "Typed events"
        let source = try EventSource(url: url)
        for try await notification in source.values(of: "notification", as: .json(Notification.self)) {
            titles.append(notification.title)
            break
        }
        // end of snippet

        try await sender.value
        #expect(titles == ["You have mail"])
        await server.stop()
    }

    @Test("the POST, header-provider and error-policy snippets compile and build a closed source without I/O")
    func postProviderAndPolicySnippets() async throws {
        actor Tokens { func current() async throws -> String { "t" } }
        let tokens = Tokens()
        var printed: [String] = []
        func print(_ item: String) { printed.append(item) }

        // Docs/Client.md: "POST streams (LLM and MCP APIs)"
        var request = EventSource.Request(url: URL(string: "https://api.example.com/v1/chat/completions")!)
        request.method = "POST"
        request.headers = ["Content-Type": "application/json", "Authorization": "Bearer key"]
        request.body = Array(#"{"stream":true}"#.utf8)
        request.isRetryable = false  // a completion must not be requested twice
        let source = try EventSource(request: request)
        source.close()  // (not in the guide: the test makes no request)
        for try await event in source {
            if event.data == "[DONE]" { break }
            print(event.data)
        }
        // end of snippet
        #expect(printed.isEmpty)

        // Docs/Client.md: "Refreshing credentials"
        var configuration = EventSource.Configuration()
        configuration.headerProvider = {
            ["Authorization": "Bearer \(try await tokens.current())"]
        }
        // end of snippet
        #expect(try await configuration.headerProvider?()["Authorization"] == "Bearer t")

        // Docs/Client.md: "Errors, the error policy and state changes"
        configuration.errorPolicy = EventSource.ErrorPolicy { failure, attempt in
            switch failure {
            case .status(503, let headers):
                let seconds = headers["Retry-After"].flatMap { Int($0) } ?? 5
                return attempt <= 10 ? .retryAfter(.seconds(seconds)) : .stop
            default:
                return EventSource.ErrorPolicy.standard.decide(failure, attempt: attempt)
            }
        }
        // end of snippet
        #expect(configuration.errorPolicy.decide(.status(503, headers: ["Retry-After": "7"]), attempt: 1) == .retryAfter(.seconds(7)))
        #expect(configuration.errorPolicy.decide(.status(503, headers: [:]), attempt: 11) == .stop)
        #expect(configuration.errorPolicy.decide(.endOfStream, attempt: 1) == .retry)
    }
}
