@testable import EventStreamHTTP
@testable import EventStreamKit
import Foundation
import Synchronization
import Testing

// The examples of the `///` doc comments under Sources/, verbatim, each in the context it
// assumes (the names it uses but does not define are parameters). Building this file compiles
// them; Tests/DocComments/check.py (run by CI) fails when a doc comment's example is not here
// word for word, so an example cannot drift from the API. The pure ones also run.
//
// The Hummingbird glue of `EventConnection.body` is compiled by its example instead.

// MARK: - Declarations the examples make

struct Notification: Codable, Sendable { var title: String; var body: String }

extension EventType<Notification> {
    static let notification = try! EventType("notification", marshal: .json())
}

final class StreamMetrics: EventServerObserver {
    let open = Atomic<Int>(0)
    let published = Atomic<Int>(0)

    func connectionOpened(source: String, connection: ConnectionID, lastEventID: String?) {
        open.add(1, ordering: .relaxed)
    }
    func connectionClosed(source: String, connection: ConnectionID, reason: DisconnectReason, duration: Duration, bytesWritten: Int) {
        open.subtract(1, ordering: .relaxed)
    }
    func eventPublished(name: String?, id: String, recipients: Int) {
        published.add(1, ordering: .relaxed)
    }
}

// `Refusals`, of HTTPServerObserver's example, is declared in HTTPGuideTests.swift, which
// compiles Docs/HTTPServer.md's same example.

/// What the Recipients example sends on a channel.
struct Quote: Codable, Sendable { var symbol: String }

extension EventType<Quote> {
    static let quote = try! EventType("quote", marshal: .json())
}

// MARK: - EventStreamKit: the wire format

private enum WireExamples {
    // ServerSentEvent
    static func serverSentEvent() throws -> EventFrame {
        let event = try ServerSentEvent(id: "42", event: "greeting", data: "hello\nworld")
        let frame = EventFrame(event)
        // id: 42
        // event: greeting
        // data: hello
        // data: world
        //
        return frame
    }

    // EventFrame
    static func eventFrame() throws {
        let frame = EventFrame(try ServerSentEvent(event: "tick", data: "1"))
        print(String(decoding: frame.bytes, as: UTF8.self)) // "event: tick\ndata: 1\n\n"
    }

    // EventMarshal
    static func eventMarshal() throws -> ServerSentEvent {
        struct Price: Sendable { var cents: Int }
        let dollars = EventMarshal<Price> { price in Array("$\(price.cents / 100)".utf8) }
        let event = try dollars.event(Price(cents: 1999), event: "price")
        return event
    }

    // EventStreamParser
    static func eventStreamParser() throws {
        var parser = EventStreamParser()
        for element in try parser.parse(Array("id: 7\ndata: hi\n\n".utf8)) {
            if case .event(let event) = element {
                print(event.type, event.data, event.lastEventID) // message hi 7
            }
        }
    }

    // EventStreamWriter
    static func eventStreamWriter(sink: some EventStreamSink) async throws {
        var writer = EventStreamWriter(sink: sink)
        writer.retry(.seconds(5))
        try writer.send(42, as: .text, id: "1", event: "answer")
        writer.comment("still here")
        try await writer.flush()
        try await writer.close()   // a final empty `close` event, flushed
    }

    // WireError
    static func wireError() throws(WireError) {
        do {
            _ = try ServerSentEvent(event: "bad\nname", data: "x")
        } catch where error.code == .invalidEventName {  // typed throws: `error` is a WireError
            print(error) // invalid event name "bad\nname": an event name must not contain CR or LF
        }
    }
}

// MARK: - EventStreamKit: the hub

private enum HubExamples {
    // EventServer
    static func eventServer(userID: String, request: HTTPRequest, sink: some EventStreamSink) async throws {
        let server = EventServer<String>()
        let notification = try EventType<String>("notification", marshal: .text)

        // In the request handler, after authenticating the user:
        let connection = try await server.connect(source: userID, lastEventID: request.lastEventID)
        // stream `connection.body` as the response body, or:
        let reason = try await connection.run(writingTo: sink)  // why it ended

        // Anywhere else:
        try await server.send("You have mail", as: notification, to: .source(userID))
        _ = reason
    }

