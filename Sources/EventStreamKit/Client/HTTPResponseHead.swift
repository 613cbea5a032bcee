/// The status line and header fields of one HTTP/1.x response, as the client reads them.
struct HTTPResponseHead: Sendable {
    /// The status code, e.g. 200.
    var status: Int
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    var minorVersion: Int
    /// The header fields.
    var headers: HeaderFields

    /// How the body that follows is delimited (RFC 9112 §6.3), for a response to `GET`.
    enum Framing: Equatable {
        case none
        case chunked
        case length(Int)
        case untilClose
    }

    /// - Throws: ``EventSourceError`` (invalid response) for a malformed or contradictory
    ///   `Content-Length`.
    func framing() throws(EventSourceError) -> Framing {
        if (100..<200).contains(status) || status == 204 || status == 304 { return .none }
        let codings = headers.values("Transfer-Encoding").flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }.map { $0.trimmingSpaces.lowercasedASCII }
        let lengthFields = headers.values("Content-Length")
        if !codings.isEmpty {
            // Both at once "ought to be handled as an error" (RFC 9112 §6.3): a classic
            // smuggling ingredient. And the only coding this client decodes is chunked, once.
            guard lengthFields.isEmpty else { throw .invalidResponse("both Transfer-Encoding and Content-Length") }
            guard codings == ["chunked"] else {
                throw .invalidResponse("Transfer-Encoding \(codings.joined(separator: ", ").debugDescription) is not supported (only chunked)")
            }
            return .chunked
        }
        let lengths = Set(lengthFields.flatMap { $0.split(separator: ",") }.map(\.trimmingSpaces))
        guard let text = lengths.first else { return .untilClose }
        guard lengths.count == 1, !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let length = Int(text) else {
            throw .invalidResponse("malformed Content-Length")
        }
        return .length(length)
    }
}

/// Parses an HTTP/1.x response head from the bytes read so far. Pure, like its request
/// twin `HTTPRequestHeadParser` (in EventStreamHTTP), whose line and field rules it shares.
enum HTTPResponseHeadParser {
    enum Outcome {
        case incomplete
        case complete(HTTPResponseHead, consumed: Int)
    }

    static func parse(_ bytes: [UInt8], limits: HTTPHeadScanner.Limits = .init(maxHeadSize: 16 * 1024, maxHeaderCount: 100)) throws(EventSourceError) -> Outcome {
        try bytes.withUnsafeBufferPointer { (buffer) throws(EventSourceError) in try parse(buffer, limits: limits) }
    }

    static func parse(_ buffer: UnsafeBufferPointer<UInt8>, limits: HTTPHeadScanner.Limits) throws(EventSourceError) -> Outcome {
        let scanned: HTTPHeadScanner.Outcome
        do {
            scanned = try HTTPHeadScanner.scan(buffer, limits: limits, kind: "response", skipsLeadingEmptyLines: false, requiresCRLF: false)
        } catch {
            throw .invalidResponse(error.message)
        }
        guard case .complete(let lines, let consumed) = scanned else { return .incomplete }
        guard let statusLine = lines.first else { throw .invalidResponse("empty line instead of a status line") }
        let (status, minorVersion) = try parseStatusLine(buffer[statusLine])
        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(lines.count - 1)
        for line in lines.dropFirst() {
            do {
                fields.append(try HTTPHeadScanner.parseField(buffer, line))
            } catch {
                throw .invalidResponse(error.message)
            }
        }
        return .complete(HTTPResponseHead(status: status, minorVersion: minorVersion, headers: HeaderFields(fields)), consumed: consumed)
    }

    /// `HTTP/1.1 200 OK`: the reason phrase may be empty or missing.
    private static func parseStatusLine(_ line: Slice<UnsafeBufferPointer<UInt8>>) throws(EventSourceError) -> (status: Int, minorVersion: Int) {
        let bytes = Array(line)
        guard bytes.count >= 12, bytes.starts(with: Array("HTTP/1.".utf8)), bytes[7] == 48 || bytes[7] == 49, bytes[8] == 32,
              bytes[9...11].allSatisfy({ $0 >= 48 && $0 <= 57 }), bytes.count == 12 || bytes[12] == 32
        else {
            let shown = String(decoding: bytes.prefix(40), as: UTF8.self)
            throw .invalidResponse("malformed status line \(shown.debugDescription)")
        }
        let status = bytes[9...11].reduce(0) { $0 * 10 + Int($1 - 48) }
        // Three digits, but a first digit of 0 is no status class (RFC 9110 §15).
        guard status >= 100 else { throw .invalidResponse("status \(status) is not a valid status code") }
        return (status, Int(bytes[7] - 48))
    }
}
