import Foundation
import Synchronization
import Testing
@testable import EventStreamKit

/// The client against a raw loopback server that sends crafted bytes and records requests.
@Suite("EventSource against a scripted server")
struct EventSourceTests {
    static let fast: EventSource.Configuration = {
        var configuration = EventSource.Configuration()
        configuration.retry = .milliseconds(10)
        configuration.minimumRetry = .milliseconds(10)
        return configuration
    }()

    /// Reads every event until the stream ends or fails, with a deadline.
    static func collect(_ source: EventSource, timeout: Duration = .seconds(10)) async throws -> [MessageEvent] {
        try await withDeadline(timeout, "the stream to end") {
            var events: [MessageEvent] = []
            for try await event in source { events.append(event) }
            return events
        }
    }

    /// The crafted stream: a BOM, CRLF, CR and LF line ends, comments, multi-byte UTF-8.
    static let crafted = Array("\u{FEFF}: hello\r\nid: 1\r\ndata: caf\u{E9} \u{1F600}\r\n\r\nevent: tick\rdata: a\rdata: b\r\r:c\ndata:no-space\n\n".utf8)
    static let expected = [
        MessageEvent(type: "message", data: "caf\u{E9} \u{1F600}", lastEventID: "1"),
        MessageEvent(type: "tick", data: "a\nb", lastEventID: "1"),
        MessageEvent(type: "message", data: "no-space", lastEventID: "1"),
    ]

    @Test("a stream written one byte at a time (splitting CRLF and UTF-8) gives the spec's events")
    func byteByByte() async throws {
        let events = try await withScriptedServer({ request in
            request.index > 0 ? [.send("HTTP/1.1 204 No Content\r\n\r\n")] : [.streamHead] + Self.crafted.map { .send([$0]) } + [.close]
        }) { server in
            try await Self.collect(try EventSource(url: server.url, configuration: Self.fast))
        }
        #expect(events == Self.expected)
    }

