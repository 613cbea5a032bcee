import Testing
@testable import EventStreamKit
@testable import EventStreamHTTP

/// `StreamTickets`, its policy `StreamTicketBook` and `StreamTicket`, with a manual clock.
@Suite("Stream tickets: single use, short-lived, bound to a source, bounded")
struct StreamTicketsTests {
    @Test("a ticket redeems once, for the source it was issued for")
    func singleUse() throws {
        let tickets = StreamTickets<String>()
        let alice = try tickets.issue(for: "alice")
        let bob = try tickets.issue(for: "bob", channels: ["news"])
        #expect(tickets.redeem(alice) == .init(source: "alice", channels: nil))
        #expect(tickets.redeem(alice) == nil, "a second use")
        #expect(tickets.redeem(bob.text)?.source == "bob", "bob's ticket yields bob, never alice")
        #expect(tickets.redeem(bob.text) == nil)
        #expect(tickets.count == 0)
    }

    @Test("a ticket expires after its lifetime: valid until then, refused from then on")
    func expiry() throws {
        let clock = ManualNow()
        var limits = StreamTickets<String>.Limits()
        limits.lifetime = .seconds(30)
        let tickets = StreamTickets<String>(limits: limits, now: clock.closure)
        let early = try tickets.issue(for: "alice")
        let late = try tickets.issue(for: "alice")
        clock.advance(by: .seconds(29))
        #expect(tickets.redeem(early)?.source == "alice")
        clock.advance(by: .seconds(1))
        #expect(tickets.redeem(late) == nil, "expired at exactly its lifetime")
        #expect(tickets.count == 0, "an expired ticket is removed when presented")
    }

    @Test("a wrong verifier redeems nothing and leaves the real ticket usable; text that is not a ticket is refused")
    func forgeries() throws {
        let tickets = StreamTickets<String>()
        let real = try tickets.issue(for: "alice")
        let forged = StreamTicket(selector: real.selector, verifier: real.verifier ^ 1)
        #expect(tickets.redeem(forged) == nil)
        for text in ["", "nope", String(real.text.dropLast()), real.text + "0", String(real.text.dropLast()) + "g", "-" + real.text.dropFirst()] {
            #expect(tickets.redeem(text) == nil, "\(text)")
        }
        #expect(tickets.redeem(real.text.uppercased())?.source == "alice", "hex digits in either case")
    }

    @Test("tickets are 32 lowercase hex digits that round-trip, distinct, and never printed")
    func format() {
        let tickets = (0..<1000).map { _ in StreamTicket.random() }
        #expect(Set(tickets).count == 1000)
        for ticket in tickets {
            #expect(ticket.text.utf8.count == 32 && ticket.text.allSatisfy { $0.isHexDigit && !$0.isUppercase })
            #expect(StreamTicket(ticket.text) == ticket)
        }
        #expect("\(tickets[0])" == "StreamTicket(…)")
        #expect(StreamTicket(selector: 1, verifier: 0xff).text == "0000000000000001" + "00000000000000ff")
    }

    @Test("past capacity a new ticket is refused with the wait until the oldest expires; none is evicted")
    func capacity() throws {
        let clock = ManualNow()
        var limits = StreamTickets<Int>.Limits()
        limits.capacity = 3
        limits.lifetime = .seconds(30)
        let tickets = StreamTickets<Int>(limits: limits, now: clock.closure)
        var held: [StreamTicket] = []
        for source in 0..<3 {
            held.append(try tickets.issue(for: source))
            clock.advance(by: .seconds(5))
        }
        let error = #expect(throws: StreamTicketError.self) { try tickets.issue(for: 9) }
        #expect(error?.retryAfter == .seconds(15), "the first expires 30 s after it was issued, 15 s from now")
        #expect(error?.isPerSource == false)
        #expect(error?.description.contains("3 stream tickets") == true)
        // Found by the attack run: the text, which the demo sends to the client, gave the wait
        // to the nanosecond ("expires in 25.782625826 seconds"), so when another user asked for
        // the oldest ticket. It says whole seconds, rounded up.
        clock.advance(by: .nanoseconds(1_234_567))
        let later = #expect(throws: StreamTicketError.self) { try tickets.issue(for: 9) }
        #expect(later?.description.hasSuffix("the oldest expires in 15 s") == true, "\(String(describing: later))")
        #expect(later?.retryAfter == .seconds(15) - .nanoseconds(1_234_567), "the property stays exact")
        #expect(tickets.redeem(held[1])?.source == 1, "refusing did not evict")
        _ = try tickets.issue(for: 9)  // the redeemed one made room
        clock.advance(by: .seconds(15))
        _ = try tickets.issue(for: 10)  // the first expired: swept
        #expect(tickets.redeem(held[0]) == nil)
        #expect(tickets.count == 3)
    }

