@testable import EventStreamKit
@testable import EventStreamHTTP
import Testing

@Suite("HTTPServer: the client's address, and X-Forwarded-For only from trusted proxies")
struct TrustedProxyTests {
    /// A server whose `/whoami` answers `peer client`, trusting `trusted`.
    private static func start(trusting trusted: [String]) throws -> TestServer {
        try TestServer.start(configure: { $0.trustedProxies = trusted }) { router, _ in
            router.get("/whoami") { request in
                HTTPResponse(text: "\(request.peerAddress ?? "nil") \(request.clientAddress ?? "nil")\n")
            }
        }
    }

    private static func whoami(_ server: TestServer, forwardedFor fields: [String]) async throws -> String {
        let headers = fields.map { "X-Forwarded-For: \($0)\r\n" }.joined()
        let response = try await server.exchange("GET /whoami HTTP/1.1\r\nHost: t\r\n\(headers)Connection: close\r\n\r\n")
        return String(response.split(separator: "\r\n\r\n", maxSplits: 1).last ?? "").trimmingSpaces.replacingNewlines
    }

    @Test("without trusted proxies the header is ignored: the client is the peer")
    func untrustedPeerKeepsItsAddress() async throws {
        let server = try Self.start(trusting: [])
        #expect(try await Self.whoami(server, forwardedFor: []) == "127.0.0.1 127.0.0.1")
        #expect(try await Self.whoami(server, forwardedFor: ["203.0.113.9"]) == "127.0.0.1 127.0.0.1")
        await server.stop()
    }

    @Test("a peer that is not among the trusted ones cannot forward")
    func anotherTrustedProxyDoesNotMakeThePeerTrusted() async throws {
        let server = try Self.start(trusting: ["10.0.0.5", "::1"])
        #expect(try await Self.whoami(server, forwardedFor: ["203.0.113.9"]) == "127.0.0.1 127.0.0.1")
        await server.stop()
    }

    @Test("from a trusted peer: the right-most address that is not a trusted proxy; spellings compare canonically")
    func trustedPeerForwards() async throws {
        // ::ffff:127.0.0.1 is how a dual-stack listener sees 127.0.0.1: the same address.
        let server = try Self.start(trusting: ["::ffff:127.0.0.1", "10.0.0.5", "not an address"])
        #expect(try await Self.whoami(server, forwardedFor: ["198.51.100.7"]) == "127.0.0.1 198.51.100.7")
        // The client wrote 1.1.1.1 itself; nginx appended the address it saw.
        #expect(try await Self.whoami(server, forwardedFor: ["1.1.1.1, 198.51.100.7"]) == "127.0.0.1 198.51.100.7")
        // Two fields are one list; a trusted hop in the middle is skipped.
        #expect(try await Self.whoami(server, forwardedFor: ["1.1.1.1, 198.51.100.7", "10.0.0.5"]) == "127.0.0.1 198.51.100.7")
        #expect(try await Self.whoami(server, forwardedFor: ["2001:DB8:0:0::1"]) == "127.0.0.1 2001:db8::1")
        // No header: the proxy itself.
        #expect(try await Self.whoami(server, forwardedFor: []) == "127.0.0.1 127.0.0.1")
        #expect(server.log.all.contains { $0.contains("\"not an address\" is not an IP address literal; ignored") })
        await server.stop()
    }

    @Test("malformed entries are never the client: the walk stops at the last trusted address")
    func malformedEntries() {
        let trusted: Set = ["127.0.0.1", "10.0.0.5"]
        func client(_ fields: [String], peer: String? = "127.0.0.1") -> String? {
            HTTPServer.clientAddress(peer: peer, forwardedFor: fields, trusted: trusted)
        }
        #expect(client(["unknown"]) == "127.0.0.1")
        #expect(client(["198.51.100.7:4711"]) == "127.0.0.1")
        #expect(client(["[2001:db8::1]"]) == "127.0.0.1")
        #expect(client(["example.com"]) == "127.0.0.1")
        #expect(client(["1.2.3"]) == "127.0.0.1")
        #expect(client(["1.2.3.4\u{0}"]) == "127.0.0.1")
        #expect(client(["203.0.113.1, garbage, 10.0.0.5"]) == "10.0.0.5")
        #expect(client(["203.0.113.1, , 198.51.100.7,"]) == "198.51.100.7")
        #expect(client(["10.0.0.5"]) == "10.0.0.5")  // every hop trusted: the left-most
        #expect(client([""]) == "127.0.0.1")
        #expect(client(["203.0.113.1"], peer: nil) == nil)
        #expect(client(["203.0.113.1"], peer: "192.0.2.1") == "192.0.2.1")
    }

    @Test("canonical spellings")
    func canonicalAddresses() {
        #expect(IPAddress.canonical("127.0.0.1") == "127.0.0.1")
        #expect(IPAddress.canonical("0:0::1") == "::1")
        #expect(IPAddress.canonical("::FFFF:192.0.2.1") == "192.0.2.1")
        #expect(IPAddress.canonical("127.1") == nil)
        #expect(IPAddress.canonical("010.0.0.1") == nil)
        #expect(IPAddress.canonical("fe80::1%eth0") == nil)
        #expect(IPAddress.canonical("10.0.0.0/8") == nil)
        #expect(IPAddress.canonical("") == nil)
        #expect(HTTPServer.Configuration.isValidTrustedProxy("::1"))
        #expect(!HTTPServer.Configuration.isValidTrustedProxy("localhost"))
    }
}

private extension String {
    var replacingNewlines: String { split(separator: "\n").joined(separator: " ") }
}
