import Foundation
import Synchronization
import Testing
@testable import EventStreamKit
@testable import EventStreamHTTP
#if canImport(Glibc)
import Glibc
#endif

/// What RFC 9110 and RFC 9112 require of a server, over real sockets, table-driven where
/// the cases are alike.
@Suite("HTTPServer: RFC 9110/9112 requirements and timeouts")
struct HTTPServerProtocolTests {
    /// RFC 9110 §6.6.1: an origin server with a clock sends `Date` on 2xx, 3xx and 4xx.
    /// RFC 9110 §8.6: no `Content-Length` on 204.
    @Test(arguments: [
        ("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "200", true),
        ("GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "404", true),
        ("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "400", true),
        ("OPTIONS /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "204", false),
        ("GET /empty HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "204", false),
        ("GET /unchanged HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "304", false),
    ])
    func dateAndContentLength(request: String, status: String, hasLength: Bool) async throws {
        let server = try TestServer.start(routes: Self.routes)
        let response = try await server.exchange(request)
        #expect(response.hasPrefix("HTTP/1.1 \(status) "))
        let head = response.components(separatedBy: "\r\n\r\n")[0]
        #expect(head.contains("\r\nDate: "), "\(head)")
        #expect(head.contains("Content-Length: ") == hasLength, "\(head)")
        if !hasLength { #expect(response.hasSuffix("\r\n\r\n"), "no body: \(response.debugDescription)") }
        await server.stop()
    }

    static func routes(_ router: inout HTTPRouter, _ hub: EventServer<String>) {
        router.get("/empty") { _ in HTTPResponse(status: .noContent, body: Array("ignored".utf8)) }
        router.get("/unchanged") { _ in HTTPResponse(status: HTTPStatus(code: 304, reason: "Not Modified")) }
        router.get("/split") { request in
            HTTPResponse(headers: ["X-Echo": request.query["v"] ?? ""], body: [])
        }
    }

    @Test func theDateIsAnIMFFixdate() {
        #expect(HTTPDate.format(secondsSince1970: 784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(secondsSince1970: 0) == "Thu, 01 Jan 1970 00:00:00 GMT")
    }

    /// A handler cannot split the response: a header value with CR/LF is answered 500.
    @Test func aHandlerCannotInjectAResponseLine() async throws {
        let server = try TestServer.start(routes: Self.routes)
        let response = try await server.exchange("GET /split?v=a%0d%0aSet-Cookie:%20x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 500 "))
        #expect(!response.contains("Set-Cookie"))
        await server.stop()
    }

    /// RFC 9110 §10.1.1: the server answers 100 before reading a body the client holds back.
    @Test func expectContinueIsAnsweredBeforeTheBody() async throws {
        let server = try TestServer.start()
        let client = try server.client()
        try await client.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
        let interim = try await client.read { $0.contains("\r\n\r\n") }
        #expect(interim == "HTTP/1.1 100 Continue\r\n\r\n")
        try await client.send("hello")
        let final = try await client.readToEnd()
        #expect(final.hasPrefix("HTTP/1.1 200 OK\r\n") && final.hasSuffix("\r\n\r\nhello"))
        client.close()
        await server.stop()
    }

    /// RFC 9110 §9.3.2: HEAD wherever GET works, event routes included: the same head (or
    /// refusal), no body, no stream, and the connection stays usable.
    @Test func headOnAnEventRoute() async throws {
        let server = try TestServer.start()
        let client = try server.client()
        try await client.send("HEAD /events?user=ann HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        let both = try await client.readToEnd()
        let parts = both.components(separatedBy: "\r\n\r\n")
        #expect(parts[0].hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(parts[0].contains("Content-Type: text/event-stream"))
        #expect(!parts[0].contains("Content-Length"))
        #expect(parts[1].hasPrefix("HTTP/1.1 200 OK\r\n"), "the next response follows at once: \(both.debugDescription)")
        #expect(both.hasSuffix("hello\n"))
        #expect(await server.hub.clientCount == 0)
        let refused = try await server.exchange("HEAD /events HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(refused.hasPrefix("HTTP/1.1 401 ") && refused.hasSuffix("\r\n\r\n"))
        client.close()
        await server.stop()
    }

    /// Docs/HTTPServer.md: a handler's `HTTPError` keeps a keep-alive connection open; a refused
    /// stream (its resolver's `HTTPError` here) answers `Connection: close` and closes it.
    @Test func aRefusedStreamClosesTheConnectionAHandlerErrorDoesNot() async throws {
        let server = try TestServer.start { _ in } routes: { router, _ in
            router.get("/forbidden") { _ in throw HTTPError(.forbidden, "not you") }
        }
        let client = try server.client()
        try await client.send("GET /forbidden HTTP/1.1\r\nHost: t\r\n\r\n")
        let handlerError = try await client.read { $0.hasSuffix("not you\n") }
        #expect(handlerError.hasPrefix("HTTP/1.1 403 ") && !handlerError.contains("Connection: close"), "\(handlerError)")
        // The same connection, still open: a stream without a user is refused, and closed.
        try await client.send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
        let refusal = try await client.readToEnd()
        #expect(refusal.hasPrefix("HTTP/1.1 401 ") && refusal.contains("\r\nConnection: close\r\n"), "\(refusal)")
        #expect(refusal.hasSuffix("who are you?\n"))
        client.close()
        await server.stop()
    }

    /// Found by the attack run: a 404 echoes the decoded path as `text/plain`. Every answer
    /// the server writes itself says `nosniff`, so that no browser reads one as HTML or script.
    @Test(arguments: [
        ("GET /%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "404"),
        ("DELETE /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "405"),
        ("GET /events HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "401"),
        ("HEAD /events HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "401"),
        ("GET /forbidden HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "403"),
        ("GARBAGE\r\n\r\n", "400"),
        ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9999999\r\n\r\n", "413"),
        ("GET /hello HTTP/2.0\r\n\r\n", "505"),
    ])
    func everyAnswerTheServerWritesItselfSaysNosniff(request: String, status: String) async throws {
        let server = try TestServer.start { _ in } routes: { router, _ in
            router.get("/forbidden") { _ in throw HTTPError(.forbidden, "not you") }
        }
        let response = try await server.exchange(request)
        #expect(response.hasPrefix("HTTP/1.1 \(status) "), "\(response)")
        #expect(response.contains("\r\nX-Content-Type-Options: nosniff\r\n"), "\(response)")
        if status == "404" { #expect(response.hasSuffix("no route for /<script>alert(1)</script>\n")) }
        await server.stop()
    }

    /// An error answer is not destroyed by an RST: the server reads what the client already
    /// sent before closing (RFC 9112 §9.6).
    @Test func anErrorAnswerSurvivesUnreadInput() async throws {
        let server = try TestServer.start()
        for _ in 0..<5 {
            let client = try server.client()
            // A bad head, then more bytes the server will never parse.
            try await client.send("GET / HTTP/1.1\r\nHost: a b\r\n\r\n" + String(repeating: "junk ", count: 4000))
            let response = try await client.readToEnd()
            #expect(response.hasPrefix("HTTP/1.1 400 ") && response.hasSuffix("malformed Host field\n"))
            client.close()
        }
        await server.stop()
    }

    /// A client that pipelines requests and never reads the answers is closed after the
    /// write timeout, instead of pinning buffers for as long as it likes.
    @Test func aClientThatNeverReadsIsClosedAfterTheWriteTimeout() async throws {
        let server = try TestServer.start { $0.writeTimeout = .milliseconds(300) } routes: { router, _ in
            router.get("/big") { _ in HTTPResponse(body: [UInt8](repeating: 120, count: 256 * 1024)) }
        }
        let client = try server.client()
        var small: Int32 = 4096
        _ = setsockopt(client.socket.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        try await client.send(String(repeating: "GET /big HTTP/1.1\r\nHost: t\r\n\r\n", count: 20))
        try await waitUntil("admitted") { server.server.connectionCount == 1 }
        try await waitUntil("closed", timeout: .seconds(5)) { server.server.connectionCount == 0 }
        #expect(server.log.all.contains { $0.contains("past the write timeout") })
        client.close()
        await server.stop()
    }

    /// An event stream whose client stops reading is closed once a write has waited the
    /// write timeout, whatever the overflow policy: it reconnects and replays, instead of
    /// holding its buffers forever.
    @Test func aStalledStreamIsClosedAfterTheWriteTimeout() async throws {
        let blob = try EventType<String>("blob", marshal: .text)
        let server = try TestServer.start { $0.writeTimeout = .milliseconds(300) }
        let client = try server.client()
        var small: Int32 = 4096
        _ = setsockopt(client.socket.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        try await client.send("GET /events?user=stalled HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try await client.read { $0.contains("\r\n\r\n") }  // then it never reads again
        try await waitUntil("registered") { await server.hub.clientCount == 1 }
        let padding = String(repeating: "x", count: 64 * 1024)
        try await waitUntil("closed", timeout: .seconds(10)) {
            _ = try? await server.hub.send(padding, as: blob)
            return await server.hub.clientCount == 0
        }
        #expect(server.log.all.contains { $0.contains("past the write timeout") })
        try await waitUntil("released") { server.server.connectionCount == 0 }
        client.close()
        await server.stop()
    }

    /// Bodies arriving at once share one budget: a crowd of clients that each send most of a
    /// body and stall cannot make the server hold maxConnections x maxBodySize. Only bytes
    /// that arrived count: heads that announce bodies and send none cannot use it up.
    @Test func requestBodiesShareOneBudget() async throws {
        let server = try TestServer.start { $0.maxBufferedBodyBytes = 100 }
        let stalling = try server.client()
        try await stalling.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 90\r\n\r\n" + String(repeating: "a", count: 80))
        try await waitUntil("the first body's bytes are counted") { server.server.state.withLock { $0.bufferedBodyBytes } == 80 }
        let announcing = try server.client()
        try await announcing.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        try await waitUntil("admitted") { server.server.connectionCount == 2 }
        let refused = try await server.exchange("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\n" + String(repeating: "b", count: 50))
        #expect(refused.hasPrefix("HTTP/1.1 503 "), "\(refused)")
        let small = try await server.exchange("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nsmall")
        #expect(small.hasPrefix("HTTP/1.1 200 "), "an announced but unsent body costs nothing: \(small)")
        announcing.close()
        try await stalling.send(String(repeating: "a", count: 10))
        let answered = try await stalling.read { $0.hasSuffix(String(repeating: "a", count: 90)) }
        #expect(answered.hasPrefix("HTTP/1.1 200 "))
        let accepted = try await server.exchange("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\nConnection: close\r\n\r\n" + String(repeating: "b", count: 50))
        #expect(accepted.hasPrefix("HTTP/1.1 200 "))
        #expect(server.server.state.withLock { $0.bufferedBodyBytes } == 0)
        stalling.close()
        await server.stop()
    }

    @Test(arguments: [
        ("localhost", ["localhost"], true),
        ("LocalHost:8080", ["localhost"], true),
        ("localhost:8080", ["localhost:8081"], false),
        ("localhost:8081", ["localhost:8081"], true),
        ("[::1]:80", ["[::1]"], true),
        ("[::1]", ["[::1]:80"], false),
        ("evil.example", ["localhost", "127.0.0.1"], false),
        ("localhost.evil.example", ["localhost"], false),
        ("", ["localhost"], false),
    ])
    func allowedHosts(host: String, allowed: [String], answered: Bool) {
        #expect(HTTPServer.isAllowed(host: host, in: allowed) == answered)
    }

    /// DNS rebinding: only the `Host` tells a rebinding site's requests apart.
    @Test func aRequestForAnotherHostIsMisdirected() async throws {
        let server = try TestServer.start { $0.allowedHosts = ["127.0.0.1", "localhost"] }
        let refused = try await server.exchange("GET /hello HTTP/1.1\r\nHost: evil.example:\(server.port)\r\n\r\n")
        #expect(refused.hasPrefix("HTTP/1.1 421 "))
        let missing = try await server.exchange("GET /hello HTTP/1.0\r\n\r\n")
        #expect(missing.hasPrefix("HTTP/1.1 421 "))
        // An absolute-form target's authority replaces Host (RFC 9112 §3.2.2).
        let absolute = try await server.exchange("GET http://evil.example/hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(absolute.hasPrefix("HTTP/1.1 421 "), "\(absolute)")
        let answered = try await server.exchange("GET /hello HTTP/1.1\r\nHost: 127.0.0.1:\(server.port)\r\nConnection: close\r\n\r\n")
        #expect(answered.hasPrefix("HTTP/1.1 200 "))
        await server.stop()
    }

    /// A body that stops arriving is closed after the body timeout.
    @Test func aStalledBodyIsClosedAfterTheBodyTimeout() async throws {
        let server = try TestServer.start { $0.bodyTimeout = .milliseconds(200) }
        let client = try server.client()
        try await client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly a little")
        let response = try await client.readToEnd(timeout: .seconds(5))
        #expect(response.isEmpty)
        #expect(server.log.all.contains { $0.contains("past the body timeout") })
        client.close()
        await server.stop()
    }

    /// A client that keeps sending on its event stream is cut off after 64 KiB, so that it
    /// cannot keep the poller busy; one that sends a little is ignored.
    @Test func aStreamsClientThatKeepsSendingIsCutOff() async throws {
        let server = try TestServer.start()
        let client = try server.client()
        try await client.send("GET /events?user=chatty HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try await client.read { $0.contains("\r\n\r\n") }
        try await client.send("a little\r\n")
        try await waitUntil("registered") { await server.hub.clientCount == 1 }
        let chunk = [UInt8](repeating: 10, count: 16 * 1024)
        for _ in 0..<5 { try? await client.send(chunk) }
        try await waitUntil("cut off", timeout: .seconds(5)) { await server.hub.clientCount == 0 }
        client.close()
        await server.stop()
    }

    /// The sweep's old race, end to end: slow clients time out while innocent connections
    /// come and go on the same descriptor numbers, with a logger slow enough to widen any
    /// window between deciding and acting. No innocent stream may be closed.
    @Test func churnAcrossTimeoutsClosesNoInnocentConnection() async throws {
        let server = try TestServer.start { configuration in
            configuration.headTimeout = .milliseconds(40)
            let slowLog = configuration.logger
            configuration.logger = HTTPLogger { level, message in
                // A slow log destination (the condition under test), not a wait for anything.
                usleep(2_000)
                slowLog(level, message)
            }
        }
        let innocentClosed = Counter()
        let innocentServed = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    for _ in 0..<15 {
                        let slow = try server.client()
                        try await slow.send("GET /hello HTTP/1.1\r\n")  // never finished
                        // The workload: it gives up somewhere around the 40 ms head timeout, so
                        // that its descriptor is freed just before or after the sweep acts.
                        try await Task.sleep(for: .milliseconds(Int.random(in: 20...60)))
                        slow.close()
                    }
                }
                group.addTask {
                    for index in 0..<15 {
                        let client = try server.client()
                        try await client.send("GET /events?user=i\(index) HTTP/1.1\r\nHost: t\r\n\r\n")
                        let head = try await client.read { $0.contains("\r\n\r\n") }
                        if !head.hasPrefix("HTTP/1.1 200 ") { innocentClosed.increment() }
                        // Held past several head timeouts: if the sweep touched it, it ends.
                        do {
                            _ = try await client.read(until: { _ in false }, timeout: .milliseconds(150))
                            innocentClosed.increment()  // the server ended it
                        } catch is TimedOut {
                            // still open: as it should be
                        }
                        client.close()
                        innocentServed.increment()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(innocentClosed.count == 0)
        #expect(innocentServed.count == 60)
        await server.stop()
    }
}
