import Foundation
import Testing
@testable import EventStreamKit

/// The WHATWG processing model, without sockets or clocks.
@Suite("EventSource state machine")
struct EventSourceStateMachineTests {
    static let url = URL(string: "http://example.test:8080/events?user=a")!
    static let sse: HeaderFields = ["Content-Type": "text/event-stream"]

    func machine(headers: HeaderFields = [:], lastEventID: String = "", _ configure: (inout EventSource.Configuration) -> Void = { _ in }) throws -> EventSourceStateMachine {
        var configuration = EventSource.Configuration()
        configure(&configuration)
        return try EventSourceStateMachine(request: EventSource.Request(url: Self.url, headers: headers), lastEventID: lastEventID, configuration: configuration)
    }

    /// A fixed start of time: the machine gets instants, never reads a clock.
    static let t0 = ContinuousClock.now

    /// Feeds a response head and, if it is a failure, lets the policy decide: what the
    /// iterator does.
    func respond(_ machine: inout EventSourceStateMachine, status: Int, headers: HeaderFields, at now: ContinuousClock.Instant = t0) -> EventSourceStateMachine.ReconnectAction? {
        var generator = SeededGenerator(seed: 9)
        switch machine.received(status: status, headers: headers, at: now) {
        case .failed(let failure): return machine.connectionEnded(failure, at: now, using: &generator)
        case .fail(let error): return .fail(error)
        case .open, .redirect, .finish: return nil
        }
    }

