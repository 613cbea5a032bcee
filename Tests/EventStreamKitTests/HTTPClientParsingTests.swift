import Testing
@testable import EventStreamKit

@Suite("HTTP client: response head and chunked body")
struct HTTPClientParsingTests {
    @Test("a response head parses with its status, version and fields; the body's bytes are left")
    func responseHead() throws {
        let bytes = Array("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-A:  b \r\n\r\ndata: x".utf8)
        guard case .complete(let head, let consumed) = try HTTPResponseHeadParser.parse(bytes) else {
            Issue.record("incomplete")
            return
        }
        #expect(head.status == 200)
        #expect(head.minorVersion == 1)
        #expect(head.headers["content-type"] == "text/event-stream")
        #expect(head.headers["X-A"] == "b")
        #expect(Array(bytes[consumed...]) == Array("data: x".utf8))
        #expect(try head.framing() == .untilClose)
    }

    @Test("a head is incomplete until its empty line, in any split", arguments: [1, 5, 17, 30])
    func incompleteHead(cut: Int) throws {
        let bytes = Array("HTTP/1.0 204 No Content\nServer: t\n\n".utf8)
        if case .complete = try HTTPResponseHeadParser.parse(Array(bytes.prefix(cut))) { Issue.record("complete too early") }
        guard case .complete(let head, _) = try HTTPResponseHeadParser.parse(bytes) else { Issue.record("incomplete"); return }
        #expect(head.status == 204)
        #expect(head.minorVersion == 0)
        #expect(try head.framing() == HTTPResponseHead.Framing.none)
    }

    @Test("malformed status lines and fields are invalid responses", arguments: [
        "HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "ICY 200 OK\r\n\r\n", "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", "\r\n", "HTTP/1.1 073 Odd\r\n\r\n",
    ])
    func malformedHead(text: String) {
        #expect { try HTTPResponseHeadParser.parse(Array(text.utf8)) } throws: { error in
            (error as? EventSourceError)?.code == .invalidResponse
        }
    }

    @Test("a head over the size limit fails before it is complete")
    func headLimit() {
        let bytes = Array(("HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 20_000)).utf8)
        #expect(throws: EventSourceError.self) { try HTTPResponseHeadParser.parse(bytes) }
    }

    @Test("framing: Transfer-Encoding with Content-Length, or a coding other than chunked, is an error; lengths must agree")
    func framing() throws {
        func head(_ fields: [(String, String)], status: Int = 200) -> HTTPResponseHead {
            HTTPResponseHead(status: status, minorVersion: 1, headers: HeaderFields(fields.map { (name: $0.0, value: $0.1) }))
        }
        // RFC 9112 §6.3: both "ought to be handled as an error" (response splitting); a coding
        // this client cannot decode would only produce garbage.
        #expect(throws: EventSourceError.self) { try head([("Transfer-Encoding", "chunked"), ("Content-Length", "5")]).framing() }
        #expect(throws: EventSourceError.self) { try head([("Transfer-Encoding", "gzip, chunked")]).framing() }
        #expect(throws: EventSourceError.self) { try head([("Transfer-Encoding", "gzip")]).framing() }
        #expect(try head([("Transfer-Encoding", "chunked")]).framing() == .chunked)
        #expect(try head([("Content-Length", "12")]).framing() == .length(12))
        #expect(try head([("Content-Length", "12, 12")]).framing() == .length(12))
        #expect(try head([("Content-Length", "5")], status: 304).framing() == HTTPResponseHead.Framing.none)
        #expect(throws: EventSourceError.self) { try head([("Content-Length", "12, 13")]).framing() }
        #expect(throws: EventSourceError.self) { try head([("Content-Length", "-1")]).framing() }
    }

    static let chunkedBody = Array("5\r\nhello\r\n1;name=value\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nafter".utf8)

    @Test("a chunked body decodes the same in every random split, and stops after the last chunk")
    func chunkedSplits() throws {
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<300 {
            var decoder = ChunkedBodyDecoder()
            var output: [UInt8] = []
            for chunk in Self.chunkedBody.randomChunks(maxChunk: 7, using: &generator) {
                try chunk.withUnsafeBytes { try decoder.decode($0, into: &output) }
            }
            #expect(String(decoding: output, as: UTF8.self) == "hello 0123456789")
            #expect(decoder.isComplete)
        }
    }

    @Test("bare LF framing is accepted")
    func chunkedBareLF() throws {
        var decoder = ChunkedBodyDecoder()
        var output: [UInt8] = []
        try Array("3\nabc\n0\n\n".utf8).withUnsafeBytes { try decoder.decode($0, into: &output) }
        #expect(output == Array("abc".utf8))
        #expect(decoder.isComplete)
    }

    @Test("malformed chunked framing is an invalid response", arguments: [
        "x\r\n", "5\r\nhelloX", "5\rX", "FFFFFFFFFFFFFFFF\r\n", "\r\n", "3\r\nabc\rX",
    ])
    func chunkedMalformed(text: String) {
        var decoder = ChunkedBodyDecoder()
        var output: [UInt8] = []
        #expect(throws: EventSourceError.self) {
            try Array(text.utf8).withUnsafeBytes { try decoder.decode($0, into: &output) }
        }
    }

    @Test("an endless chunk extension or trailer is refused, not buffered")
    func chunkedBounded() {
        var decoder = ChunkedBodyDecoder()
        var output: [UInt8] = []
        let long = Array(("1;" + String(repeating: "e", count: 10_000)).utf8)
        #expect(throws: EventSourceError.self) { try long.withUnsafeBytes { try decoder.decode($0, into: &output) } }
        var trailer = ChunkedBodyDecoder()
        let endless = Array(("0\r\nX: " + String(repeating: "t", count: 10_000)).utf8)
        #expect(throws: EventSourceError.self) { try endless.withUnsafeBytes { try trailer.decode($0, into: &output) } }
    }
}
