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
/// incomplete after ``Limits/maxHeadSize`` bytes — empty lines before
/// a request line included — is refused then, never buffered further.
package struct HTTPHeadScanner {
    /// Bounds on a head.
    package struct Limits: Hashable, Sendable {
        package var maxHeadSize = 8 * 1024
        package var maxHeaderCount = 100

        package init(maxHeadSize: Int = 8 * 1024, maxHeaderCount: Int = 100) {
            self.maxHeadSize = maxHeadSize
            self.maxHeaderCount = maxHeaderCount
        }
    }

    package let limits: Limits
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
    package private(set) var lines: [Range<Int>] = []
    /// The next byte to examine.
    private var index = 0
    private var lineStart = 0

    package init(limits: Limits, kind: String, skipsLeadingEmptyLines: Bool, requiresCRLF: Bool) {
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
    package mutating func scan(_ buffer: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> Int? {
        while index < buffer.count {
            guard let lineFeed = Self.firstLineFeed(in: buffer, from: index) else {
                index = buffer.count
                break
            }
            index = lineFeed + 1
            // The size first: a reader fed in pieces refuses a head for its size before this
            // line's end arrives, so one fed the same bytes whole must refuse it the same way.
            if index > limits.maxHeadSize { throw tooLarge }
            let hasCR = lineFeed > lineStart && buffer[lineFeed - 1] == 13
            if requiresCRLF && !hasCR { throw .init(code: 400, "a line of the \(kind) head ends in LF without CR") }
            let lineEnd = hasCR ? lineFeed - 1 : lineFeed
            if lineEnd == lineStart {
                if lines.isEmpty && skipsLeadingEmptyLines {
                    lineStart = index
                    continue
                }
                return index  // the empty line ends the head
            }
            lines.append(lineStart..<lineEnd)
            if lines.count - 1 > limits.maxHeaderCount {
                throw .init(code: 431, "more than \(limits.maxHeaderCount) header fields")
            }
            lineStart = index
        }
        if buffer.count > limits.maxHeadSize { throw tooLarge }
        return nil
    }

    private var tooLarge: HTTPParseError {
        .init(code: 431, "\(kind) head larger than \(limits.maxHeadSize) bytes")
    }

    private static func firstLineFeed(in buffer: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        guard let base = buffer.baseAddress, start < buffer.count else { return nil }
        guard let found = memchr(base + start, 10, buffer.count - start) else { return nil }
        return UnsafeRawPointer(base).distance(to: UnsafeRawPointer(found))
    }

    package enum Outcome {
        /// More bytes are needed.
        case incomplete
        /// The lines before the empty line (without their line ends), and the bytes used.
        case complete(lines: [Range<Int>], consumed: Int)
    }

    /// Scans a whole buffer at once: for a caller that re-parses what it has each time.
    package static func scan(_ buffer: UnsafeBufferPointer<UInt8>, limits: Limits, kind: String, skipsLeadingEmptyLines: Bool, requiresCRLF: Bool) throws(HTTPParseError) -> Outcome {
        var scanner = HTTPHeadScanner(limits: limits, kind: kind, skipsLeadingEmptyLines: skipsLeadingEmptyLines, requiresCRLF: requiresCRLF)
        guard let consumed = try scanner.scan(buffer) else { return .incomplete }
        return .complete(lines: scanner.lines, consumed: consumed)
    }

    package static func parseField(_ buffer: UnsafeBufferPointer<UInt8>, _ line: Range<Int>) throws(HTTPParseError) -> (name: String, value: String) {
        let bytes = buffer[line]
        guard let colon = bytes.firstIndex(of: 58) else { throw .init(code: 400, "header line without a colon") }
        let name = bytes[bytes.startIndex..<colon]
        guard !name.isEmpty else {
            throw .init(code: 400, bytes.first == 32 || bytes.first == 9 ? "folded header lines are not allowed" : "empty header name")
        }
        guard name.allSatisfy(HTTPHeadScanner.isTokenByte) else { throw .init(code: 400, "malformed header name") }
        var value = bytes[(colon + 1)...]
        guard !value.contains(where: { $0 == 0 || $0 == 13 }) else { throw .init(code: 400, "NUL or bare CR in a header value") }
        while let first = value.first, first == 32 || first == 9 { value = value.dropFirst() }
        while let last = value.last, last == 32 || last == 9 { value = value.dropLast() }
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    /// RFC 9110 `tchar`.
    package static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 48...57, 65...90, 97...122: true
        case 33, 35, 36, 37, 38, 39, 42, 43, 45, 46, 94, 95, 96, 124, 126: true
        default: false
        }
    }
}

/// Why a head was refused, with the status code a server answers (400, 431, 505).
package struct HTTPParseError: Error, CustomStringConvertible {
    package let code: Int
    package let message: String

    package init(code: Int, _ message: String) {
        self.code = code
        self.message = message
    }

    package var description: String { "\(code): \(message)" }
}