    @Test("the request carries Accept, Cache-Control, the caller's headers, and Last-Event-ID only when set")
    func requestHeaders() throws {
        var machine = try machine(headers: ["Authorization": "Bearer t"])
        #expect(machine.request().headers["Accept"] == "text/event-stream")
        #expect(machine.request().headers["Cache-Control"] == "no-cache")
        #expect(machine.request().headers["Authorization"] == "Bearer t")
        #expect(machine.request().headers["Last-Event-ID"] == nil)
        machine.update(lastEventID: "41")
        #expect(machine.request().headers["Last-Event-ID"] == "41")
        #expect(try self.machine(lastEventID: "7").request().headers["Last-Event-ID"] == "7")
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
                request: EventSource.Request(url: URL(string: url) ?? URL(string: "x:")!, headers: HeaderFields(headers.map { (name: $0.key, value: $0.value) })),
                lastEventID: lastEventID,
                configuration: .init()
            )
        }
    }

    @Test("200 with text/event-stream opens; parameters and case do not matter")
    func opens() throws {
        for type in ["text/event-stream", "Text/Event-Stream; charset=utf-8", " text/event-stream ;x=y"] {
            var machine = try machine()
            guard case .open = machine.received(status: 200, headers: ["Content-Type": type], at: Self.t0) else {
                Issue.record("did not open for \(type)")
                continue
            }
            #expect(machine.readyState == .open)
        }
    }

    @Test("200 with another or no content type fails for good")
    func wrongContentType() throws {
        for headers: HeaderFields in [["Content-Type": "text/plain"], [:], ["Content-Type": "text/event-streams"]] {
            var machine = try machine()
            guard case .fail(let error)? = respond(&machine, status: 200, headers: headers) else {
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
        guard case .fail(let error)? = respond(&machine, status: status, headers: Self.sse) else {
            Issue.record("\(status) did not fail")
            return
        }
        #expect(error.code == .badStatus)
        #expect(error.status == status)
        #expect(machine.readyState == .closed)
        var finishing = try self.machine()
        guard case .finish = finishing.received(status: 204, headers: [:], at: Self.t0) else { Issue.record("204 did not finish"); return }
        #expect(finishing.readyState == .closed)
    }

    @Test("redirects are followed up to the limit, relative ones resolved; reconnection goes back to the original URL")
    func redirects() throws {
        var machine = try machine { $0.maxRedirects = 2 }
        guard case .redirect = machine.received(status: 307, headers: ["Location": "/moved?x=1"], at: Self.t0) else { Issue.record("no redirect"); return }
        #expect(machine.url.absoluteString == "http://example.test:8080/moved?x=1")
        guard case .redirect = machine.received(status: 301, headers: ["Location": "http://other.test/e"], at: Self.t0) else { Issue.record("no redirect"); return }
        #expect(machine.url.absoluteString == "http://other.test/e")
        guard case .fail(let error) = machine.received(status: 302, headers: ["Location": "/again"], at: Self.t0) else { Issue.record("no limit"); return }
        #expect(error.code == .tooManyRedirects)

        var reopened = try self.machine()
        _ = reopened.received(status: 302, headers: ["Location": "http://other.test/e"], at: Self.t0)
        _ = reopened.received(status: 200, headers: Self.sse, at: Self.t0)
        var generator = SeededGenerator(seed: 1)
        _ = reopened.connectionEnded(.endOfStream, at: Self.t0, using: &generator)
        #expect(reopened.url == Self.url)
    }

    @Test("a redirect to another origin drops Authorization; the same origin keeps it")
    func crossOriginRedirect() throws {
        var same = try machine(headers: ["Authorization": "Bearer t", "X-Trace": "1"])
        _ = same.received(status: 302, headers: ["Location": "/other"], at: Self.t0)
        #expect(same.request().headers["Authorization"] == "Bearer t")
        var cross = try machine(headers: ["Authorization": "Bearer t", "X-Trace": "1"])
        _ = cross.received(status: 302, headers: ["Location": "http://evil.test:8080/events"], at: Self.t0)
        #expect(cross.request().headers["Authorization"] == nil)
        #expect(cross.request().headers["X-Trace"] == "1")
    }

    @Test("a redirect without a usable Location fails")
    func badLocation() throws {
        var missing = try machine()
        guard case .fail(let error)? = respond(&missing, status: 302, headers: [:]) else { Issue.record("no failure"); return }
        #expect(error.code == .badStatus)
        var ftp = try machine()
        guard case .fail(let other) = ftp.received(status: 302, headers: ["Location": "ftp://x/"], at: Self.t0) else { Issue.record("no failure"); return }
        #expect(other.code == .invalidURL)
    }

    @Test("the spec's delay: the configured default, then the server's retry, every time")
    func specDelay() throws {
        var machine = try machine {
            $0.retry = .milliseconds(1500)
            $0.minimumRetry = .milliseconds(100)
        }
        var generator = SeededGenerator(seed: 2)
        guard case .reconnect(let first) = machine.connectionEnded(.endOfStream, at: Self.t0, using: &generator) else { Issue.record("gave up"); return }
        #expect(first == .milliseconds(1500))
        #expect(machine.readyState == .connecting)
        machine.received(retry: .milliseconds(250))
        for _ in 0..<5 {
            guard case .reconnect(let delay) = machine.connectionEnded(.endOfStream, at: Self.t0, using: &generator) else { Issue.record("gave up"); return }
            #expect(delay == .milliseconds(250))
        }
    }

    @Test("exponential backoff grows per failure in a row, caps, and resets only after a connection stayed open for the threshold")
    func backoff() throws {
        var machine = try machine {
            $0.retry = .seconds(1)
            $0.backoff = .exponential(multiplier: 2, maximum: .seconds(5), jitter: 0)
        }
        var generator = SeededGenerator(seed: 3)
        var delays: [Duration] = []
        for _ in 0..<5 {
            if case .reconnect(let delay) = machine.connectionEnded(.endOfStream, at: Self.t0, using: &generator) { delays.append(delay) }
        }
        #expect(delays == [.seconds(1), .seconds(2), .seconds(4), .seconds(5), .seconds(5)])
        // A connection that delivers and drops before the threshold does not reset the count.
        _ = machine.received(status: 200, headers: Self.sse, at: Self.t0)
        guard case .reconnect(let flapping) = machine.connectionEnded(.endOfStream, at: Self.t0 + .seconds(59), using: &generator) else { Issue.record("gave up"); return }
        #expect(flapping == .seconds(5))
        // One that stayed open for the threshold does.
        _ = machine.received(status: 200, headers: Self.sse, at: Self.t0 + .seconds(100))
        guard case .reconnect(let reset) = machine.connectionEnded(.endOfStream, at: Self.t0 + .seconds(160), using: &generator) else { Issue.record("gave up"); return }
        #expect(reset == .seconds(1))
    }

    @Test("a server retry above the cap is honoured")
    func retryAboveCap() throws {
        var machine = try machine { $0.backoff = .exponential(maximum: .seconds(2), jitter: 0) }
        machine.received(retry: .seconds(10))
        var generator = SeededGenerator(seed: 4)
        for _ in 0..<3 {
            guard case .reconnect(let delay) = machine.connectionEnded(.endOfStream, at: Self.t0, using: &generator) else { Issue.record("gave up"); return }
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
            guard case .reconnect(let delay) = machine.connectionEnded(.endOfStream, at: Self.t0, using: &generator) else { Issue.record("gave up"); return }
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
        guard case .reconnect = machine.connectionEnded(.network(Refused()), at: Self.t0, using: &generator) else { Issue.record("gave up early"); return }
        _ = machine.received(status: 200, headers: Self.sse, at: Self.t0)
        machine.receivedEvent()
        // It delivered an event: the count starts again.
        guard case .reconnect = machine.connectionEnded(.endOfStream, at: Self.t0 + .seconds(1), using: &generator) else { Issue.record("gave up early"); return }
        guard case .reconnect = machine.connectionEnded(.network(Refused()), at: Self.t0, using: &generator) else { Issue.record("gave up early"); return }
        guard case .reconnect = machine.connectionEnded(.network(Refused()), at: Self.t0, using: &generator) else { Issue.record("gave up early"); return }
        guard case .fail(let error) = machine.connectionEnded(.network(Refused()), at: Self.t0, using: &generator) else { Issue.record("no limit"); return }
        #expect(error.code == .reconnectLimitReached)
        #expect(error.underlying is Refused)
        #expect(machine.readyState == .closed)
    }

    @Test("giving up always says why: the last error, or that the server ended the stream")
    func attemptLimitSaysWhy() throws {
        var ending = try machine { $0.maxReconnectAttempts = 0 }
        var generator = SeededGenerator(seed: 7)
        _ = ending.received(status: 200, headers: Self.sse, at: Self.t0)
        guard case .fail(let ended) = ending.connectionEnded(.endOfStream, at: Self.t0, using: &generator) else { Issue.record("no limit"); return }
        #expect(ended.description == "gave up after 1 failed attempt in a row: the server ended the stream")
        #expect(ended.underlying == nil, "a stream that ended is no error")
        var refused = try machine { $0.maxReconnectAttempts = 0 }
        guard case .fail(let error) = refused.connectionEnded(.network(SocketError("connect", code: ECONNREFUSED)), at: Self.t0, using: &generator) else { Issue.record("no limit"); return }
        #expect(error.description == "gave up after 1 failed attempt in a row: connect failed: Connection refused (errno 111)")
    }

    // MARK: Hostile numbers, URLs and redirects

    @Test("a server's retry saturates at maximumRetry and never goes under minimumRetry; no value traps", arguments: [
        Duration.milliseconds(Int64.max), .seconds(Int64.max), .zero, .milliseconds(1), .seconds(7_200),
    ])
    func retryIsClamped(retry: Duration) throws {
        var machine = try machine()
        machine.received(retry: retry)
        #expect(machine.reconnectionTime == max(.milliseconds(500), min(retry, .seconds(3600))))
        var generator = SeededGenerator(seed: 10)
        guard case .reconnect(let delay) = machine.connectionEnded(.endOfStream, at: Self.t0, using: &generator) else { Issue.record("gave up"); return }
        #expect(delay >= .milliseconds(500) && delay <= .seconds(3600))
    }

    @Test("after retry: 0 the backoff grows from the floor, not from zero")
    func backoffGrowsFromTheFloor() throws {
        var machine = try machine { $0.backoff = .exponential(multiplier: 2, maximum: .seconds(30), jitter: 0) }
        machine.received(retry: .zero)
        var generator = SeededGenerator(seed: 11)
        var delays: [Duration] = []
        for _ in 0..<8 {
            _ = machine.received(status: 200, headers: Self.sse, at: Self.t0)
            // A flapping server: open, one comment, closed at once.
            if case .reconnect(let delay) = machine.connectionEnded(.endOfStream, at: Self.t0 + .milliseconds(1), using: &generator) { delays.append(delay) }
        }
        #expect(delays == [0.5, 1, 2, 4, 8, 16, 30, 30].map { Duration.milliseconds(Int64($0 * 1000)) })
    }

    @Test("exponential backoff with absurd settings neither traps nor goes under the floor")
    func absurdBackoff() throws {
        var machine = try machine {
            $0.backoff = .exponential(multiplier: .infinity, maximum: .seconds(Int64.max), jitter: .nan)
            $0.maxReconnectAttempts = nil
        }
        var generator = SeededGenerator(seed: 12)
        for _ in 0..<200 {
            guard case .reconnect(let delay) = machine.connectionEnded(.network(CancellationError()), at: Self.t0, using: &generator) else { Issue.record("gave up"); return }
            #expect(delay >= .milliseconds(500))
        }
    }

    @Test("ports outside 1...65535 are invalid, at creation and in a redirect's Location", arguments: [
        "http://127.0.0.1:0/e", "http://127.0.0.1:65536/e", "http://127.0.0.1:99999/e", "http://127.0.0.1:18446744073709551617/e",
    ])
    func invalidPorts(url: String) throws {
        if let parsed = URL(string: url) {
            #expect(throws: EventSourceError.self) { try EventSource(url: parsed) }
        }
        var machine = try machine()
        let outcome = respond(&machine, status: 307, headers: ["Location": url])
        guard case .fail(let error)? = outcome else { Issue.record("followed \(url)"); return }
        #expect(error.code == .invalidURL)
        #expect(machine.readyState == .closed)
    }

    @Test("a redirect to another origin drops every credential header: the usual ones, the configured ones, the provider's; any case")
    func crossOriginDropsCredentials() throws {
        let headers: HeaderFields = ["authorization": "Bearer t", "Cookie": "c=1", "PROXY-Authorization": "Basic x", "X-Api-Key": "k", "X-Trace": "1"]
        var machine = try machine(headers: headers) { $0.sensitiveHeaders = ["x-api-KEY"] }
        let provided: HeaderFields = ["Authorization": "Bearer fresh", "X-Provided": "p"]
        #expect(machine.request(adding: provided).headers.values("Authorization") == ["Bearer t", "Bearer fresh"])
        _ = machine.received(status: 307, headers: ["Location": "http://other.test:8080/events"], at: Self.t0)
        let sent = machine.request(adding: provided).headers
        for name in ["Authorization", "Cookie", "Proxy-Authorization", "X-Api-Key"] { #expect(sent[name] == nil, "\(name) followed the redirect") }
        #expect(sent["X-Trace"] == "1")
        #expect(sent["X-Provided"] == "p")
        // A redirect back to the first origin does not bring them back within this connection.
        _ = machine.received(status: 307, headers: ["Location": Self.url.absoluteString], at: Self.t0)
        #expect(machine.request().headers["Cookie"] == nil)
        // The next connection starts at the original origin again, with its credentials.
        var generator = SeededGenerator(seed: 13)
        _ = machine.connectionEnded(.endOfStream, at: Self.t0, using: &generator)
        #expect(machine.request().headers["Cookie"] == "c=1")
    }

    @Test("https to http is refused unless allowed; http to https is fine")
    func insecureRedirect() throws {
        func machine(_ allow: Bool) throws -> EventSourceStateMachine {
            var configuration = EventSource.Configuration()
            configuration.allowsInsecureRedirects = allow
            return try EventSourceStateMachine(request: EventSource.Request(url: URL(string: "https://secure.test/e")!), lastEventID: "", configuration: configuration)
        }
        var refusing = try machine(false)
        guard case .fail(let error) = refusing.received(status: 302, headers: ["Location": "http://secure.test/e"], at: Self.t0) else { Issue.record("followed"); return }
        #expect(error.code == .insecureRedirect)
        var allowing = try machine(true)
        guard case .redirect = allowing.received(status: 302, headers: ["Location": "http://secure.test/e"], at: Self.t0) else { Issue.record("refused"); return }
        var upgrading = try self.machine()
        guard case .redirect = upgrading.received(status: 302, headers: ["Location": "https://example.test/e"], at: Self.t0) else { Issue.record("refused"); return }
    }

    // MARK: Requests, policy

    @Test("any method and body; 303 (and 301/302 after POST) turn into GET without a body, 307/308 keep both; reconnection sends the original")
    func methodsAndRedirects() throws {
        let body = Array(#"{"q":1}"#.utf8)
        func post() throws -> EventSourceStateMachine {
            try EventSourceStateMachine(request: EventSource.Request(url: Self.url, method: "POST", headers: ["Content-Type": "application/json"], body: body), lastEventID: "", configuration: .init())
        }
        var machine = try post()
        #expect(machine.request().method == "POST")
        #expect(machine.request().body == body)
        #expect(machine.request().headers["Accept-Encoding"] == "identity")
        _ = machine.received(status: 307, headers: ["Location": "/b"], at: Self.t0)
        #expect(machine.request().method == "POST" && machine.request().body == body)
        _ = machine.received(status: 303, headers: ["Location": "/c"], at: Self.t0)
        #expect(machine.request().method == "GET" && machine.request().body == nil)
        #expect(machine.request().headers["Content-Type"] == nil, "a GET without a body carries no Content-Type")
        var generator = SeededGenerator(seed: 14)
        _ = machine.connectionEnded(.endOfStream, at: Self.t0, using: &generator)
        #expect(machine.request().method == "POST" && machine.request().body == body && machine.request().url == Self.url)
        #expect(machine.request().headers["Content-Type"] == "application/json")
        var moved = try post()
        _ = moved.received(status: 301, headers: ["Location": "/d"], at: Self.t0)
        #expect(moved.request().method == "GET")
    }

    @Test("a method that is not a token, CONNECT, TRACE or HEAD is refused at creation", arguments: ["", "GE T", "G\r\nX", "CONNECT", "TRACE", "HEAD", "head"])
    func invalidMethods(method: String) {
        #expect(throws: EventSourceError.self) { try EventSource(request: EventSource.Request(url: Self.url, method: method)) }
    }

    @Test("the standard policy: network errors, timeouts and the end of a stream reconnect; statuses and content types stop")
    func standardPolicy() throws {
        let policy = EventSource.ErrorPolicy.standard
        #expect(policy.decide(.network(CancellationError()), attempt: 1) == .retry)
        #expect(policy.decide(.connectTimeout(.seconds(1)), attempt: 9) == .retry)
        #expect(policy.decide(.readTimeout(.seconds(1)), attempt: 1) == .retry)
        #expect(policy.decide(.endOfStream, attempt: 1) == .retry)
        #expect(policy.decide(.status(503, headers: [:]), attempt: 1) == .stop)
        #expect(policy.decide(.contentType("text/html"), attempt: 1) == .stop)
    }

    @Test("a policy of one's own: retry a 503 after its Retry-After, count attempts, stop on network errors; the floor holds")
    func customPolicy() throws {
        let seen = Counter()
        var machine = try machine {
            $0.errorPolicy = EventSource.ErrorPolicy { failure, attempt in
                seen.increment()
                switch failure {
                case .status(503, let headers): return attempt <= 2 ? .retryAfter(.seconds(Int64(headers["Retry-After"] ?? "") ?? 1)) : .stop
                case .status(429, _): return .retryAfter(.zero)
                default: return .stop
                }
            }
        }
        #expect(respond(&machine, status: 503, headers: ["Retry-After": "7"]) == .reconnect(after: .seconds(7)))
        #expect(respond(&machine, status: 429, headers: [:]) == .reconnect(after: .milliseconds(500)))
        guard case .fail(let error)? = respond(&machine, status: 503, headers: ["Retry-After": "7"]) else { Issue.record("did not stop"); return }
        #expect(error.code == .badStatus && error.status == 503)
        #expect(seen.count == 3)
        var network = try self.machine { $0.errorPolicy = EventSource.ErrorPolicy { _, _ in .stop } }
        var generator = SeededGenerator(seed: 15)
        guard case .fail(let failed) = network.connectionEnded(.network(CancellationError()), at: Self.t0, using: &generator) else { Issue.record("did not stop"); return }
        #expect(failed.code == .connectionFailed && failed.underlying is CancellationError)
        var ended = try self.machine { $0.errorPolicy = EventSource.ErrorPolicy { _, _ in .stop } }
        #expect(ended.connectionEnded(.endOfStream, at: Self.t0, using: &generator) == .finish)
    }

    @Test("a request that is not retryable ends with its first failure: timeouts throw timedOut, the end of the stream ends the sequence")
    func notRetryable() throws {
        func machine() throws -> EventSourceStateMachine {
            try EventSourceStateMachine(request: EventSource.Request(url: Self.url, method: "POST", isRetryable: false), lastEventID: "", configuration: .init())
        }
        var generator = SeededGenerator(seed: 16)
        var timedOut = try machine()
        guard case .fail(let error) = timedOut.connectionEnded(.readTimeout(.seconds(5)), at: Self.t0, using: &generator) else { Issue.record("retried"); return }
        #expect(error.code == .timedOut)
        var ended = try machine()
        #expect(ended.connectionEnded(.endOfStream, at: Self.t0, using: &generator) == .finish)
        #expect(ended.readyState == .closed)
    }

    @Test("reconnectNow goes back to the original URL without counting a failure")
    func reconnectNow() throws {
        var machine = try machine { $0.backoff = .exponential(jitter: 0) }
        var generator = SeededGenerator(seed: 17)
        _ = machine.connectionEnded(.network(CancellationError()), at: Self.t0, using: &generator)
        _ = machine.received(status: 307, headers: ["Location": "http://other.test/x"], at: Self.t0)
        machine.reconnectingNow()
        #expect(machine.url == Self.url)
        #expect(machine.failures == 1)
        #expect(machine.readyState == .connecting)
    }

    @Test("the attempt limit counts attempts without events: a stream that delivers and closes starts it again, though not the backoff")
    func limitResetsOnEventsBackoffDoesNot() throws {
        var machine = try machine {
            $0.maxReconnectAttempts = 1
            $0.backoff = .exponential(multiplier: 2, maximum: .seconds(60), jitter: 0)
            $0.retry = .seconds(1)
        }
        var generator = SeededGenerator(seed: 18)
        var delays: [Duration] = []
        for _ in 0..<5 {
            _ = machine.received(status: 200, headers: Self.sse, at: Self.t0)
            machine.receivedEvent()
            guard case .reconnect(let delay) = machine.connectionEnded(.endOfStream, at: Self.t0 + .seconds(2), using: &generator) else { Issue.record("gave up on a server that delivers"); return }
            delays.append(delay)
        }
        #expect(delays == [1, 2, 4, 8, 16].map { Duration.seconds($0) })
        // Two in a row without events: the limit of 1 reconnection is spent.
        guard case .reconnect = machine.connectionEnded(.network(CancellationError()), at: Self.t0, using: &generator) else { Issue.record("gave up early"); return }
        guard case .fail(let error) = machine.connectionEnded(.network(CancellationError()), at: Self.t0, using: &generator) else { Issue.record("no limit"); return }
        #expect(error.code == .reconnectLimitReached)
        #expect(error.description.contains("2 failed attempts"))
    }

    @Test("credentials in a URL are refused, at creation and in a redirect, and never shown", arguments: ["http://alice:s3cr3t@127.0.0.1:8080/e", "http://alice@127.0.0.1/e"])
    func credentialsInURLs(url: String) throws {
        #expect { try EventSource(url: url) } throws: { error in
            let error = error as? EventSourceError
            return error?.code == .invalidURL && error?.description.contains("s3cr3t") == false && error?.description.contains("alice") == false
        }
        var machine = try machine()
        guard case .fail(let error)? = respond(&machine, status: 302, headers: ["Location": url]) else { Issue.record("followed"); return }
        #expect(error.code == .invalidURL)
        #expect(!error.description.contains("s3cr3t"))
    }

    @Test("several Content-Type values: the last counts, as fetch extracts a MIME type")
    func severalContentTypes() throws {
        var plainLast = try machine()
        guard case .fail? = respond(&plainLast, status: 200, headers: HeaderFields([("Content-Type", "text/event-stream"), ("Content-Type", "text/plain")])) else { Issue.record("opened"); return }
        var sseLast = try machine()
        guard case .open = sseLast.received(status: 200, headers: HeaderFields([("Content-Type", "text/plain"), ("Content-Type", "text/event-stream; charset=utf-8")]), at: Self.t0) else { Issue.record("did not open"); return }
    }
}
