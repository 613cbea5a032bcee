import EventStreamKit

/// Splits one connection's bytes into requests: heads found incrementally (each byte is
/// examined once, however the head is split into reads), framing checked as RFC 9112 §6.3
/// and RFC 9110 require, bodies cut to their `Content-Length`. Pure: no I/O, so it is
/// tested and fuzzed on its own.
///
/// What it holds is bounded: while a head is incomplete, at most
/// ``HTTPRequestHeadParser/Limits/maxHeadSize`` bytes plus one read; while a body arrives, at
/// most ``Limits/maxBodySize`` plus one read (and, for a moment, the body's copy handed to
/// the handler). Between requests it holds no storage at all.
struct HTTPRequestDecoder {
    /// Bounds on what one request may be.
    struct Limits: Hashable, Sendable {
        var head = HTTPRequestHeadParser.Limits()
        var maxBodySize = 1 << 20
    }

    /// How the body of a request is delimited, and what the client expects before sending it.
    struct Framing: Equatable, Sendable {
        /// The body's length in bytes (`Content-Length`; 0 without one).
        var bodyLength: Int
        /// `Expect: 100-continue` on an HTTP/1.1 request: answer `100 Continue` before
        /// reading a body that has not arrived yet.
        var expectsContinue: Bool
    }

    let limits: Limits
    private var buffer: [UInt8] = []
    /// Bytes before `start` belong to requests already taken.
    private var start = 0
    private var scanner: HTTPHeadScanner

    init(limits: Limits = Limits()) {
        self.limits = limits
        scanner = Self.makeScanner(limits)
    }

    private static func makeScanner(_ limits: Limits) -> HTTPHeadScanner {
        HTTPHeadScanner(limits: limits.head, kind: "request", skipsLeadingEmptyLines: true, requiresCRLF: true)
    }

    /// The most bytes one read adds (the server's read size).
    static let readSize = 16 * 1024

    /// Bytes received and not yet taken.
    var buffered: Int { buffer.count - start }

    /// The storage held, in bytes (0 between requests once everything was taken).
    var capacity: Int { buffer.capacity }

