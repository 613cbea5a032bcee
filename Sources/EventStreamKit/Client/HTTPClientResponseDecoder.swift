/// The built-in client's response path as a pure value: bytes in, the final response head,
/// then body bytes, for any split of the input. ``HTTPClientResponse`` feeds it what the
/// socket gives; the `ClientResponse` fuzz target feeds it arbitrary bytes in arbitrary
/// chunks.
///
/// - Interim 1xx responses are skipped (RFC 9110 §15.2), at most ``maxInterimResponses``;
///   `101` is refused, as no upgrade was asked for.
/// - The head is bounded by ``headLimits``; the body is framed by `Content-Length`,
///   `chunked`, or the end of the connection (RFC 9112 §6.3). Bytes after a `Content-Length`
///   body or after the last chunk are not body: they are dropped.
struct HTTPClientResponseDecoder {
    static let headLimits = HTTPHeadScanner.Limits(maxHeadSize: 16 * 1024, maxHeaderCount: 100)
    /// The most interim (1xx) responses accepted before the final one.
    static let maxInterimResponses = 100

    private enum Phase {
        case head
        case body(HTTPResponseHead.Framing)
        case ended
    }

    private var phase = Phase.head
    private var headBuffer: [UInt8] = []
    private var interim = 0
    private var chunked = ChunkedBodyDecoder()
    private var remaining = 0
    private let limits: HTTPHeadScanner.Limits

    /// The final response head, once it has arrived.
    private(set) var head: HTTPResponseHead?

    init(limits: HTTPHeadScanner.Limits = Self.headLimits) {
        self.limits = limits
    }

    /// Whether the body has ended (by its length, its last chunk, or a framing without body).
    var isAtEnd: Bool {
        if case .ended = phase { true } else { false }
    }

    /// Feeds bytes of the head; returns the final head once it is complete, and appends
    /// what followed it in `input` (the first body bytes, decoded) to `body`.
    ///
    /// - Throws: ``EventSourceError`` (invalid response) for a malformed head, too many
    ///   interim responses, a `101`, or malformed framing.
    mutating func feedHead(_ input: UnsafeRawBufferPointer, body: inout [UInt8]) throws(EventSourceError) -> HTTPResponseHead? {
        guard case .head = phase else { return head }
        headBuffer.append(contentsOf: input)
        while !headBuffer.isEmpty {
            guard case .complete(let parsed, let consumed) = try HTTPResponseHeadParser.parse(headBuffer, limits: limits) else {
                return nil
            }
            headBuffer.removeFirst(consumed)
            if parsed.status == 101 { throw .invalidResponse("101 Switching Protocols, but no upgrade was asked for") }
            if (100..<200).contains(parsed.status) {
                interim += 1
                guard interim <= Self.maxInterimResponses else { throw .invalidResponse("more than \(Self.maxInterimResponses) interim (1xx) responses") }
                continue
            }
            head = parsed
            let framing = try parsed.framing()
            if case .length(let length) = framing { remaining = length }
            phase = framing == .none || framing == .length(0) ? .ended : .body(framing)
            let rest = headBuffer
            headBuffer = []
            do {
                try rest.withUnsafeBytes { try decodeBody($0, into: &body) }
            } catch let error as EventSourceError {
                throw error
            } catch {
                throw .invalidResponse("\(error)")  // decodeBody throws only EventSourceError
            }
            return parsed
        }
        return nil
    }

    /// Appends the body bytes in `input` to `body`.
    ///
    /// - Throws: ``EventSourceError`` (invalid response) for malformed chunked framing.
    mutating func decodeBody(_ input: UnsafeRawBufferPointer, into body: inout [UInt8]) throws(EventSourceError) {
        guard case .body(let framing) = phase, !input.isEmpty else { return }
        switch framing {
        case .none:
            phase = .ended
        case .untilClose:
            body.append(contentsOf: input)
        case .length:
            let take = min(remaining, input.count)
            body.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[..<take]))
            remaining -= take
            if remaining == 0 { phase = .ended }
        case .chunked:
            try chunked.decode(input, into: &body)
            if chunked.isComplete { phase = .ended }
        }
    }

    /// The connection ended. Returns normally if that ends the body (a body that runs until
    /// the close, or one already complete).
    ///
    /// - Throws: ``EventSourceError`` (invalid response) when the head or a delimited body
    ///   was cut off.
    mutating func endOfInput() throws(EventSourceError) {
        switch phase {
        case .head:
            throw .invalidResponse(headBuffer.isEmpty && interim == 0 ? "the server closed the connection without answering" : "the server closed the connection in the response head")
        case .body(.untilClose), .ended:
            phase = .ended
        case .body:
            throw .invalidResponse("the server closed the connection before the end of the body")
        }
    }
}
