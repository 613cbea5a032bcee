@testable import EventStreamKit
@testable import EventStreamHTTP
import Testing

@Suite("HTTPServer: the observer's hooks")
struct HTTPServerObserverTests {
    @Test("each refusal is reported with its status, and with its request once one was read")
    func refusals() async throws {
        let observer = RecordingObserver()
        let server = try TestServer.start(configure: { $0.observer = observer })
        #expect(try await server.exchange("GARBAGE\r\n\r\n").hasPrefix("HTTP/1.1 400 "))
        #expect(try await server.exchange("GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").hasPrefix("HTTP/1.1 404 "))
        #expect(try await server.exchange("DELETE /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").hasPrefix("HTTP/1.1 405 "))
        #expect(try await server.exchange("GET /events HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").hasPrefix("HTTP/1.1 401 "))
        #expect(try await server.exchange("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").hasSuffix("hello\n"))
        #expect(observer.calls == [.refused(400, nil), .refused(404, "/nowhere"), .refused(405, "/hello"), .refused(401, "/events")])
        await server.stop()
    }

    @Test("a connection over maxConnections is reported as a 503 without a request")
    func tooManyConnections() async throws {
        let observer = RecordingObserver()
        let server = try TestServer.start(configure: {
            $0.observer = observer
            $0.maxConnections = 1
        })
        let holder = try server.client()
        try await holder.send("GET /events?user=alice HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try await holder.read { $0.contains("\r\n\r\n") }
        #expect(try await server.exchange("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n").hasPrefix("HTTP/1.1 503 "))
        #expect(observer.calls == [.refused(503, nil)])
        holder.close()
        await server.stop()
    }

    @Test("a response the client resets in the middle is reported as a failed write, with its request")
    func responseWriteFailure() async throws {
        let observer = RecordingObserver()
        let big = [UInt8](repeating: UInt8(ascii: "x"), count: 8 << 20)
        let server = try TestServer.start(configure: { $0.observer = observer }, routes: { router, _ in
            router.get("/big") { _ in HTTPResponse(body: big) }
        })
        let client = try server.client()
        try await client.send("GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        // The server is writing (and, with its 128 KiB send buffer, waiting on the client).
        _ = try await client.read { $0.contains("\r\n\r\n") }
        client.reset()
        try await waitUntil("the failed write") { observer.calls.contains(.responseWriteFailed("/big")) }
        await server.stop()
    }

    @Test("an event stream's failed write goes to its hub's observer, not the server's")
    func streamWriteFailureGoesToTheHub() async throws {
        let hubObserver = RecordingObserver()
        var configuration = EventServer<String>.Configuration()
        configuration.observer = hubObserver
        let serverObserver = RecordingObserver()
        let server = try TestServer.start(hub: EventServer(configuration: configuration), configure: {
            $0.observer = serverObserver
            $0.sendBufferSize = 4096
            $0.writeTimeout = .milliseconds(200)
        })
        let client = try server.client()
        try await client.send("GET /events?user=alice HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try await client.read { $0.contains("\r\n\r\n") }
        // The client stops reading: the kernel's buffers fill, the write waits past the write
        // timeout, and the server shuts the socket down under it.
        let payload = try EventType<String>("fill", marshal: .text)
        let chunk = String(repeating: "y", count: 64 * 1024)
        try await waitUntil("a failed stream write", timeout: .seconds(30)) {
            _ = try? await server.hub.send(chunk, as: payload)
            return hubObserver.calls.contains { if case .streamWriteFailed("alice", _) = $0 { true } else { false } }
        }
        #expect(!serverObserver.calls.contains { if case .responseWriteFailed = $0 { true } else { false } })
        client.close()
        await server.stop()
    }
}
