import Foundation

/// A response on the built-in HTTP/1.1 client: a non-blocking socket on a shared poller,
/// one request per connection (`Connection: close` is not needed: the stream ends it).
/// It asks for no content coding (`Accept-Encoding: identity`); a response that has one
/// anyway fails loudly (``EventSourceError/Code/unsupportedContentEncoding``).
final class HTTPClientResponse: EventStreamResponse {
    /// The poller for every client connection in the process: one thread, created on first use.
    static let poller: Result<Poller, SocketError> = Result { () throws(SocketError) in try Poller() }

    private static let chunkSize = 16 * 1024
    private static let headLimits = HTTPRequestHeadParser.Limits(maxHeadSize: 16 * 1024, maxHeaderCount: 100)

    let socket: Socket
    let poller: Poller
    let head: HTTPResponseHead
    private let framing: HTTPResponseHead.Framing
    private var chunked = ChunkedBodyDecoder()
    private var remaining = 0
    /// Body bytes that arrived with the head.
    private var early: [UInt8]
    private var isAtEnd = false

    var status: Int { head.status }
    var headers: HTTPHeaders { head.headers }
    var interrupt: @Sendable () -> Void { { [socket] in socket.shutdown() } }

    /// A connected socket whose response head has been read: what the connecting task hands
    /// back (``EventSourceStorage/connect(timeout:_:)``). Whoever holds it owns the socket:
    /// ``HTTPClientResponse/init(_:)`` takes it over.
    struct Opened: Sendable {
        let socket: Socket
        let poller: Poller
        let head: HTTPResponseHead
        /// Body bytes that arrived with the head.
        let early: [UInt8]
    }

    /// Takes over the socket of `opened`; closes it (in `deinit`) even if the framing is bad.
    init(_ opened: Opened) throws(EventSourceError) {
        socket = opened.socket
        poller = opened.poller
        head = opened.head
        early = opened.early
        do {
            framing = try head.framing()
        } catch {
            framing = .none
            isAtEnd = true
            throw error
        }
        if case .length(let length) = framing { remaining = length }
        isAtEnd = framing == .none || framing == .length(0)
    }

    deinit {
        poller.forget(socket.fd)
        socket.close()
    }

    /// Connects, sends the request, and reads the response head (skipping interim 1xx
    /// responses, as RFC 9110 §15.2 requires). Cancelling the task ends it in any phase.
    nonisolated(nonsending) static func connect(_ request: EventSourceRequest) async throws -> Opened {
        let poller = try poller.get()
        guard let host = request.url.host else { throw EventSourceError.invalidURL(request.url.absoluteString, "no host") }
        let port = UInt16(clamping: request.url.port ?? 80)
        let socket = try await Socket.connect(host: host, port: port, poller: poller)
        var owned = true
        defer {
            if owned {
                poller.forget(socket.fd)
                socket.close()
            }
        }
        socket.setKeepAlive()
        let head = Array(requestHead(request).utf8)
        if let body = request.body, !body.isEmpty {
            try await socket.writeAll(head: head, frames: [EventFrame(encodedBytes: body)], poller: poller)
        } else {
            try await socket.writeAll(head, poller: poller)
        }
        var buffer: [UInt8] = []
        var interim = 0
        while true {
            if !buffer.isEmpty, case .complete(let head, let consumed) = try HTTPResponseHeadParser.parse(buffer, limits: headLimits) {
                buffer.removeFirst(consumed)
                if head.status == 101 { throw EventSourceError.invalidResponse("101 Switching Protocols, but no upgrade was asked for") }
                if (100..<200).contains(head.status) {
                    interim += 1
                    // Bounded in time by the connect timeout; this bounds the work too.
                    guard interim <= maxInterimResponses else { throw EventSourceError.invalidResponse("more than \(maxInterimResponses) interim (1xx) responses") }
                    continue
                }
                owned = false
                return Opened(socket: socket, poller: poller, head: head, early: buffer)
            }
            guard try await fill(&buffer, from: socket, poller: poller) else {
                throw EventSourceError.invalidResponse(buffer.isEmpty ? "the server closed the connection without answering" : "the server closed the connection in the response head")
            }
        }
    }

    /// The most interim (1xx) responses accepted before the final one.
    static let maxInterimResponses = 100

    static func requestHead(_ request: EventSourceRequest) -> String {
        let url = request.url
        let components = URLComponents(url: url, resolvingAgainstBaseURL: true)
        var target = components?.percentEncodedPath ?? "/"
        if target.isEmpty { target = "/" }
        if let query = components?.percentEncodedQuery { target += "?" + query }
        var host = url.host ?? ""
        if host.contains(":"), !host.hasPrefix("[") { host = "[\(host)]" }
        if let port = url.port, port != 80 { host += ":\(port)" }
        var head = "\(request.method) \(target) HTTP/1.1\r\nHost: \(host)\r\n"
        for (name, value) in request.headers { head += "\(name): \(value)\r\n" }
        if let body = request.body {
            head += "Content-Length: \(body.count)\r\n"
        } else if ["POST", "PUT", "PATCH"].contains(request.method) {
            head += "Content-Length: 0\r\n"
        }
        return head + "\r\n"
    }

    nonisolated(nonsending) func read(into buffer: inout [UInt8]) async throws -> Bool {
        let start = buffer.count
        while buffer.count == start {
            if isAtEnd { return false }
            if !early.isEmpty {
                let bytes = early
                early = []
                try consume(bytes, into: &buffer)
                continue
            }
            let result = try withUnsafeTemporaryAllocation(byteCount: Self.chunkSize, alignment: 1) { (scratch) throws -> Socket.ReadResult in
                let result = try socket.read(into: scratch)
                if case .bytes(let count) = result { try consume(UnsafeRawBufferPointer(rebasing: scratch[..<count]), into: &buffer) }
                return result
            }
            switch result {
            case .bytes:
                continue
            case .wouldBlock:
                try await poller.waitReadable(socket.fd)
            case .endOfFile:
                if framing == .untilClose {
                    isAtEnd = true
                } else {
                    throw EventSourceError.invalidResponse("the server closed the connection before the end of the body")
                }
            }
        }
        return true
    }

    private func consume(_ bytes: [UInt8], into buffer: inout [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in try consume(raw, into: &buffer) }
    }

    private func consume(_ bytes: UnsafeRawBufferPointer, into buffer: inout [UInt8]) throws {
        switch framing {
        case .none:
            isAtEnd = true
        case .untilClose:
            buffer.append(contentsOf: bytes)
        case .length:
            let take = min(remaining, bytes.count)
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[..<take]))
            remaining -= take
            isAtEnd = remaining == 0
        case .chunked:
            try chunked.decode(bytes, into: &buffer)
            isAtEnd = chunked.isComplete
        }
    }

    /// Reads what is available into `buffer`, waiting for it; `false` at end of file.
    private nonisolated(nonsending) static func fill(_ buffer: inout [UInt8], from socket: Socket, poller: Poller) async throws -> Bool {
        while true {
            let result = try withUnsafeTemporaryAllocation(byteCount: chunkSize, alignment: 1) { (scratch) throws -> Socket.ReadResult in
                let result = try socket.read(into: scratch)
                if case .bytes(let count) = result { buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<count])) }
                return result
            }
            switch result {
            case .bytes: return true
            case .endOfFile: return false
            case .wouldBlock: try await poller.waitReadable(socket.fd)
            }
        }
    }
}