    @Test("a chunked body whose chunks split CR from LF and UTF-8 sequences decodes to the same events", arguments: [1, 2, 3, 7])
    func chunkedBody(chunkSize: Int) async throws {
        // Bytes, not a String: the chunks cut UTF-8 sequences apart.
        var bytes: [UInt8] = Array("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        var index = 0
        while index < Self.crafted.count {
            let piece = Self.crafted[index..<min(index + chunkSize, Self.crafted.count)]
            bytes += Array((String(piece.count, radix: 16) + "\r\n").utf8) + piece + Array("\r\n".utf8)
            index += chunkSize
        }
        bytes += Array("0\r\n\r\n".utf8)
        let stream = bytes
        let events = try await withScriptedServer({ request in
            request.index > 0 ? [.send("HTTP/1.1 204 No Content\r\n\r\n")] : stream.map { .send([$0]) } + [.holdOpen]
        }) { server in
            try await Self.collect(try EventSource(url: server.url, configuration: Self.fast))
        }
        #expect(events == Self.expected)
    }

    @Test("retry sets the reconnection delay, and each reconnection waits it")
    func retryDelay() async throws {
        let requests = try await withScriptedServer({ request in
            switch request.index {
            case 0: [.streamHead, .send("retry: 1500\ndata: a\n\n"), .close]
            case 1: [.streamHead, .send("retry: 20\ndata: b\n\n"), .close]
            default: [.send("HTTP/1.1 204 No Content\r\n\r\n")]
            }
        }) { server in
            let events = try await Self.collect(try EventSource(url: server.url, configuration: Self.fast))
            #expect(events.map(\.data) == ["a", "b"])
            return server.requests
        }
        try #require(requests.count == 3)
        let first = requests[0].receivedAt.duration(to: requests[1].receivedAt)
        let second = requests[1].receivedAt.duration(to: requests[2].receivedAt)
        #expect(first >= .milliseconds(1500), "waited \(first) after retry: 1500")
        // Far from 1,500 ms, so that a loaded machine's delays cannot blur the difference.
        #expect(second >= .milliseconds(20) && second < .milliseconds(1000), "waited \(second) after retry: 20")
    }

    @Test("reconnection sends Last-Event-ID; an id with NUL is ignored; the first request sends the seed")
    func lastEventID() async throws {
        let (events, requests) = try await withScriptedServer({ request in
            switch request.index {
            case 0: [.streamHead, .send("id: 5\ndata: a\n\nid: 6\u{0}x\ndata: b\n\n"), .close]
            case 1: [.streamHead, .send("id\ndata: c\n\n"), .close]
            default: [.send("HTTP/1.1 204 No Content\r\n\r\n")]
            }
        }) { server in
            let source = try EventSource(url: server.url, lastEventID: "seed", configuration: Self.fast)
            let events = try await Self.collect(source)
            #expect(source.lastEventID == "")
            return (events, server.requests)
        }
        #expect(events.map(\.lastEventID) == ["5", "5", ""])
        #expect(requests.map { $0.header("Last-Event-ID") } == ["seed", "5", nil])
        #expect(requests[0].header("Accept") == "text/event-stream")
        #expect(requests[0].header("Cache-Control") == "no-cache")
    }

    @Test("an incomplete last event is discarded at end of stream, and not resumed on the next connection")
    func incompleteEventDiscarded() async throws {
        let events = try await withScriptedServer({ request in
            switch request.index {
            case 0: [.streamHead, .send("data: a\n\ndata: partial\nid: 9"), .close]
            case 1: [.streamHead, .send("data: b\n\n"), .close]
            default: [.send("HTTP/1.1 204 No Content\r\n\r\n")]
            }
        }) { server in
            try await Self.collect(try EventSource(url: server.url, configuration: Self.fast))
        }
        #expect(events == [MessageEvent(data: "a"), MessageEvent(data: "b")])
    }

    @Test("204 ends the sequence without an error and without reconnecting")
    func noContentStops() async throws {
        let (state, count) = try await withScriptedServer({ _ in [.send("HTTP/1.1 204 No Content\r\n\r\n"), .close] }) { server in
            let source = try EventSource(url: server.url, configuration: Self.fast)
            let events = try await Self.collect(source)
            #expect(events.isEmpty)
            return (source.readyState, server.requests.count)
        }
        #expect(state == .closed)
        #expect(count == 1)
    }

    @Test("500 and a wrong content type fail for good, once")
    func fatalResponses() async throws {
        for (head, code) in [
            ("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", EventSourceError.Code.badStatus),
            ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>", EventSourceError.Code.wrongContentType),
        ] {
            let count = try await withScriptedServer({ _ in [.send(head), .close] }) { server in
                let source = try EventSource(url: server.url, configuration: Self.fast)
                await #expect { _ = try await Self.collect(source) } throws: { ($0 as? EventSourceError)?.code == code }
                #expect(source.readyState == .closed)
                return server.requests.count
            }
            #expect(count == 1)
        }
    }

    @Test("a redirect is followed to the new path, and reconnection starts from the original URL")
    func redirect() async throws {
        let requests = try await withScriptedServer({ request in
            if request.requestLine.hasPrefix("GET /events ") {
                return [.send("HTTP/1.1 307 Temporary Redirect\r\nLocation: /moved\r\nContent-Length: 0\r\n\r\n"), .close]
            }
            return request.index < 3 ? [.streamHead, .send("data: x\n\n"), .close] : [.send("HTTP/1.1 204 No Content\r\n\r\n")]
        }) { server in
            let events = try await Self.collect(try EventSource(url: server.url, configuration: Self.fast))
            #expect(events.count == 1)
            return server.requests
        }
        #expect(requests.map { $0.requestLine } == ["GET /events HTTP/1.1", "GET /moved HTTP/1.1", "GET /events HTTP/1.1", "GET /moved HTTP/1.1"])
    }

    @Test("a refused connection is retried, and the attempt limit ends it with the socket error")
    func refusedIsRetried() async throws {
        let listener = try Socket.listen(host: "127.0.0.1", port: 0)
        let port = listener.localPort
        listener.close()  // nothing listens there now
        var configuration = Self.fast
        configuration.maxReconnectAttempts = 3
        let source = try EventSource(url: "http://127.0.0.1:\(port)/", configuration: configuration)
        await #expect { _ = try await Self.collect(source) } throws: { error in
            guard let error = error as? EventSourceError, error.code == .reconnectLimitReached else { return false }
            return (error.underlying as? SocketError)?.code == ECONNREFUSED
        }
    }

