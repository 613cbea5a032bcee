@testable import EventStreamKit
import Testing

/// The README's example, kept here so that it compiles and says what it prints.
@Suite("README example")
struct ReadmeExampleTests {
    struct Note: Codable, Sendable { var title: String }

    @Test func wireExample() throws {
        let event = try ServerSentEvent(id: "7", event: "greeting", data: "hello\nworld")
        let frame = EventFrame(event)
        #expect(String(decoding: frame.bytes, as: UTF8.self) == "id: 7\nevent: greeting\ndata: hello\ndata: world\n\n")

        let note = try EventMarshal<Note>.json().event(Note(title: "Hi"), event: "note")

        var parser = EventStreamParser()
        var printed: [String] = []
        for element in try parser.parse(frame.bytes + note.encoded) {
            if case .event(let message) = element {
                printed.append("\(message.type) \(message.data) \(message.lastEventID)")
            }
        }
        #expect(printed == ["greeting hello\nworld 7", "note {\"title\":\"Hi\"} 7"])
    }
}

extension ReadmeExampleTests {
    struct Notification: Codable, Sendable { var title: String }

    @Test func hubExample() async throws {
        let user = "alice"
        let lastEventIDHeader: String? = nil

        let server = EventServer<String>()  // keyed by user ID
        let notification = try EventType<Notification>("notification", marshal: .json())

        let connection = try await server.connect(source: user, lastEventID: lastEventIDHeader)
        let recorder = StreamRecorder(connection)

        try await server.send(Notification(title: "You have mail"), as: notification, to: .source(user))

        #expect(try await recorder.waitForEvents(1).map(\.data) == [#"{"title":"You have mail"}"#])
        #expect(server.responseHeaders.contains { $0.name == "Content-Type" && $0.value == "text/event-stream; charset=utf-8" })
        await recorder.cancel()
    }
}

extension ReadmeExampleTests {
    @Test func clientExample() async throws {
        let server = try TestServer.start()
        let hub = server.hub
        let sender = Task {
            try await waitUntil("the client") { await hub.clientCount == 1 }
            _ = try await hub.send(ServerSentEvent(event: "note", data: "hi"), to: .everyone)
        }
        var printed: [String] = []
        func print(_ items: Any...) { printed.append(items.map { "\($0)" }.joined(separator: " ")) }

        // README: "The client in a few lines" (the port is the test server's).
        let source = try EventSource(url: "http://127.0.0.1:\(server.port)/events?user=t", headers: ["Authorization": "Bearer t"])
        for try await event in source {
            print(event.type, event.data, event.lastEventID)
            break
        }

        try await sender.value
        #expect(printed.count == 1)
        #expect(printed.first?.hasPrefix("note hi ") == true)
        await server.stop()
    }
}