    @Test("one source holds at most perSource tickets; others are unaffected")
    func perSource() throws {
        let clock = ManualNow()
        var limits = StreamTickets<String>.Limits()
        limits.perSource = 2
        let tickets = StreamTickets<String>(limits: limits, now: clock.closure)
        let first = try tickets.issue(for: "mallory")
        clock.advance(by: .seconds(10))
        _ = try tickets.issue(for: "mallory")
        let error = #expect(throws: StreamTicketError.self) { try tickets.issue(for: "mallory") }
        #expect(error?.isPerSource == true)
        #expect(error?.retryAfter == .seconds(20))
        _ = try tickets.issue(for: "alice")
        _ = tickets.redeem(first)
        _ = try tickets.issue(for: "mallory")
    }

    @Test("issuing and redeeming many within one lifetime keeps the sweep queue bounded")
    func queueStaysBounded() {
        var limits = StreamTickets<Int>.Limits()
        limits.capacity = 10
        var book = StreamTicketBook<Int>(limits: limits)
        let now = ContinuousClock.now
        for source in 0..<10_000 {
            let ticket = StreamTicket.random()
            #expect(book.issue(ticket, for: .init(source: source % 7, channels: nil), at: now) == .issued)
            #expect(book.redeem(ticket, at: now)?.source == source % 7)
        }
        #expect(book.count == 0)
        #expect(book.queuedCount <= 2 * limits.capacity + 1024)
    }

    @Test("a selector already held is reported, not overwritten")
    func selectorCollision() {
        var book = StreamTicketBook<String>(limits: .init())
        let now = ContinuousClock.now
        #expect(book.issue(StreamTicket(selector: 7, verifier: 1), for: .init(source: "a", channels: nil), at: now) == .issued)
        #expect(book.issue(StreamTicket(selector: 7, verifier: 2), for: .init(source: "b", channels: nil), at: now) == .selectorTaken)
        #expect(book.redeem(StreamTicket(selector: 7, verifier: 1), at: now)?.source == "a")
    }

    /// The `StreamTickets` doc comment's example, compiled and run.
    @Test("the documented example: POST /ticket, then /events?ticket= once")
    func documentedExample() async throws {
        let hub = EventServer<String>()
        @Sendable func authenticate(_ request: HTTPRequest) async throws -> String? {
            request.headers["Authorization"] == "Bearer t-alice" ? "alice" : nil
        }
        let tickets = StreamTickets<String>()
        var router = HTTPRouter()
        router.post("/ticket") { request in
            // The app's own authentication: a bearer token, a session cookie.
            guard let user = try await authenticate(request) else { throw HTTPError(.unauthorized) }
            let ticket: StreamTicket
            do {
                ticket = try tickets.issue(for: user)
            } catch {
                throw HTTPError(.serviceUnavailable, "\(error)")
            }
            return HTTPResponse(text: #"{"ticket":"\#(ticket.text)"}"#, contentType: "application/json")
        }
        router.events("/events", from: hub) { request in
            guard let ticket = request.query["ticket"], let grant = tickets.redeem(ticket) else {
                throw HTTPError(.unauthorized, "ask POST /ticket for a ticket")
            }
            return grant.source
        }

        var configuration = HTTPServer.Configuration(host: "127.0.0.1", port: 0)
        configuration.logger = .silent
        let server = try HTTPServer(router: router, configuration: configuration)
        let running = Task { await server.run() }
        let poller = try Poller()
        let issuing = try LoopbackClient(port: server.port, poller: poller)
        try await issuing.send("POST /ticket HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer t-alice\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        let answer = try await issuing.readToEnd()
        let ticket = try #require(answer.split(separator: "\"").dropLast().last.map(String.init))
        #expect(StreamTicket(ticket) != nil, "\(answer)")
        let stream = try LoopbackClient(port: server.port, poller: poller)
        try await stream.send("GET /events?ticket=\(ticket) HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await stream.read { $0.contains("\r\n\r\n") }.hasPrefix("HTTP/1.1 200 "))
        try await waitUntil("alice's stream") { await hub.clientCount(source: "alice") == 1 }
        let replay = try LoopbackClient(port: server.port, poller: poller)
        try await replay.send("GET /events?ticket=\(ticket) HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await replay.readToEnd().hasPrefix("HTTP/1.1 401 "))
        server.shutdown()
        await running.value
        for client in [issuing, stream, replay] { client.close() }
        await poller.shutdown()
    }
}