    // EventServer.Configuration
    static func configuration() -> EventServer<String> {
        var configuration = EventServer<String>.Configuration()
        configuration.retry = .seconds(5)
        configuration.overflowPolicy = .coalesce
        configuration.extraHeaders = [("Access-Control-Allow-Origin", "*")]
        let server = EventServer<String>(configuration: configuration)
        return server
    }

    // EventType
    static func eventType(server: EventServer<String>, userID: String) async throws {
        try await server.send(Notification(title: "Hi", body: "…"), as: .notification, to: .source(userID))
    }

    // Recipients
    static func recipients(server: EventServer<String>, userID: String, note: Notification, quote: Quote, alice: String, bob: String) async throws {
        try await server.send(note, as: .notification, to: .source(userID))
        try await server.send(note, as: .notification, to: .only([alice, bob]))
        try await server.send(note, as: .notification, to: .everyone(except: [alice]))
        try await server.send(quote, as: .quote, to: .channel("news"))
    }

    // EventServer.run()
    static func run(server: EventServer<String>) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await server.run() }
            // … serve requests …
        }
    }

    // EventServer.clusterStatus
    static func clusterStatus(hub: EventServer<String>) async {
        if let status = await hub.clusterStatus, !status.isLogReachable || status.lag > 1_000 {
            // report the node unhealthy
        }
    }

    // EventServer.clusterClientCount(source:)
    static func presence(hub: EventServer<String>, userID: String) async throws {
        if try await hub.clusterClientCount(source: userID) == 0 {
            // nobody to push to: send an e-mail instead
        }
    }

    // EventServerObserver
    static func observer() -> EventServer<String> {
        var configuration = EventServer<String>.Configuration()
        configuration.observer = StreamMetrics()
        let hub = EventServer<String>(configuration: configuration)
        return hub
    }

    // StreamTickets: compiled and run by StreamTicketsTests.documentedExample.
}

// MARK: - EventStreamKit: the client

private enum ClientExamples {
    // EventSource
    static func eventSource() async throws {
        let source = try EventSource(url: "http://127.0.0.1:8080/events", headers: ["Authorization": "Bearer abc"])
        for try await event in source {
            print(event.type, event.data, event.lastEventID)
        }
    }

    // EventSource.Configuration
    static func configuration() -> EventSource.Configuration {
        var configuration = EventSource.Configuration()
        configuration.retry = .seconds(1)
        configuration.backoff = .exponential(multiplier: 2, maximum: .seconds(30), jitter: 0.5)
        configuration.backoffResetThreshold = .seconds(60)
        configuration.readTimeout = .seconds(300)
        return configuration
    }

    // EventSource.Request
    static func request() throws -> EventSource {
        var request = EventSource.Request(url: URL(string: "https://api.example.com/v1/chat/completions")!)
        request.method = "POST"
        request.headers = ["Content-Type": "application/json", "Authorization": "Bearer key"]
        request.body = Array(#"{"stream":true}"#.utf8)
        request.isRetryable = false  // a completion must not be requested twice
        let source = try EventSource(request: request)
        return source
    }

    // EventSource.ErrorPolicy
    static func errorPolicy() -> EventSource.Configuration {
        var configuration = EventSource.Configuration()
        configuration.errorPolicy = EventSource.ErrorPolicy { failure, attempt in
            switch failure {
            case .status(503, let headers):
                let seconds = headers["Retry-After"].flatMap { Int($0) } ?? 5
                return attempt <= 10 ? .retryAfter(.seconds(seconds)) : .stop
            default:
                return EventSource.ErrorPolicy.standard.decide(failure, attempt: attempt)
            }
        }
        return configuration
    }

    // EventSourceError
    static func eventSourceError() async throws {
        do {
            for try await event in try EventSource(url: "http://127.0.0.1:8080/events") { print(event.data) }
        } catch let error as EventSourceError where error.code == .badStatus {
            print("refused with", error.status ?? 0)
        }
    }

    // EventUnmarshal
    static func eventUnmarshal() throws -> Int {
        let cents = EventUnmarshal<Int> { data in
            guard let dollars = Double(data.dropFirst()) else { throw CocoaError(.formatting) }
            return Int((dollars * 100).rounded())  // 19.99 * 100 is 1998.999…
        }
        let value = try MessageEvent(data: "$19.99").decode(cents) // 1999
        return value
    }

    // EventSource.values(of:as:)
    static func values(source: EventSource) async throws {
        struct Notification: Codable, Sendable { var title: String }
        for try await note in source.values(of: "notification", as: .json(Notification.self)) {
            print(note.title)
        }
    }
}

// MARK: - EventStreamHTTP

private enum HTTPExamples {
    // HTTPServer
    static func server() async throws {
        let hub = EventServer<String>()
        var router = HTTPRouter()
        router.events("/events", from: hub) { request in
            guard let user = request.query["user"] else { throw HTTPError(.unauthorized) }
            return user
        }
        let server = try HTTPServer(router: router, configuration: .init(host: "127.0.0.1", port: 0))
        print("listening on port", server.port)
        await server.run()   // runs the hub too (heartbeats, a cluster's log), until cancelled or shutdown()
    }

