@testable import EventStreamKit
import Testing

/// The built-in client's response path without a socket: head, interim responses, framing.
@Suite("HTTPClientResponseDecoder")
struct HTTPClientResponseDecoderTests {
    /// Feeds `input` split into `chunks` pieces of varying size, as a socket might deliver it;
    /// returns the final status, the body, and whether the body ended (nil: an error).
    static func decode(_ input: String, step: Int, closeAtEnd: Bool = true) -> (status: Int?, body: String, ended: Bool)? {
        var decoder = HTTPClientResponseDecoder()
        var body: [UInt8] = []
        var status: Int?
        let bytes = Array(input.utf8)
        var index = 0
        var size = step
        do {
            while index < bytes.count {
                let end = min(bytes.count, index + size)
                let piece = Array(bytes[index..<end])
                try piece.withUnsafeBytes { raw in
                    if status == nil {
                        status = try decoder.feedHead(raw, body: &body)?.status
                    } else {
                        try decoder.decodeBody(raw, into: &body)
                    }
                }
                index = end
                size = size % 5 + 1
            }
            if closeAtEnd { try decoder.endOfInput() }
        } catch {
            return nil
        }
        return (status, String(decoding: body, as: UTF8.self), decoder.isAtEnd)
    }

    @Test("interim responses are skipped, the final head and its body arrive the same for any split", arguments: [1, 2, 3, 1000])
    func interimThenChunked(step: Int) throws {
        let response = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;ext=1\r\ndata:\r\n4\r\n a\n\n\r\n0\r\nTrailer: x\r\n\r\nHTTP/1.1 200 smuggled"
        let result = try #require(Self.decode(response, step: step))
        #expect(result.status == 200)
        #expect(result.body == "data: a\n\n")
        #expect(result.ended)
    }

    @Test("bytes after a Content-Length body are not body; a cut-off body or head is an error")
    func lengthAndCutOffs() throws {
        let exact = try #require(Self.decode("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ndata: a\n\ndata: smuggled\n\n", step: 3))
        #expect(exact.body == "data: a\n\n" && exact.ended)
        #expect(Self.decode("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\ndata: a\n\n", step: 2) == nil)
        #expect(Self.decode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nda", step: 2) == nil)
        #expect(Self.decode("HTTP/1.1 200 OK\r\nContent-Ty", step: 2) == nil)
        #expect(Self.decode("", step: 1) == nil)
        let untilClose = try #require(Self.decode("HTTP/1.0 200 OK\r\n\r\ndata: a\n\n", step: 4))
        #expect(untilClose.body == "data: a\n\n" && untilClose.ended)
    }

    @Test("101 without an upgrade asked for, and more than 100 interim responses, are errors")
    func refusedInterims() {
        #expect(Self.decode("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", step: 7) == nil)
        let flood = String(repeating: "HTTP/1.1 100 Continue\r\n\r\n", count: 101) + "HTTP/1.1 204 No Content\r\n\r\n"
        #expect(Self.decode(flood, step: 1000) == nil)
        let many = String(repeating: "HTTP/1.1 100 Continue\r\n\r\n", count: 100) + "HTTP/1.1 204 No Content\r\n\r\n"
        #expect(Self.decode(many, step: 1000)?.status == 204)
    }

    @Test("ambiguous framing is an error: Transfer-Encoding with Content-Length, a coding other than chunked, chunked twice")
    func ambiguousFraming() {
        let body = "5\r\ndata:\r\n6\r\n CHNK\n\r\n1\r\n\n\r\n0\r\n\r\n"
        for fields in [
            "Content-Length: 5\r\nTransfer-Encoding: chunked", "Transfer-Encoding: chunked\r\nContent-Length: 0",
            "Transfer-Encoding: gzip, chunked", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", "Transfer-Encoding: chunked, ",
        ] {
            let response = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\(fields)\r\n\r\n" + body
            #expect(Self.decode(response, step: 1000) == nil, "accepted \(fields.debugDescription)")
        }
        #expect(Self.decode("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n" + body, step: 3)?.body == "data: CHNK\n\n")
    }
}
