import Foundation
import Testing
@testable import EventStreamKit
@testable import EventStreamHTTP

/// `HTTPRouter.CORS`: an allow-list echoed exactly, with credentials, per request.
@Suite("HTTP router: CORS with an origin allow-list and credentials")
struct HTTPRouterCORSTests {
    static func start() throws -> TestServer {
        try TestServer.start { _ in } routes: { router, _ in
            router.cors = HTTPRouter.CORS(allowedOrigins: ["https://App.example.com/", "http://localhost:3000", "*", "null"], allowsCredentials: true, exposedHeaders: ["X-Request-ID"])
        }
    }

    static func fields(_ response: String) -> [String] {
        response.components(separatedBy: "\r\n\r\n")[0].components(separatedBy: "\r\n").dropFirst().map { $0.lowercased() }
    }

    @Test("an allowed origin is echoed exactly, with Vary: Origin, credentials and exposed headers; on plain answers, refusals and streams", arguments: [
        "GET /hello HTTP/1.1",
        "GET /nowhere HTTP/1.1",
        "GET /events?user=alice HTTP/1.1",
        "GET /events HTTP/1.1",
    ])
    func allowedOrigin(requestLine: String) async throws {
        let server = try Self.start()
        let client = try server.client()
        try await client.send("\(requestLine)\r\nHost: t\r\nOrigin: https://app.example.com\r\nConnection: close\r\n\r\n")
        let response = try await client.read { $0.contains("\r\n\r\n") }
        client.close()
        let head = response.components(separatedBy: "\r\n\r\n")[0]
        #expect(head.contains("\r\nAccess-Control-Allow-Origin: https://app.example.com\r\n"), "\(head)")
        #expect(head.contains("\r\nVary: Origin\r\n"))
        #expect(head.contains("\r\nAccess-Control-Allow-Credentials: true\r\n"))
        #expect(head.contains("\r\nAccess-Control-Expose-Headers: X-Request-ID\r\n"))
        await server.stop()
    }

    @Test("a foreign origin, null, or one that only starts like an allowed one gets no CORS header, only Vary: Origin", arguments: [
        "https://evil.example", "null", "https://app.example.com.evil.example", "http://app.example.com", "https://app.example.com:8443", "*",
    ])
    func foreignOrigin(origin: String) async throws {
        let server = try Self.start()
        let response = try await server.exchange("GET /hello HTTP/1.1\r\nHost: t\r\nOrigin: \(origin)\r\nConnection: close\r\n\r\n")
        let fields = Self.fields(response)
        #expect(!fields.contains { $0.hasPrefix("access-control-") }, "\(fields)")
        #expect(fields.contains("vary: origin"))
        #expect(response.hasSuffix("hello\n"), "the answer itself is unchanged: CORS only keeps a foreign page from reading it")
        await server.stop()
    }

    @Test("a request without Origin (same-origin GET, curl) gets Vary: Origin and nothing else")
    func noOrigin() async throws {
        let server = try Self.start()
        let fields = Self.fields(try await server.exchange("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"))
        #expect(!fields.contains { $0.hasPrefix("access-control-") })
        #expect(fields.contains("vary: origin"))
        await server.stop()
    }

    @Test("a preflight from an allowed origin: 204 with the path's methods, the configured headers (not the requested ones) and Max-Age")
    func preflight() async throws {
        let server = try Self.start()
        let response = try await server.exchange("OPTIONS /echo HTTP/1.1\r\nHost: t\r\nOrigin: http://localhost:3000\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type, x-evil\r\nConnection: close\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 204 "))
        #expect(response.contains("\r\nAccess-Control-Allow-Origin: http://localhost:3000\r\n"))
        #expect(response.contains("\r\nAccess-Control-Allow-Credentials: true\r\n"))
        #expect(response.contains("\r\nAccess-Control-Allow-Methods: OPTIONS, POST\r\n"))
        #expect(response.contains("\r\nAccess-Control-Allow-Headers: Last-Event-ID, Content-Type, Authorization\r\n"))
        #expect(response.contains("\r\nAccess-Control-Max-Age: 600\r\n"))
        #expect(response.contains("\r\nVary: Origin\r\n"))
        #expect(!response.lowercased().contains("x-evil"))
        await server.stop()
    }

    @Test("a preflight from a foreign origin: 204 with Allow, no Access-Control-* header")
    func foreignPreflight() async throws {
        let server = try Self.start()
        let response = try await server.exchange("OPTIONS /echo HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 204 "))
        #expect(response.contains("\r\nAllow: OPTIONS, POST\r\n"))
        #expect(!Self.fields(response).contains { $0.hasPrefix("access-control-") }, "\(response)")
        await server.stop()
    }

    @Test("without credentials, no Allow-Credentials; the allow-list is normalised and drops * and null")
    func configuration() {
        let cors = HTTPRouter.CORS(allowedOrigins: ["HTTPS://A.example/", "*", "null", ""])
        #expect(cors.allowedOrigins == ["https://a.example"])
        #expect(!cors.allowsCredentials)
    }
}
