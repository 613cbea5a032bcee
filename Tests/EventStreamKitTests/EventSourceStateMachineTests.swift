import Foundation
import Testing
@testable import EventStreamKit

/// The WHATWG processing model, without sockets or clocks.
@Suite("EventSource state machine")
struct EventSourceStateMachineTests {
    static let url = URL(string: "http://example.test:8080/events?user=a")!
    static let sse: HTTPHeaders = ["Content-Type": "text/event-stream"]

    func machine(headers: HTTPHeaders = [:], lastEventID: String = "", _ configure: (inout EventSource.Configuration) -> Void = { _ in }) throws -> EventSourceStateMachine {
        var configuration = EventSource.Configuration()
        configure(&configuration)
        return try EventSourceStateMachine(url: Self.url, headers: headers, lastEventID: lastEventID, configuration: configuration)
    }

    @Test("the request carries Accept, Cache-Control, the caller's headers, and Last-Event-ID only when set")
    func requestHeaders() throws {
        var machine = try machine(headers: ["Authorization": "Bearer t"])
        #expect(machine.request.headers["Accept"] == "text/event-stream")
        #expect(machine.request.headers["Cache-Control"] == "no-cache")
        #expect(machine.request.headers["Authorization"] == "Bearer t")
        #expect(machine.request.headers["Last-Event-ID"] == nil)
        machine.update(lastEventID: "41")
        #expect(machine.request.headers["Last-Event-ID"] == "41")
        #expect(try self.machine(lastEventID: "7").request.headers["Last-Event-ID"] == "7")
    }