    // HTTPRouter
    static func router(hub: EventServer<String>) -> HTTPRouter {
        var router = HTTPRouter()
        router.get("/health") { _ in HTTPResponse(text: "ok") }
        router.events("/events", from: hub) { request in
            guard let user = request.query["user"] else { throw HTTPError(.unauthorized) }
            return user
        }
        return router
    }

    // HTTPRouter.CORS
    static func cors() -> HTTPRouter {
        var router = HTTPRouter()
        router.cors = HTTPRouter.CORS(allowedOrigins: ["https://app.example.com"], allowsCredentials: true)
        return router
    }

    // HTTPLogger
    static func logger() -> HTTPServer.Configuration {
        var configuration = HTTPServer.Configuration(host: "127.0.0.1", port: 8080)
        configuration.logger = .standardOutput(minimum: .warning)
        // or: configuration.logger = HTTPLogger { level, message in myLogger.log(level, message) }
        return configuration
    }

    // HTTPLogger.standardOutput(format:)
    static func bareLogger(server: HTTPServer) {
        let output = HTTPLogger.standardOutput(format: .bare)
        output(.info, "serving http://127.0.0.1:\(server.port)/")
    }

    // HTTPRequest.clientAddress
    static func trustedProxies() -> HTTPServer.Configuration {
        var configuration = HTTPServer.Configuration(host: "127.0.0.1", port: 8080)
        configuration.trustedProxies = ["127.0.0.1"]   // nginx on the same machine
        // A request from nginx with `X-Forwarded-For: 10.0.0.1, 198.51.100.7`:
        // clientAddress == "198.51.100.7" (10.0.0.1 was written by the client, and is not believed)
        return configuration
    }

    // HTTPServerObserver
    static func observer() -> HTTPServer.Configuration {
        var configuration = HTTPServer.Configuration(host: "127.0.0.1", port: 0)
        configuration.observer = Refusals()
        return configuration
    }
}

// MARK: - The pure ones, run

@Suite("Doc-comment examples")
struct DocCommentExampleTests {
    @Test func theWireExamplesRunAsTheirCommentsSay() throws {
        #expect(String(decoding: try WireExamples.serverSentEvent().bytes, as: UTF8.self) == "id: 42\nevent: greeting\ndata: hello\ndata: world\n\n")
        try WireExamples.eventFrame()
        #expect(String(decoding: EventFrame(try WireExamples.eventMarshal()).bytes, as: UTF8.self) == "event: price\ndata: $19\n\n")
        try WireExamples.eventStreamParser()
        try WireExamples.wireError()
        #expect(try ClientExamples.eventUnmarshal() == 1999)
    }

    @Test func theConfigurationExamplesBuildWhatTheySay() throws {
        #expect(HubExamples.configuration().configuration.overflowPolicy == .coalesce)
        #expect(HTTPExamples.trustedProxies().trustedProxies.count == 1)
        #expect(ClientExamples.configuration().readTimeout == .seconds(300))
        #expect(try ClientExamples.request().request.isRetryable == false)
        #expect(HTTPExamples.cors().cors != nil)
    }
}
