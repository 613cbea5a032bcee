import Foundation

/// A response on the built-in HTTP/1.1 client: a non-blocking socket on a shared poller,
/// one request per connection (`Connection: close` is not needed: the stream ends it).
/// It asks for no content coding (`Accept-Encoding: identity`); a response that has one
/// anyway fails loudly (``EventSourceError/Code/unsupportedContentEncoding``).
final class HTTPClientResponse: EventStreamResponse {
    /// The poller for every client connection in the process: one thread, created on first use.
    static let poller: Result<Poller, SocketError> = Result { () throws(SocketError) in try Poller() }

    private static let chunkSize = 16 * 1024

    let socket: Socket
    let poller: Poller
    let head: HTTPResponseHead
    private var decoder: HTTPClientResponseDecoder
    /// Body bytes that arrived with the head, decoded.
    private var early: [UInt8]

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
        let decoder: HTTPClientResponseDecoder
        /// Body bytes that arrived with the head, decoded.
        let early: [UInt8]
    }

    /// Takes over the socket of `opened`; closes it in `deinit`.
    init(_ opened: Opened) {
        socket = opened.socket
        poller = opened.poller
        head = opened.head
        decoder = opened.decoder
        early = opened.early
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
        var decoder = HTTPClientResponseDecoder()
        var early: [UInt8] = []
        while true {
            let result = try withUnsafeTemporaryAllocation(byteCount: chunkSize, alignment: 1) { (scratch) throws -> (Socket.ReadResult, HTTPResponseHead?) in
                let result = try socket.read(into: scratch)
                guard case .bytes(let count) = result else { return (result, nil) }
                return (result, try decoder.feedHead(UnsafeRawBufferPointer(rebasing: scratch[..<count]), body: &early))
            }
            switch result {
            case (_, let head?):
                owned = false
                return Opened(socket: socket, poller: poller, head: head, decoder: decoder, early: early)
            case (.bytes, nil):
                continue
            case (.wouldBlock, nil):
                try await poller.waitReadable(socket.fd)
            case (.endOfFile, nil):
                try decoder.endOfInput()  // throws: the head was cut off
            }
        }
    }

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
        if !early.isEmpty {
            buffer.append(contentsOf: early)
            early = []
            return true
        }
        let start = buffer.count
        while buffer.count == start {
            if decoder.isAtEnd { return false }
            let result = try withUnsafeTemporaryAllocation(byteCount: Self.chunkSize, alignment: 1) { (scratch) throws -> Socket.ReadResult in
                let result = try socket.read(into: scratch)
                if case .bytes(let count) = result { try decoder.decodeBody(UnsafeRawBufferPointer(rebasing: scratch[..<count]), into: &buffer) }
                return result
            }
            switch result {
            case .bytes:
                continue
            case .wouldBlock:
                try await poller.waitReadable(socket.fd)
            case .endOfFile:
                try decoder.endOfInput()
                return buffer.count > start
            }
        }
        return true
    }
}