    @Test("a server that answers garbage is a network error: retried, then reported under the attempt limit")
    func garbageResponse() async throws {
        var configuration = Self.fast
        configuration.maxReconnectAttempts = 2
        let settings = configuration
        let count = try await withScriptedServer({ _ in [.send([0x16, 0x03, 0x01, 0x00, 0xA5, 0x01, 0x00, 0x0D, 0x0A, 0x0D, 0x0A]), .close] }) { server in
            let source = try EventSource(url: server.url, configuration: settings)
            await #expect { _ = try await Self.collect(source) } throws: { error in
                guard let error = error as? EventSourceError, error.code == .reconnectLimitReached else { return false }
                return (error.underlying as? EventSourceError)?.code == .invalidResponse
            }
            return server.requests.count
        }
        #expect(count == 3)  // the first attempt and two reconnections
    }

    @Test("cancelling the consumer closes the connection at once and throws CancellationError")
    func cancellationClosesSocket() async throws {
        try await withScriptedServer({ _ in [.streamHead, .send("data: first\n\n"), .holdOpen] }) { server in
            let source = try EventSource(url: server.url, configuration: Self.fast)
            let received = Counter()
            let consumer = Task {
                for try await _ in source { received.increment() }
            }
            try await waitUntil("the first event") { received.count == 1 }
            #expect(source.readyState == .open)
            let cancelledAt = ContinuousClock.now
            consumer.cancel()
            await #expect(throws: CancellationError.self) { try await consumer.value }
            try await waitUntil("the server to see the close", timeout: .seconds(2)) { !server.closures.isEmpty }
            #expect(cancelledAt.duration(to: server.closures[0]) < .milliseconds(500))
            #expect(source.readyState == .closed)
        }
    }

    @Test("close() from another task ends the sequence and the connection; so does leaving the loop")
    func closeAndBreak() async throws {
        try await withScriptedServer({ _ in [.streamHead, .send("data: one\n\ndata: two\n\n"), .holdOpen] }) { server in
            let source = try EventSource(url: server.url, configuration: Self.fast)
            let events = try await withDeadline(.seconds(5)) {
                var events: [String] = []
                for try await event in source {
                    events.append(event.data)
                    if events.count == 2 { source.close() }
                }
                return events
            }
            #expect(events == ["one", "two"])
            try await waitUntil("the close", timeout: .seconds(2)) { server.closures.count == 1 }

            let second = try EventSource(url: server.url, configuration: Self.fast)
            for try await _ in second { break }
            try await waitUntil("the second close", timeout: .seconds(2)) { server.closures.count == 2 }
            #expect(second.readyState == .closed)
        }
    }

    @Test("a source is iterated once; a second iteration throws")
    func singleIteration() async throws {
        let source = try EventSource(url: "http://127.0.0.1:9/")
        source.close()
        var first = source.makeAsyncIterator()
        #expect(try await first.next() == nil)
        var second = source.makeAsyncIterator()
        await #expect { _ = try await second.next() } throws: { ($0 as? EventSourceError)?.code == .alreadyIterated }
    }

    @Test("an endless line fails with the parser's limit instead of growing memory")
    func endlessLine() async throws {
        var limited = Self.fast
        limited.limits = .init(maxLineLength: 64 * 1024)
        let configuration = limited
        let line = Array(repeating: UInt8(ascii: "x"), count: 16 * 1024)
        try await withScriptedServer({ _ in [.streamHead, .send("data: ")] + Array(repeating: .send(line), count: 8) + [.holdOpen] }) { server in
            let source = try EventSource(url: server.url, configuration: configuration)
            await #expect { _ = try await Self.collect(source) } throws: { ($0 as? WireError)?.code == .lineTooLong }
        }
    }

    @Test("typed values: JSON of one event type, others skipped; a bad payload throws unmarshalFailed")
    func typedValues() async throws {
        struct Note: Codable, Equatable, Sendable { var title: String }
        let stream = "event: note\ndata: {\"title\":\"a\"}\n\ndata: skipped\n\nevent: note\ndata: {\"title\":\"b\"}\n\nevent: note\ndata: nope\n\n"
        try await withScriptedServer({ _ in [.streamHead, .send(stream), .holdOpen] }) { server in
            let source = try EventSource(url: server.url, configuration: Self.fast)
            let notes = Mutex<[Note]>([])
            await #expect {
                try await withDeadline(.seconds(5)) {
                    for try await note in source.values(of: "note", as: .json(Note.self)) { notes.withLock { $0.append(note) } }
                }
            } throws: { ($0 as? WireError)?.code == .unmarshalFailed }
            #expect(notes.withLock { $0 } == [Note(title: "a"), Note(title: "b")])
        }
        #expect(try MessageEvent(data: "42").decode(EventUnmarshal<Int>.text) == 42)
        #expect(throws: WireError.self) { try MessageEvent(data: "4x").decode(EventUnmarshal<Int>.text) }
    }
}