    @Test("bad URLs, reserved or malformed headers and a bad last event ID throw at creation", arguments: [
        ("ftp://x/", [:], ""), ("/relative", [:], ""), ("http:///nohost", [:], ""),
        ("http://x/", ["Last-Event-ID": "1"], ""), ("http://x/", ["Accept": "*/*"], ""),
        ("http://x/", ["X-Injected": "a\r\nEvil: 1"], ""), ("http://x/", ["Bad Name": "v"], ""),
        ("http://x/", [:], "1\n2"),
    ] as [(String, [String: String], String)])
    func invalidInput(url: String, headers: [String: String], lastEventID: String) {
        #expect(throws: EventSourceError.self) {
            try EventSourceStateMachine(
                url: URL(string: url) ?? URL(string: "x:")!,
                headers: HTTPHeaders(headers.map { (name: $0.key, value: $0.value) }),
                lastEventID: lastEventID,
                configuration: .init()
            )
        }
    }

    @Test("200 with text/event-stream opens; parameters and case do not matter")
    func opens() throws {
        for type in ["text/event-stream", "Text/Event-Stream; charset=utf-8", " text/event-stream ;x=y"] {
            var machine = try machine()
            guard case .open = machine.received(status: 200, headers: ["Content-Type": type]) else {
                Issue.record("did not open for \(type)")
                continue
            }
            #expect(machine.readyState == .open)
        }
    }

    @Test("200 with another or no content type fails for good")
    func wrongContentType() throws {
        for headers: HTTPHeaders in [["Content-Type": "text/plain"], [:], ["Content-Type": "text/event-streams"]] {
            var machine = try machine()
            guard case .fail(let error) = machine.received(status: 200, headers: headers) else {
                Issue.record("did not fail")
                continue
            }
            #expect(error.code == .wrongContentType)
            #expect(machine.readyState == .closed)
        }
    }

    @Test("204 finishes; other statuses fail with the status", arguments: [400, 401, 404, 500, 502, 503, 304, 201])
    func statuses(status: Int) throws {
        var machine = try machine()
        guard case .fail(let error) = machine.received(status: status, headers: Self.sse) else {
            Issue.record("\(status) did not fail")
            return
        }
        #expect(error.code == .badStatus)
        #expect(error.status == status)
        var finishing = try self.machine()
        guard case .finish = finishing.received(status: 204, headers: [:]) else { Issue.record("204 did not finish"); return }
        #expect(finishing.readyState == .closed)
    }

    @Test("redirects are followed up to the limit, relative ones resolved; reconnection goes back to the original URL")
    func redirects() throws {
        var machine = try machine { $0.maxRedirects = 2 }
        guard case .redirect = machine.received(status: 307, headers: ["Location": "/moved?x=1"]) else { Issue.record("no redirect"); return }
        #expect(machine.url.absoluteString == "http://example.test:8080/moved?x=1")
        guard case .redirect = machine.received(status: 301, headers: ["Location": "http://other.test/e"]) else { Issue.record("no redirect"); return }
        #expect(machine.url.absoluteString == "http://other.test/e")
        guard case .fail(let error) = machine.received(status: 302, headers: ["Location": "/again"]) else { Issue.record("no limit"); return }
        #expect(error.code == .tooManyRedirects)

        var reopened = try self.machine()
        _ = reopened.received(status: 302, headers: ["Location": "http://other.test/e"])
        _ = reopened.received(status: 200, headers: Self.sse)
        var generator = SeededGenerator(seed: 1)
        _ = reopened.connectionEnded(error: nil, using: &generator)
        #expect(reopened.url == Self.url)
    }

    @Test("a redirect to another origin drops Authorization; the same origin keeps it")
    func crossOriginRedirect() throws {
        var same = try machine(headers: ["Authorization": "Bearer t", "X-Trace": "1"])
        _ = same.received(status: 302, headers: ["Location": "/other"])
        #expect(same.request.headers["Authorization"] == "Bearer t")
        var cross = try machine(headers: ["Authorization": "Bearer t", "X-Trace": "1"])
        _ = cross.received(status: 302, headers: ["Location": "http://evil.test:8080/events"])
        #expect(cross.request.headers["Authorization"] == nil)
        #expect(cross.request.headers["X-Trace"] == "1")
    }

    @Test("a redirect without a usable Location fails")
    func badLocation() throws {
        var missing = try machine()
        guard case .fail(let error) = missing.received(status: 302, headers: [:]) else { Issue.record("no failure"); return }
        #expect(error.code == .badStatus)
        var ftp = try machine()
        guard case .fail(let other) = ftp.received(status: 302, headers: ["Location": "ftp://x/"]) else { Issue.record("no failure"); return }
        #expect(other.code == .invalidURL)
    }

    @Test("the spec's delay: the configured default, then the server's retry, every time")
    func specDelay() throws {
        var machine = try machine { $0.retry = .milliseconds(1500) }
        var generator = SeededGenerator(seed: 2)
        guard case .reconnect(let first) = machine.connectionEnded(error: nil, using: &generator) else { Issue.record("gave up"); return }
        #expect(first == .milliseconds(1500))
        #expect(machine.readyState == .connecting)
        machine.received(retry: .milliseconds(250))
        for _ in 0..<5 {
            guard case .reconnect(let delay) = machine.connectionEnded(error: nil, using: &generator) else { Issue.record("gave up"); return }
            #expect(delay == .milliseconds(250))
        }
    }

    @Test("exponential backoff grows per failure in a row, caps, and resets when bytes arrive")
    func backoff() throws {
        var machine = try machine {
            $0.retry = .seconds(1)
            $0.backoff = .exponential(multiplier: 2, maximum: .seconds(5), jitter: 0)
        }
        var generator = SeededGenerator(seed: 3)
        var delays: [Duration] = []
        for _ in 0..<5 {
            if case .reconnect(let delay) = machine.connectionEnded(error: nil, using: &generator) { delays.append(delay) }
        }
        #expect(delays == [.seconds(1), .seconds(2), .seconds(4), .seconds(5), .seconds(5)])
        machine.receivedBytes()
        guard case .reconnect(let reset) = machine.connectionEnded(error: nil, using: &generator) else { Issue.record("gave up"); return }
        #expect(reset == .seconds(1))
    }

    @Test("a server retry above the cap is honoured")
    func retryAboveCap() throws {
        var machine = try machine { $0.backoff = .exponential(maximum: .seconds(2), jitter: 0) }
        machine.received(retry: .seconds(10))
        var generator = SeededGenerator(seed: 4)
        for _ in 0..<3 {
            guard case .reconnect(let delay) = machine.connectionEnded(error: nil, using: &generator) else { Issue.record("gave up"); return }
            #expect(delay == .seconds(10))
        }
    }

    @Test("jitter takes at most its share off, and spreads the delays")
    func jitter() throws {
        var machine = try machine {
            $0.retry = .seconds(1)
            $0.backoff = .exponential(multiplier: 1.5, maximum: .seconds(1), jitter: 0.5)
        }
        var generator = SeededGenerator(seed: 5)
        var delays: Set<Duration> = []
        for _ in 0..<50 {
            guard case .reconnect(let delay) = machine.connectionEnded(error: nil, using: &generator) else { Issue.record("gave up"); return }
            #expect(delay > .milliseconds(500) && delay <= .seconds(1))
            delays.insert(delay)
        }
        #expect(delays.count > 40)
    }

    @Test("the attempt limit counts failures in a row and reports the last error")
    func attemptLimit() throws {
        struct Refused: Error {}
        var machine = try machine { $0.maxReconnectAttempts = 2 }
        var generator = SeededGenerator(seed: 6)
        guard case .reconnect = machine.connectionEnded(error: Refused(), using: &generator) else { Issue.record("gave up early"); return }
        machine.receivedBytes()
        guard case .reconnect = machine.connectionEnded(error: Refused(), using: &generator) else { Issue.record("gave up early"); return }
        guard case .reconnect = machine.connectionEnded(error: Refused(), using: &generator) else { Issue.record("gave up early"); return }
        guard case .fail(let error) = machine.connectionEnded(error: Refused(), using: &generator) else { Issue.record("no limit"); return }
        #expect(error.code == .reconnectLimitReached)
        #expect(error.underlying is Refused)
        #expect(machine.readyState == .closed)
    }
}
