#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds the lines of an HTTP/1.x head (a request's or a response's) in the bytes read so
/// far, enforcing the size and field-count limits as soon as the bytes show them.
///
/// Resumable: it remembers how far it has looked, so feeding it a head one byte at a time
/// costs the same as feeding it whole (each byte is examined once), and a head that is still
/// incomplete after ``HTTPRequestHeadParser/Limits/maxHeadSize`` bytes — empty lines before
/// a request line included — is refused then, never buffered further.
struct HTTPHeadScanner {
    let limits: HTTPRequestHeadParser.Limits
    /// `"request"` or `"response"`, for the error message.
    let kind: String
    /// RFC 9112 §2.2: a server ignores empty lines before the request line (they still
    /// count against the size limit). A response head has none.
    let skipsLeadingEmptyLines: Bool
    /// Whether a line must end in CRLF. RFC 9112 §2.2 lets a recipient take a bare LF as a
    /// line end; a server refuses it instead (400), because a proxy in front that passes a
    /// bare LF on inside a field value would read a different request than the server does.
    /// A client (response heads) keeps accepting it, as browsers and libcurl do.
    let requiresCRLF: Bool

    /// The lines found so far, without their line ends, as offsets into the scanned bytes.
    private(set) var lines: [Range<Int>] = []
    /// The next byte to examine.
    private var index = 0
    private var lineStart = 0

    init(limits: HTTPRequestHeadParser.Limits, kind: String, skipsLeadingEmptyLines: Bool, requiresCRLF: Bool) {
        self.limits = limits
        self.kind = kind
        self.skipsLeadingEmptyLines = skipsLeadingEmptyLines
        self.requiresCRLF = requiresCRLF
    }

    /// Looks at the bytes not examined yet. `buffer` holds the head from its first byte on,
    /// the same bytes as at the last call plus whatever arrived since.
    ///
    /// - Returns: The length of the head, empty line included, once it is complete; `nil`
    ///   while more bytes are needed.
    /// - Throws: ``HTTPParseError`` 431 if the head is over the limits.
    mutating func scan(_ buffer: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> Int? {
        while index < buffer.count {
            guard let lineFeed = Self.firstLineFeed(in: buffer, from: index) else {
                index = buffer.count
                break
            }
            let hasCR = lineFeed > lineStart && buffer[lineFeed - 1] == 13
            if requiresCRLF && !hasCR { throw .init(.badRequest, "a line of the \(kind) head ends in LF without CR") }
            let lineEnd = hasCR ? lineFeed - 1 : lineFeed
            index = lineFeed + 1
            if index > limits.maxHeadSize { throw tooLarge }
            if lineEnd == lineStart {
                if lines.isEmpty && skipsLeadingEmptyLines {
                    lineStart = index
                    continue
                }
                return index  // the empty line ends the head
            }
            lines.append(lineStart..<lineEnd)
            if lines.count - 1 > limits.maxHeaderCount {
                throw .init(.requestHeaderFieldsTooLarge, "more than \(limits.maxHeaderCount) header fields")
            }
            lineStart = index
        }
        if buffer.count > limits.maxHeadSize { throw tooLarge }
        return nil
    }

    private var tooLarge: HTTPParseError {
        .init(.requestHeaderFieldsTooLarge, "\(kind) head larger than \(limits.maxHeadSize) bytes")
    }

    private static func firstLineFeed(in buffer: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        guard let base = buffer.baseAddress, start < buffer.count else { return nil }
        guard let found = memchr(base + start, 10, buffer.count - start) else { return nil }
        return UnsafeRawPointer(base).distance(to: UnsafeRawPointer(found))
    }

    enum Outcome {
        /// More bytes are needed.
        case incomplete
        /// The lines before the empty line (without their line ends), and the bytes used.
        case complete(lines: [Range<Int>], consumed: Int)
    }

    /// Scans a whole buffer at once: for a caller that re-parses what it has each time.
    static func scan(_ buffer: UnsafeBufferPointer<UInt8>, limits: HTTPRequestHeadParser.Limits, kind: String, skipsLeadingEmptyLines: Bool, requiresCRLF: Bool) throws(HTTPParseError) -> Outcome {
        var scanner = HTTPHeadScanner(limits: limits, kind: kind, skipsLeadingEmptyLines: skipsLeadingEmptyLines, requiresCRLF: requiresCRLF)
        guard let consumed = try scanner.scan(buffer) else { return .incomplete }
        return .complete(lines: scanner.lines, consumed: consumed)
    }
}
