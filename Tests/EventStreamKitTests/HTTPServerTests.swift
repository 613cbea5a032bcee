@testable import EventStreamKit
@testable import EventStreamHTTP
import Testing

private let note = try! EventType<String>("note", marshal: .text)

@Suite("HTTPServer: ordinary requests and bad input")
struct HTTPServerTests {
    @Test func getAndKeepAliveOnOneConnection() async throws {
        let server = try TestServer.start()
        let client = try server.client()
        try await client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        let first = try await client.read { $0.hasSuffix("hello\n") }
        #expect(first.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(first.contains("Content-Length: 6\r\n"))
        try await client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nabcde")
        let second = try await client.readToEnd()
        #expect(second.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(second.hasSuffix("\r\n\r\nabcde"))
        client.close()
        await server.stop()
    }

    @Test func http10IsServedAndClosed() async throws {
        let server = try TestServer.start()
        let response = try await server.exchange("GET /hello HTTP/1.0\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(response.contains("Connection: close"))
        await server.stop()
    }

    @Test(arguments: [
        ("GARBAGE\r\n\r\n", "400"),
        ("GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n", "400"),
        ("GET /hello HTTP/2.0\r\n\r\n", "505"),
        ("GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "404"),
        ("DELETE /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "405"),
        ("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "501"),
        ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9999999\r\n\r\n", "413"),
        ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 12x\r\n\r\n", "400"),
        ("GET /events HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "401"),
        ("GET /events?user=mallory HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "403"),
    ])
    func badInputGetsItsStatusAndTheServerGoesOn(request: String, status: String) async throws {
        let server = try TestServer.start()
        let response = try await server.exchange(request)
        #expect(response.hasPrefix("HTTP/1.1 \(status) "), "\(response)")
        // The server still serves everybody else.
        #expect(try await server.exchange("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").hasSuffix("hello\n"))
        #expect(!server.log.all.isEmpty || status == "200")
        #expect(await server.hub.clientCount == 0)
        await server.stop()
    }

    @Test("run() runs the hubs behind its event routes: heartbeats come without a hub.run() of the user's")
    func runDrivesTheHubs() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.heartbeatInterval = .milliseconds(50)
        let hub = EventServer<String>(configuration: configuration)
        // The same hub behind a second route: still run once.
        let server = try TestServer.start(hub: hub, routes: { router, hub in
            router.events("/more", from: hub) { _ in "more" }
        })
        try await waitUntil("the server runs the hub") { await hub.isRunning }
        let client = try server.client()
        try await client.send("GET /events?user=alice HTTP/1.1\r\nHost: t\r\n\r\n")
        // Two heartbeats (comment lines) after the head.
        let stream = try await client.read { text in
            guard let head = text.utf8.firstRange(of: Array("\r\n\r\n".utf8)) else { return false }
            return text.utf8[head.upperBound...].filter { $0 == UInt8(ascii: ":") }.count >= 2
        }
        #expect(stream.hasPrefix("HTTP/1.1 200 OK"))
        client.close()
        await server.stop()
    }

    @Test func aWrongMethodNamesTheAllowedOnes() async throws {
        let server = try TestServer.start()
        let response = try await server.exchange("PUT /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 405 "))
        #expect(response.contains("Allow: OPTIONS, POST\r\n"))
        await server.stop()
    }

    @Test func aHeadOverTheLimitIs431() async throws {
        let server = try TestServer.start()
        let response = try await server.exchange("GET /hello HTTP/1.1\r\nHost: t\r\nX: " + String(repeating: "a", count: 9000) + "\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 431 "))
        let many = (0..<101).map { "H\($0): v\r\n" }.joined()
        #expect(try await server.exchange("GET /hello HTTP/1.1\r\nHost: t\r\n" + many + "\r\n").hasPrefix("HTTP/1.1 431 "))
        await server.stop()
    }

    @Test func corsPreflightAndHeaders() async throws {
        let server = try TestServer.start { _ in } routes: { router, _ in
            router.corsHeaders = [("Access-Control-Allow-Origin", "*")]
        }
        let response = try await server.exchange("OPTIONS /events HTTP/1.1\r\nHost: t\r\nAccess-Control-Request-Headers: last-event-id\r\nConnection: close\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 204 "))
        #expect(response.contains("Access-Control-Allow-Origin: *\r\n"))
        #expect(response.contains("Access-Control-Allow-Headers: last-event-id\r\n"))
        #expect(response.contains("Access-Control-Allow-Methods: GET, OPTIONS\r\n"))
        await server.stop()
    }

    @Test func aSlowHeadIsClosedAfterTheTimeout() async throws {
        let server = try TestServer.start { $0.headTimeout = .milliseconds(200) }
        let client = try server.client()
        try await client.send("GET /hello HTTP/1.1\r\nHost: x\r\n")  // never finished
        let response = try await client.readToEnd(timeout: .seconds(5))
        #expect(response.isEmpty)
        // The socket is closed first and the line logged after it: wait for the line.
        try await waitUntil("the timeout is logged") { server.log.all.contains { $0.contains("past the head timeout") } }
        client.close()
        #expect(try await server.exchange("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").hasSuffix("hello\n"))
        await server.stop()
    }

    @Test func overTheConnectionLimitIs503WithRetryAfter() async throws {
        let server = try TestServer.start { $0.maxConnections = 1 }
        let holder = try server.client()
        try await holder.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try await holder.read { $0.hasSuffix("hello\n") }  // the one slot is taken
        let response = try await server.exchange("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 503 "))
        #expect(response.contains("Retry-After: 1\r\n"))
        #expect(response.contains("X-Content-Type-Options: nosniff\r\n"))
        holder.close()
        await server.stop()
    }

    /// A stream asked of a hub that is shutting down: 503 with the wait the hub gave the
    /// streams it ended (its `retry`, else 3 s, plus up to `reconnectSpread`), in whole
    /// seconds, so that clients do not come straight back; a refused duplicate stays 409.
    @Test func aStreamOfAShutDownHubIs503WithRetryAfter() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.reconnectSpread = .seconds(2)
        let hub = EventServer<String>(configuration: configuration)
        let server = try TestServer.start(hub: hub)
        await hub.shutdown()
        let response = try await server.exchange("GET /events?user=alice HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 503 "), "\(response)")
        let retryAfter = response.split(separator: "\r\n").first { $0.hasPrefix("Retry-After: ") }.flatMap { Int($0.dropFirst(13)) }
        #expect(retryAfter.map { (3...5).contains($0) } == true, "Retry-After \(String(describing: retryAfter)) for 3 s + up to 2 s")
        await server.stop()
    }
}