    /// Adds bytes as they arrived.
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
    }

    /// The next request's head and framing, once all of it has arrived; `nil` until then.
    ///
    /// - Throws: ``HTTPParseError`` with the status to answer: 400 for a malformed head,
    ///   `Host` or `Content-Length`; 413 for a body over the limit; 417 for an expectation
    ///   other than `100-continue`; 431 for a head over the limits; 501 for
    ///   `Transfer-Encoding`; 505 for an HTTP version other than 1.x. After an error the
    ///   connection's framing is lost: answer and close.
    mutating func nextHead() throws(HTTPParseError) -> (HTTPRequestHead, Framing)? {
        guard buffered > 0 else { return nil }
        let start = start
        let scanned = try buffer.withUnsafeBufferPointer { (bytes) throws(HTTPParseError) -> (HTTPRequestHead, Int)? in
            let pending = UnsafeBufferPointer(rebasing: bytes[start...])
            guard let consumed = try scanner.scan(pending) else { return nil }
            return (try HTTPRequestHeadParser.makeHead(pending, lines: scanner.lines), consumed)
        }
        guard let (head, consumed) = scanned else { return nil }
        self.start += consumed
        scanner = Self.makeScanner(limits)
        let framing = try Self.framing(of: head, limits: limits)
        compact()
        if framing.bodyLength > buffered {
            // Room for the body and one read at once: growing by doubling would hold up to
            // twice the body's size.
            buffer.reserveCapacity(framing.bodyLength + Self.readSize)
        }
        return (head, framing)
    }

    /// Takes the body that follows the last head, once `count` bytes have arrived.
    mutating func takeBody(count: Int) -> [UInt8]? {
        guard buffered >= count else { return nil }
        let body = Array(buffer[start..<(start + count)])
        start += count
        compact()
        return body
    }

    /// Drops what was taken. Only between heads, where the scanner holds no offsets.
    private mutating func compact() {
        if start == buffer.count {
            buffer = []  // an idle connection holds no storage
            start = 0
        } else if start > 0 {
            buffer.removeFirst(start)  // what follows is at most one read: cheap
            start = 0
        }
    }

    /// Checks the fields that decide how the message is framed and where it goes.
    static func framing(of head: HTTPRequestHead, limits: Limits) throws(HTTPParseError) -> Framing {
        let hosts = head.headers.values("Host")
        // RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host, with several, or with an
        // invalid one.
        if hosts.count > 1 { throw .init(.badRequest, "more than one Host field") }
        if hosts.isEmpty && head.minorVersion >= 1 { throw .init(.badRequest, "an HTTP/1.1 request must have a Host field") }
        if let host = hosts.first, !isValidHost(host) { throw .init(.badRequest, "malformed Host field") }

        // RFC 9112 §6.1: a Transfer-Encoding in HTTP/1.0 is faulty; in HTTP/1.1 we do not
        // implement any, so the body's end cannot be found.
        if !head.headers.values("Transfer-Encoding").isEmpty {
            if head.minorVersion == 0 { throw .init(.badRequest, "Transfer-Encoding in an HTTP/1.0 request") }
            throw .init(.notImplemented, "Transfer-Encoding is not supported; send Content-Length")
        }

        // RFC 9112 §6.3 and RFC 9110 §8.6: every element of every Content-Length line must be
        // digits, and all must agree; anything else is 400 and the connection closes.
        var length: Int?
        for value in head.headers.values("Content-Length") {
            for element in value.split(separator: ",", omittingEmptySubsequences: false) {
                let digits = element.trimmingSpaces.utf8
                guard !digits.isEmpty, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                    throw .init(.badRequest, "malformed Content-Length")
                }
                let significant = digits.drop { $0 == 48 }
                let parsed = significant.count > 18 ? Int.max : significant.reduce(0) { $0 * 10 + Int($1 - 48) }
                if let length, length != parsed { throw .init(.badRequest, "conflicting Content-Length values") }
                length = parsed
            }
        }
        let bodyLength = length ?? 0
        guard bodyLength <= limits.maxBodySize else {
            let shown = bodyLength == .max ? "more than \(Int.max)" : "\(bodyLength)"
            throw .init(.payloadTooLarge, "request body of \(shown) bytes is over the limit of \(limits.maxBodySize)")
        }

        // RFC 9110 §10.1.1: 100-continue is the only expectation; an HTTP/1.0 one is ignored.
        var expectsContinue = false
        let expectations = head.headers.values("Expect")
        if !expectations.isEmpty && head.minorVersion >= 1 {
            let tokens = expectations.flatMap { $0.split(separator: ",") }.map { $0.trimmingSpaces.lowercasedASCII }
            guard !tokens.isEmpty, tokens.allSatisfy({ $0 == "100-continue" }) else {
                throw .init(.expectationFailed, "the only expectation supported is 100-continue")
            }
            expectsContinue = true
        }
        return Framing(bodyLength: bodyLength, expectsContinue: expectsContinue)
    }

    /// RFC 9110 §7.2: `uri-host [ ":" port ]`; an empty value is allowed, and so is an empty
    /// port (RFC 3986's `*DIGIT`), but not a port over 65535, which no connection can have.
    static func isValidHost(_ value: String) -> Bool {
        var bytes = Array(value.utf8)[...]
        if bytes.first == 91 {  // "[" IP-literal "]"
            guard let close = bytes.firstIndex(of: 93) else { return false }
            let literal = bytes[bytes.index(after: bytes.startIndex)..<close]
            guard !literal.isEmpty, literal.allSatisfy({ isUnreserved($0) || isSubDelimiter($0) || $0 == 58 }) else { return false }
            bytes = bytes[bytes.index(after: close)...]
        } else {
            let name = bytes.prefix { $0 != 58 }
            guard isRegisteredName(name) else { return false }
            bytes = bytes[name.endIndex...]
        }
        guard let colon = bytes.first else { return true }
        let port = bytes.dropFirst()
        guard colon == 58, port.count <= 5, port.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return false }
        return port.reduce(0) { $0 * 10 + Int($1 - 48) } <= 65535
    }

    /// `reg-name = *( unreserved / pct-encoded / sub-delims )`, which covers IPv4 addresses.
    private static func isRegisteredName(_ name: ArraySlice<UInt8>) -> Bool {
        var index = name.startIndex
        while index < name.endIndex {
            let byte = name[index]
            if byte == 37 {  // %HH
                guard index + 2 < name.endIndex, isHexDigit(name[index + 1]), isHexDigit(name[index + 2]) else { return false }
                index += 3
                continue
            }
            guard isUnreserved(byte) || isSubDelimiter(byte) else { return false }
            index += 1
        }
        return true
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case 48...57, 65...90, 97...122, 45, 46, 95, 126: true
        default: false
        }
    }

    private static func isSubDelimiter(_ byte: UInt8) -> Bool {
        switch byte {
        case 33, 36, 38, 39, 40, 41, 42, 43, 44, 59, 61: true
        default: false
        }
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case 48...57, 65...70, 97...102: true
        default: false
        }
    }
}
