import Foundation
import Synchronization
import Testing
@testable import EventStreamKit

/// The client against servers that misbehave on purpose, on every transport where the case
/// applies: timeouts, interim responses, content codings, redirects with credentials, POST
/// streams, the error policy and state changes, reconnectNow, close in every phase.
@Suite("EventSource: timeouts, requests, redirects, policy and states on real sockets")
struct EventSourceNetworkTests {
    static func configuration(_ transport: EventSource.Transport, _ configure: (inout EventSource.Configuration) -> Void = { _ in }) -> EventSource.Configuration {
        var configuration = EventSource.Configuration()
        configuration.retry = .milliseconds(20)
        configuration.minimumRetry = .milliseconds(20)
        configuration.transport = transport
        configure(&configuration)
        return configuration
    }

    /// Records a source's state changes from before its first attempt.
    final class StateLog: Sendable {
        private final class Changes: Sendable {
            let list = Mutex<[String]>([])
        }

        private let changes = Changes()
        private let task: Task<Void, Never>

        init(_ source: EventSource) {
            let stream = source.stateChanges
            let changes = self.changes
            task = Task { for await change in stream { changes.list.withLock { $0.append(Self.name(change)) } } }
        }

        var all: [String] { changes.list.withLock { $0 } }
        func finished() async { await task.value }

        static func name(_ change: EventSource.StateChange) -> String {
            switch change {
            case .connecting(let attempt): "connecting \(attempt)"
            case .open: "open"
            case .retrying(_, .connectTimeout): "retrying after connect timeout"
            case .retrying(_, .readTimeout): "retrying after read timeout"
            case .retrying(_, .endOfStream): "retrying after end"
            case .retrying(_, .network): "retrying after network error"
            case .retrying(_, let failure): "retrying after \(failure)"
            case .closed(nil): "closed"
            case .closed(let failure?): "closed: \(failure)"
            }
        }
    }

    /// Every transport of this platform for `http://` URLs: the built-in client, and on Apple
    /// platforms also URLSession (Linux has no second one: the built-in client serves https
    /// too; `Tests/HostileServers` drives it over TLS).
    #if canImport(Darwin)
    static let transports: [EventSource.Transport] = [.automatic, .foundation]
    #else
    static let transports: [EventSource.Transport] = [.automatic]
    #endif

    @Test("a server that accepts and never answers: the connect timeout fails the attempt and the source retries", arguments: transports)
    func connectTimeout(transport: EventSource.Transport) async throws {
        try await withScriptedServer({ _ in [.holdOpen] }) { server in
            let source = try EventSource(url: server.url, configuration: Self.configuration(transport) { $0.connectTimeout = .milliseconds(300) })
            let log = StateLog(source)
            let started = ContinuousClock.now
            let reader = Task { for try await _ in source {} }
            do {
                try await waitUntil("a second attempt", timeout: .seconds(10)) { server.requests.count >= 2 }
            } catch {
                Issue.record("states: \(log.all), requests: \(server.requests.count)")
                throw error
            }
            #expect(started.duration(to: server.requests[1].receivedAt) >= .milliseconds(300))
            source.close()
            _ = try await reader.value
            await log.finished()
            #expect(Array(log.all.prefix(3)) == ["connecting 1", "retrying after connect timeout", "connecting 2"])
            #expect(log.all.last == "closed")
        }
    }