@Suite("HTTPServer: event streams")
struct HTTPServerEventTests {
    @Test func streamsEventsToSeveralClientsAndReplaysWithLastEventID() async throws {
        let server = try TestServer.start()
        var clients: [LoopbackClient] = []
        for user in ["ann", "ben"] {
            let client = try server.client()
            try await client.send("GET /events?user=\(user) HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n")
            let head = try await client.read { $0.contains("\r\n\r\n") }
            #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(head.contains("Content-Type: text/event-stream; charset=utf-8\r\n"))
            #expect(head.contains("Cache-Control: no-cache, no-transform\r\n"))
            #expect(!head.contains("Transfer-Encoding"))
            clients.append(client)
        }
        try await waitUntil("both registered") { await server.hub.clientCount == 2 }
        let first = try await server.hub.send("to ann", as: note, to: .source("ann"))
        try await server.hub.send("to all", as: note)
        let ann = try await clients[0].read { $0.contains("data: to all\n\n") }
        #expect(ann.contains("data: to ann\n\n"))
        let ben = try await clients[1].read { $0.contains("data: to all\n\n") }
        #expect(!ben.contains("to ann"))

        // Ann reconnects with the ID of the first event: she gets "to all" again, nothing else.
        clients[0].close()
        let again = try server.client()
        try await again.send("GET /events?user=ann HTTP/1.1\r\nHost: t\r\nLast-Event-ID: \(first)\r\n\r\n")
        let replay = try await again.read { $0.contains("data: to all\n\n") }
        #expect(!replay.contains("to ann"))
        // A polyfill's query parameter works the same.
        let polyfill = try server.client()
        try await polyfill.send("GET /events?user=cy&lastEventId=\(first) HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await polyfill.read { $0.contains("data: to all\n\n") }.contains("id: "))
        for client in [again, polyfill, clients[1]] { client.close() }
        await server.stop()
    }

    @Test func aClientThatClosesOrResetsLeavesTheHubWithinASecond() async throws {
        let server = try TestServer.start()
        for ending in ["close", "reset"] {
            let client = try server.client()
            try await client.send("GET /events?user=\(ending) HTTP/1.1\r\nHost: t\r\n\r\n")
            _ = try await client.read { $0.contains("\r\n\r\n") }
            try await waitUntil("registered") { await server.hub.clientCount == 1 }
            if ending == "close" { client.close() } else { client.reset() }
            try await waitUntil("\(ending) noticed", timeout: .seconds(1)) { await server.hub.clientCount == 0 }
        }
        try await waitUntil("the sockets released") { server.server.connectionCount == 0 }
        await server.stop()
    }

    @Test func gracefulShutdownWithStreamsOpen() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.retry = .seconds(1)
        configuration.shutdownGracePeriod = .milliseconds(500)
        let server = try TestServer.start(hub: EventServer(configuration: configuration))
        var clients: [LoopbackClient] = []
        for i in 0..<20 {
            let client = try server.client()
            try await client.send("GET /events?user=u\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            clients.append(client)
        }
        try await waitUntil("all registered") { await server.hub.clientCount == 20 }
        try await server.hub.send("bye", as: note)
        await server.stop()  // returns only when every connection has ended
        for client in clients {
            let everything = try await client.readToEnd()
            #expect(everything.contains("data: bye\n\n"))
            #expect(everything.hasSuffix("\n\n"))  // the final jittered retry, then the end
            client.close()
        }
        #expect(server.server.connectionCount == 0)
    }
}
