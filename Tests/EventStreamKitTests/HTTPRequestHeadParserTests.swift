@testable import EventStreamKit
@testable import EventStreamHTTP
import Testing

private func parse(_ text: String, limits: HTTPRequestHeadParser.Limits = .init()) throws -> (HTTPRequestHead, Int)? {
    switch try HTTPRequestHeadParser.parse(Array(text.utf8), limits: limits) {
    case .incomplete: nil
    case .complete(let head, let consumed): (head, consumed)
    }
}

private func status(of text: String, limits: HTTPRequestHeadParser.Limits = .init()) -> Int? {
    do {
        _ = try HTTPRequestHeadParser.parse(Array(text.utf8), limits: limits)
        return nil
    } catch {
        return error.status.code
    }
}

@Suite("HTTP request head parser")
struct HTTPRequestHeadParserTests {
    @Test func aCompleteHeadWithQueryAndHeaders() throws {
        let text = "GET /events?lastEventId=a%2Db&x=1+2 HTTP/1.1\r\nHost: example\r\nLast-Event-ID:  e-7 \r\n\r\nBODY"
        let (head, consumed) = try #require(try parse(text))
        #expect(head.method == "GET")
        #expect(head.path == "/events")
        #expect(head.query == ["lastEventId": "a-b", "x": "1 2"])
        #expect(head.minorVersion == 1)
        #expect(head.headers["last-event-id"] == "e-7")
        #expect(head.headers["HOST"] == "example")
        #expect(consumed == text.utf8.count - 4)
        #expect(head.keepAlive)
    }

    @Test func incompleteUntilTheEmptyLine() throws {
        #expect(try parse("GET / HTTP/1.1\r\nHost: x\r\n") == nil)
        #expect(try parse("GET / HTTP/1.1\r\nHost: x\r\n\r") == nil)
        #expect(try parse("GET / HT") == nil)
    }

    /// RFC 9112 §2.2 allows a server to take a bare LF as a line end; behind a proxy that
    /// passes one on inside a field value, the two would read different requests (an outside
    /// attack had `X: a\nContent-Length: 41` read as two fields), so the server refuses it.
    @Test("a bare LF anywhere in a request head is refused (400)", arguments: [
        "GET / HTTP/1.1\nHost: a\n\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\nContent-Length: 41\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\n",
        "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    ])
    func bareLFIsRefused(text: String) {
        #expect { _ = try parse(text) } throws: { ($0 as? HTTPParseError)?.status.code == 400 }
    }

    @Test func leadingEmptyLinesAreSkipped() throws {
        let (head, _) = try #require(try parse("\r\n\r\nGET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))
        #expect(head.path == "/a")
        #expect(head.minorVersion == 0)
        #expect(head.keepAlive)
        let (old, _) = try #require(try parse("GET / HTTP/1.0\r\n\r\n"))
        #expect(!old.keepAlive)
        let (closing, _) = try #require(try parse("GET / HTTP/1.1\r\nConnection: Keep-Alive, close\r\n\r\n"))
        #expect(!closing.keepAlive)
    }

    @Test func absoluteFormKeepsPathAndQuery() throws {
        let (head, _) = try #require(try parse("GET http://example.com/a/b?c=d HTTP/1.1\r\n\r\n"))
        #expect(head.target == "/a/b?c=d")
    }

    @Test(arguments: [
        ("GET /\r\n\r\n", 400),
        ("GET  / HTTP/1.1\r\n\r\n", 400),
        ("G(T / HTTP/1.1\r\n\r\n", 400),
        ("GET nopath HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1 extra\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\n\r\n", 505),
        ("GET / HTTP/1.x\r\n\r\n", 400),
        ("GET / http/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n: empty\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nA: b\u{0}c\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 400),
        ("\rGET / HTTP/1.1\r\n\r\n", 400),
    ])
    func malformedHeadsAre4xx(text: String, expected: Int) {
        #expect(status(of: text) == expected)
    }

    @Test func aHeadOverTheLimitIs431EvenBeforeItEnds() {
        let limits = HTTPRequestHeadParser.Limits(maxHeadSize: 64, maxHeaderCount: 100)
        #expect(status(of: "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 100), limits: limits) == 431)
        #expect(status(of: "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 100) + "\r\n\r\n", limits: limits) == 431)
        #expect(status(of: "GET / HTTP/1.1\r\nX: a\r\n\r\n", limits: limits) == nil)
    }

    @Test func tooManyHeaderFieldsIs431() {
        let limits = HTTPRequestHeadParser.Limits(maxHeadSize: 8192, maxHeaderCount: 3)
        let three = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"
        let four = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"
        #expect(status(of: three, limits: limits) == nil)
        #expect(status(of: four, limits: limits) == 431)
    }

    @Test func theDefaultLimitsAre8KiBAnd100Fields() {
        let limits = HTTPRequestHeadParser.Limits()
        #expect(limits.maxHeadSize == 8192)
        #expect(limits.maxHeaderCount == 100)
    }

    @Test func pipelinedRequestsAreSplitByConsumedCount() throws {
        let two = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"
        let (first, consumed) = try #require(try parse(two))
        #expect(first.path == "/a")
        let rest = String(two.dropFirst(consumed))
        #expect(try parse(rest)?.0.path == "/b")
    }
}