    @Test("the connect timeout bounds the whole attempt, redirects included, not each hop", arguments: transports)
    func connectTimeoutCoversRedirects(transport: EventSource.Transport) async throws {
        let redirect = "HTTP/1.1 307 Temporary Redirect\r\nLocation: /events\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        try await withScriptedServer({ _ in [.pause(.milliseconds(150)), .send(redirect), .close] }) { server in
            let source = try EventSource(url: server.url, configuration: Self.configuration(transport) {
                $0.connectTimeout = .milliseconds(500)
                $0.retry = .seconds(30)  // one attempt is all this test looks at
                $0.minimumRetry = .seconds(30)
            })
            let log = StateLog(source)
            let reader = Task { for try await _ in source {} }
            try await waitUntil("the attempt timed out", timeout: .seconds(10)) { log.all.contains("retrying after connect timeout") }
            source.close()
            _ = try await reader.value
            // Per hop, no hop would ever time out: ten redirects, then tooManyRedirects, and
            // no "retrying after connect timeout" at all. (No wall-clock bound: CI's loaded
            // machine took 6 s to notice what took 0.5 s.)
            #expect(server.requests.count <= 5, "\(server.requests.count) hops in 500 ms of 150 ms each")
        }
    }

    @Test("a stream that goes silent: the read timeout drops it and the source reconnects with Last-Event-ID", arguments: transports)
    func readTimeout(transport: EventSource.Transport) async throws {
        try await withScriptedServer({ request in
            request.index == 0 ? [.streamHead, .send("id: 7\ndata: a\n\n"), .holdOpen] : [.send("HTTP/1.1 204 No Content\r\n\r\n")]
        }) { server in
            let source = try EventSource(url: server.url, configuration: Self.configuration(transport) { $0.readTimeout = .milliseconds(400) })
            let log = StateLog(source)
            let started = ContinuousClock.now
            let events = try await withDeadline(.seconds(10)) { try await source.reduce(into: [String]()) { $0.append($1.data) } }
            #expect(events == ["a"])
            #expect(started.duration(to: .now) >= .milliseconds(400))
            #expect(server.requests.count == 2)
            #expect(server.requests[1].header("Last-Event-ID") == "7")
            await log.finished()
            #expect(log.all == ["connecting 1", "open", "retrying after read timeout", "connecting 2", "closed"])
        }
    }

    @Test("a slow but steady stream is not timed out: every byte restarts the read timeout", arguments: [EventSource.Transport.automatic])
    func steadyStreamIsNotTimedOut(transport: EventSource.Transport) async throws {
        // 15 beats 100 ms apart: the stream lasts longer than the 1 s read timeout, and no gap
        // comes near it (even on a loaded machine).
        let beats = (0..<15).map { _ in ScriptedServer.Step.send(": beat\n\n") }
        try await withScriptedServer({ request in
            request.index == 0 ? [.streamHead] + beats.flatMap { [$0, .pause(.milliseconds(100))] } + [.send("data: done\n\n"), .holdOpen] : [.holdOpen]
        }) { server in
            let source = try EventSource(url: server.url, configuration: Self.configuration(transport) { $0.readTimeout = .seconds(1) })
            let first = try await withDeadline(.seconds(10)) { try await source.first { _ in true } }
            #expect(first?.data == "done")
            #expect(server.requests.count == 1)
        }
    }

    @Test("https: a TLS handshake the server never answers is bounded by the connect timeout, and close() ends it at once")
    func stalledHandshake() async throws {
        try await withScriptedServer({ _ in [] }) { server in
            let url = server.url.replacingOccurrences(of: "http://", with: "https://")
            let source = try EventSource(url: url, configuration: Self.configuration(.automatic) { $0.connectTimeout = .milliseconds(300) })
            let log = StateLog(source)
            let reader = Task { for try await _ in source {} }
            try await waitUntil("two abandoned handshakes", timeout: .seconds(10)) { server.closedBeforeRequest >= 2 }
            let closedAt = ContinuousClock.now
            source.close()
            _ = try await withDeadline(.seconds(2)) { try await reader.value }
            #expect(closedAt.duration(to: .now) < .milliseconds(1500), "close() must not wait for the handshake")
            await log.finished()
            #expect(Array(log.all.prefix(3)) == ["connecting 1", "retrying after connect timeout", "connecting 2"])
            #expect(server.requests.isEmpty)
        }
    }

    @Test("close() while the response head is awaited ends the sequence at once", arguments: transports)
    func closeWhileConnecting(transport: EventSource.Transport) async throws {
        try await withScriptedServer({ _ in [.holdOpen] }) { server in
            // Nothing but close() ends the wait for the head within a minute; the bounds below
            // are far from that, and far from what a loaded machine takes to run a close.
            let source = try EventSource(url: server.url, configuration: Self.configuration(transport) { $0.connectTimeout = .seconds(60) })
            let reader = Task { try await source.reduce(0) { count, _ in count + 1 } }
            try await waitUntil("the request") { server.requests.count == 1 }
            let closedAt = ContinuousClock.now
            source.close()
            let count = try await withDeadline(.seconds(20)) { try await reader.value }
            #expect(count == 0)
            #expect(closedAt.duration(to: .now) < .seconds(20), "close() must not wait for the head")
            try await waitUntil("the server to see the close", timeout: .seconds(20)) { server.closures.count == 1 }
            #expect(source.readyState == .closed)
        }
    }

    @Test("interim 1xx responses (100, 103 Early Hints) are skipped; the final 200 opens the stream", arguments: transports)
    func interimResponses(transport: EventSource.Transport) async throws {
        let events = try await withScriptedServer({ request in
            request.index > 0 ? [.send("HTTP/1.1 204 No Content\r\n\r\n")] : [
                .send("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"),
                .streamHead, .send("data: after hints\n\n"), .close,
            ]
        }) { server in
            try await withDeadline(.seconds(10)) {
                try await EventSource(url: server.url, configuration: Self.configuration(transport)).reduce(into: [String]()) { $0.append($1.data) }
            }
        }
        #expect(events == ["after hints"])
    }

    @Test("the built-in client asks for identity and fails loudly on a content coding it cannot decode")
    func contentEncoding() async throws {
        try await withScriptedServer({ _ in
            [.send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n\r\n\u{1F}\u{8B}\u{8}"), .holdOpen]
        }) { server in
            let source = try EventSource(url: server.url, configuration: Self.configuration(.automatic))
            await #expect { _ = try await withDeadline(.seconds(5)) { try await source.first { _ in true } } } throws: {
                ($0 as? EventSourceError)?.code == .unsupportedContentEncoding
            }
            #expect(server.requests.count == 1)
            #expect(server.requests[0].header("Accept-Encoding") == "identity")
        }
    }

    @Test("a redirect to another origin carries no credentials on either transport; the target still gets harmless headers", arguments: transports)
    func credentialsStayHome(transport: EventSource.Transport) async throws {
        try await withScriptedServer({ _ in [.streamHead, .send("data: elsewhere\n\n"), .holdOpen] }) { target in
            try await withScriptedServer({ _ in [.send("HTTP/1.1 307 Temporary Redirect\r\nLocation: \(target.url)\r\nContent-Length: 0\r\n\r\n"), .holdOpen] }) { origin in
                let headers: HeaderFields = ["Authorization": "Bearer s", "Cookie": "c=1", "Proxy-Authorization": "Basic x", "X-Api-Key": "k", "X-Trace": "1"]
                let source = try EventSource(url: origin.url, headers: headers, configuration: Self.configuration(transport) { $0.sensitiveHeaders = ["X-Api-Key"] })
                let first = try await withDeadline(.seconds(10)) { try await source.first { _ in true } }
                #expect(first?.data == "elsewhere")
                #expect(origin.requests[0].header("Cookie") == "c=1")
                let forwarded = try #require(target.requests.first)
                for name in ["Authorization", "Cookie", "Proxy-Authorization", "X-Api-Key"] {
                    #expect(forwarded.header(name) == nil, "\(name) reached the other origin")
                }
                #expect(forwarded.header("X-Trace") == "1")
            }
        }
    }

    /// Found by the attack run: `getaddrinfo(127.0.0.1.): Name or service not known failed: No
    /// route to host (errno 113)`, a made-up errno after getaddrinfo's own message.
    @Test("a failed name lookup says getaddrinfo's own message, and no errno it did not set")
    func aFailedLookupSaysWhy() throws {
        let error = #expect(throws: SocketError.self) { try Socket.lookup("127.0.0.1.", port: 80, numericOnly: true) }
        #expect(error?.description == "getaddrinfo(127.0.0.1.) failed: \(String(cString: gai_strerror(EAI_NONAME)))")
        #expect(error?.operation == "getaddrinfo(127.0.0.1.)")
        // A system call's error still names its errno.
        #expect(SocketError("connect", code: ECONNREFUSED).description == "connect failed: Connection refused (errno 111)")
    }

    @Test("a POST stream sends its method, body and Content-Length; on reconnection the same request again with Last-Event-ID", arguments: transports)
    func postStream(transport: EventSource.Transport) async throws {
        let body = Array(#"{"model":"m","stream":true}"#.utf8)
        let requests = try await withScriptedServer({ request in
            switch request.index {
            case 0: [.streamHead, .send("id: 1\ndata: {\"delta\":\"Hel\"}\n\n"), .close]
            case 1: [.streamHead, .send("data: {\"delta\":\"lo\"}\n\ndata: [DONE]\n\n"), .holdOpen]
            default: [.holdOpen]
            }
        }) { server in
            var request = EventSource.Request(url: URL(string: server.url)!, method: "POST", headers: ["Content-Type": "application/json"], body: body)
            request.isRetryable = true
            let source = try EventSource(request: request, configuration: Self.configuration(transport))
            let deltas = try await withDeadline(.seconds(10)) {
                var deltas: [String] = []
                for try await event in source {
                    if event.data == "[DONE]" { break }
                    deltas.append(event.data)
                }
                return deltas
            }
            #expect(deltas == [#"{"delta":"Hel"}"#, #"{"delta":"lo"}"#])
            return server.requests
        }
        #expect(requests.count == 2)
        for request in requests {
            #expect(request.method == "POST")
            #expect(request.body == body)
            #expect(request.header("Content-Length") == "\(body.count)")
            #expect(request.header("Content-Type") == "application/json")
        }
        #expect(requests[1].header("Last-Event-ID") == "1")
    }

    @Test("a request that is not retryable is sent once: its stream's end ends the sequence, its failure is thrown")
    func notRetryable() async throws {
        let count = try await withScriptedServer({ _ in [.streamHead, .send("data: only\n\n"), .close] }) { server in
            let request = EventSource.Request(url: URL(string: server.url)!, method: "POST", body: [], isRetryable: false)
            let events = try await withDeadline(.seconds(5)) {
                try await EventSource(request: request, configuration: Self.configuration(.automatic)).reduce(into: [String]()) { $0.append($1.data) }
            }
            #expect(events == ["only"])
            return server.requests.count
        }
        #expect(count == 1)
        let refused = EventSource.Request(url: URL(string: "http://127.0.0.1:9/events")!, method: "POST", isRetryable: false)
        await #expect { _ = try await withDeadline(.seconds(5)) { try await EventSource(request: refused).first { _ in true } } } throws: {
            ($0 as? EventSourceError)?.code == .connectionFailed
        }
    }

    @Test("the header provider runs before every attempt: a refreshed token goes out on each reconnection")
    func headerProvider() async throws {
        let tokens = Counter()
        let requests = try await withScriptedServer({ request in
            request.index < 2 ? [.streamHead, .send("data: \(request.index)\n\n"), .close] : [.send("HTTP/1.1 204 No Content\r\n\r\n")]
        }) { server in
            let source = try EventSource(url: server.url, configuration: Self.configuration(.automatic) {
                $0.headerProvider = {
                    tokens.increment()
                    return ["Authorization": "Bearer token-\(tokens.count)"]
                }
            })
            _ = try await withDeadline(.seconds(10)) { try await source.reduce(0) { count, _ in count + 1 } }
            return server.requests
        }
        #expect(requests.map { $0.header("Authorization") } == ["Bearer token-1", "Bearer token-2", "Bearer token-3"])
    }

    @Test("an error policy retries a 503 after its Retry-After, and state changes report each step")
    func policyAndStates() async throws {
        try await withScriptedServer({ request in
            switch request.index {
            case 0: [.send("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n"), .holdOpen]
            case 1: [.streamHead, .send("data: up\n\n"), .close]
            default: [.send("HTTP/1.1 204 No Content\r\n\r\n")]
            }
        }) { server in
            let source = try EventSource(url: server.url, configuration: Self.configuration(.automatic) {
                $0.errorPolicy = EventSource.ErrorPolicy { failure, attempt in
                    if case .status(503, _) = failure { return .retryAfter(.milliseconds(50)) }
                    return EventSource.ErrorPolicy.standard.decide(failure, attempt: attempt)
                }
            })
            let log = StateLog(source)
            let events = try await withDeadline(.seconds(10)) { try await source.reduce(into: [String]()) { $0.append($1.data) } }
            #expect(events == ["up"])
            await log.finished()
            #expect(log.all == [
                "connecting 1", "retrying after status 503", "connecting 2", "open", "retrying after end", "connecting 3", "closed",
            ])
        }
    }

    @Test("reconnectNow drops an open stream and connects again at once, with Last-Event-ID")
    func reconnectNow() async throws {
        try await withScriptedServer({ request in
            request.index == 0 ? [.streamHead, .send("id: 3\ndata: a\n\n"), .holdOpen] : [.streamHead, .send("data: b\n\n"), .holdOpen]
        }) { server in
            let source = try EventSource(url: server.url, configuration: Self.configuration(.automatic) { $0.retry = .seconds(30) })
            let received = Mutex<[String]>([])
            let reader = Task { for try await event in source { received.withLock { $0.append(event.data) } } }
            try await waitUntil("the first event") { received.withLock { $0 } == ["a"] }
            source.reconnectNow()
            try await waitUntil("the second stream's event", timeout: .seconds(3)) { received.withLock { $0 } == ["a", "b"] }
            #expect(server.requests[1].header("Last-Event-ID") == "3")
            source.close()
            _ = try await reader.value
        }
    }

    @Test("a huge retry saturates: the source waits (at most maximumRetry) without trapping, and close() ends the wait")
    func hugeRetry() async throws {
        try await withScriptedServer({ _ in [.streamHead, .send("retry: 99999999999999999999999999999\ndata: a\n\n"), .close] }) { server in
            let source = try EventSource(url: server.url, configuration: Self.configuration(.automatic))
            let log = StateLog(source)
            let reader = Task { try await source.reduce(0) { count, _ in count + 1 } }
            try await waitUntil("the wait") { source.readyState == .connecting && log.all.contains { $0.hasPrefix("retrying") } }
            source.close()
            #expect(try await withDeadline(.seconds(2)) { try await reader.value } == 1)
            #expect(server.requests.count == 1)
        }
    }

    @Test("after retry: 0 the floor holds: reconnections are at least minimumRetry apart")
    func retryZeroHasAFloor() async throws {
        try await withScriptedServer({ request in
            request.index < 3 ? [.streamHead, .send("retry: 0\n: hi\n\n"), .close] : [.send("HTTP/1.1 204 No Content\r\n\r\n")]
        }) { server in
            let source = try EventSource(url: server.url, configuration: Self.configuration(.automatic) { $0.minimumRetry = .milliseconds(150) })
            _ = try await withDeadline(.seconds(10)) { try await source.reduce(0) { count, _ in count + 1 } }
            let times = server.requests.map(\.receivedAt)
            #expect(times.count == 4)
            for (earlier, later) in zip(times, times.dropFirst()) {
                #expect(earlier.duration(to: later) >= .milliseconds(150))
            }
        }
    }

    @Test("events completed before a line over the limit are delivered, then the limit's error is thrown")
    func eventsBeforeABadLineArrive() async throws {
        try await withScriptedServer({ _ in [.streamHead, .send("data: a\n\ndata: b\n\ndata: " + String(repeating: "x", count: 200) + "\n\n"), .holdOpen] }) { server in
            let source = try EventSource(url: server.url, configuration: Self.configuration(.automatic) { $0.limits.maxLineLength = 64 })
            let received = Mutex<[String]>([])
            await #expect(throws: WireError.self) {
                try await withDeadline(.seconds(5)) { for try await event in source { received.withLock { $0.append(event.data) } } }
            }
            #expect(received.withLock { $0 } == ["a", "b"])
        }
    }

    @Test("a header provider that hangs is bounded by the connect timeout, and close() ends it")
    func hangingHeaderProvider() async throws {
        let calls = Counter()
        let source = try EventSource(url: "http://127.0.0.1:9/events", configuration: Self.configuration(.automatic) {
            $0.connectTimeout = .milliseconds(200)
            $0.headerProvider = {
                calls.increment()
                try await Task.sleep(for: .seconds(3600))  // a token service that never answers
                return [:]
            }
        })
        let log = StateLog(source)
        let reader = Task { try await source.reduce(0) { count, _ in count + 1 } }
        try await waitUntil("a second attempt", timeout: .seconds(5)) { calls.count >= 2 }
        #expect(log.all.contains("retrying after connect timeout"))
        let closedAt = ContinuousClock.now
        source.close()
        // Within 2 s of close(), against a provider that would hang for an hour: a bound a
        // loaded machine cannot break (a 500 ms one took 575 at load 9).
        #expect(try await withDeadline(.seconds(2)) { try await reader.value } == 0)
        #expect(closedAt.duration(to: .now) < .seconds(2))
    }
}
