import EventStreamKit

/// Parses an HTTP/1.x request head (request line and header fields) from the bytes read so
/// far. Pure: no I/O, so it is tested and fuzzed on its own.
///
/// Lines end in CRLF; a bare LF is refused (400: see ``HTTPHeadScanner/requiresCRLF``).
/// Empty lines before the request line are skipped, and count against the size limit. Folded header lines, bare CR, NUL, a
/// malformed request line or header name are errors (400); an HTTP version other than 1.0
/// and 1.1 is 505; a head longer than the limit, or with too many fields, is 431, decided as
/// soon as the bytes show it, so a client cannot make the server buffer more than the limit.
struct HTTPRequestHeadParser {
    /// Bounds on a request head.
    typealias Limits = HTTPHeadScanner.Limits

    enum Outcome {
        /// More bytes are needed.
        case incomplete
        /// A head, and how many bytes of the buffer it used (the body or the next request
        /// follows).
        case complete(HTTPRequestHead, consumed: Int)
    }

    static func parse(_ bytes: [UInt8], limits: Limits = Limits()) throws(HTTPParseError) -> Outcome {
        try bytes.withUnsafeBufferPointer { (buffer) throws(HTTPParseError) in try parse(buffer, limits: limits) }
    }

    static func parse(_ buffer: UnsafeBufferPointer<UInt8>, limits: Limits) throws(HTTPParseError) -> Outcome {
        guard case .complete(let lines, let consumed) = try HTTPHeadScanner.scan(buffer, limits: limits, kind: "request", skipsLeadingEmptyLines: true, requiresCRLF: true) else {
            return .incomplete
        }
        return .complete(try makeHead(buffer, lines: lines), consumed: consumed)
    }

    /// The head whose lines ``HTTPHeadScanner`` found in `buffer`.
    static func makeHead(_ buffer: UnsafeBufferPointer<UInt8>, lines: [Range<Int>]) throws(HTTPParseError) -> HTTPRequestHead {
        guard let requestLine = lines.first else { throw .init(.badRequest, "no request line") }
        var head = try parseRequestLine(buffer, requestLine)
        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(lines.count - 1)
        for line in lines.dropFirst() { fields.append(try HTTPHeadScanner.parseField(buffer, line)) }
        head.headers = HeaderFields(fields)
        return head
    }

    private static func parseRequestLine(_ buffer: UnsafeBufferPointer<UInt8>, _ line: Range<Int>) throws(HTTPParseError) -> HTTPRequestHead {
        let parts = buffer[line].split(separator: 32, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw .init(.badRequest, "malformed request line")
        }
        guard parts[0].allSatisfy(HTTPHeadScanner.isTokenByte) else { throw .init(.badRequest, "malformed method") }
        guard parts[1].allSatisfy({ $0 > 32 && $0 != 127 }) else { throw .init(.badRequest, "malformed request target") }
        let version = Array(parts[2])
        guard version.count == 8, version.starts(with: Array("HTTP/".utf8)), version[6] == 46,
              (48...57).contains(version[5]), (48...57).contains(version[7])
        else { throw .init(.badRequest, "malformed HTTP version") }
        guard version[5] == 49, version[7] == 48 || version[7] == 49 else {
            throw .init(.httpVersionNotSupported, "HTTP version \(String(decoding: version, as: UTF8.self)) is not supported")
        }
        var target = String(decoding: parts[1], as: UTF8.self)
        var authority: String?
        if target.hasPrefix("http://") || target.hasPrefix("https://") {
            // Absolute form (RFC 9112 §3.2.2): keep the path and query; the authority stands
            // in for Host.
            let afterScheme = target.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
            authority = afterScheme.count > 2 ? String(afterScheme[2]) : ""
            target = afterScheme.count == 4 ? "/" + afterScheme[3] : "/"
        }
        guard target.hasPrefix("/") || target == "*" else { throw .init(.badRequest, "malformed request target") }
        return HTTPRequestHead(
            method: String(decoding: parts[0], as: UTF8.self),
            target: target,
            minorVersion: Int(version[7] - 48),
            headers: HeaderFields(),
            targetAuthority: authority
        )
    }
}

extension HTTPParseError {
    init(_ status: HTTPStatus, _ message: String) {
        self.init(code: status.code, message)
    }

    /// The status to answer.
    var status: HTTPStatus { HTTPStatus.standard(code: code) }
}
