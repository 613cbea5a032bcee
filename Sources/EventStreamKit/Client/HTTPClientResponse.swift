import Foundation

/// A response on the built-in HTTP/1.1 client: a non-blocking socket on a shared poller,
/// one request per connection (`Connection: close` is not needed: the stream ends it).
/// It asks for no content coding (`Accept-Encoding: identity`); a response that has one
/// anyway fails loudly (``EventSourceError/Code/unsupportedContentEncoding``).
final class HTTPClientResponse: EventStreamResponse {
    /// The poller for every client connection in the process: one thread, created on first use.
    static let poller: Result<Poller, SocketError> = Result { () throws(SocketError) in try Poller() }

    private static let chunkSize = 16 * 1024

    let channel: Channel
    let poller: Poller
    let head: HTTPResponseHead
    private var decoder: HTTPClientResponseDecoder
    /// Body bytes that arrived with the head, decoded.
    private var early: [UInt8]

    var status: Int { head.status }
    var headers: HeaderFields { head.headers }
    var interrupt: @Sendable () -> Void { { [socket = channel.socket] in socket.shutdown() } }

    /// A connected socket whose response head has been read: what the connecting task hands
    /// back (``EventSourceStorage/connect(timeout:_:)``). Whoever holds it owns the socket:
    /// ``HTTPClientResponse/init(_:)`` takes it over.
    struct Opened: Sendable {
        let channel: Channel
        let poller: Poller
        let head: HTTPResponseHead
        let decoder: HTTPClientResponseDecoder
        /// Body bytes that arrived with the head, decoded.
        let early: [UInt8]
    }

    /// Takes over the socket of `opened`; closes it in `deinit`.
    init(_ opened: Opened) {
        channel = opened.channel
        poller = opened.poller
        head = opened.head
        decoder = opened.decoder
        early = opened.early
    }

    deinit {
        poller.forget(channel.socket.fd)
        channel.socket.close()
    }

    /// Connects (with TLS for `https`), sends the request, and reads the response head
    /// (skipping interim 1xx responses, as RFC 9110 §15.2 requires). Cancelling the task
    /// ends it in any phase.
    nonisolated(nonsending) static func connect(_ request: EventSourceRequest) async throws -> Opened {
        let poller = try poller.get()
        guard let host = request.url.host else { throw EventSourceError.invalidURL(request.url.absoluteString, "no host") }
        let secure = request.url.scheme?.lowercased() == "https"
        let port = UInt16(clamping: request.url.port ?? (secure ? 443 : 80))
        let socket = try await Socket.connect(host: host, port: port, poller: poller)
        var owned = true
        defer {
            if owned {
                poller.forget(socket.fd)
                socket.close()
            }
        }
        socket.setKeepAlive()
        let channel: Channel
        if secure {
            #if canImport(Glibc)
            let session = try TLSSession(socket: socket, host: host)
            try await session.completeHandshake(poller: poller)
            channel = Channel(socket: socket, tls: session)
            #else
            throw EventSourceError.invalidURL(request.url.absoluteString, "https goes through URLSession on this platform")
            #endif
        } else {
            channel = Channel(socket: socket)
        }
        try await channel.send(head: Array(requestHead(request).utf8), body: request.body ?? [], poller: poller)
        var decoder = HTTPClientResponseDecoder()
        var early: [UInt8] = []
        while true {
            let result = try withUnsafeTemporaryAllocation(byteCount: chunkSize, alignment: 1) { (scratch) throws -> (Channel.Progress, HTTPResponseHead?) in
                let result = try channel.read(into: scratch)
                guard case .done(let count) = result else { return (result, nil) }
                return (result, try decoder.feedHead(UnsafeRawBufferPointer(rebasing: scratch[..<count]), body: &early))
            }
            switch result {
            case (_, let head?):
                owned = false
                return Opened(channel: channel, poller: poller, head: head, decoder: decoder, early: early)
            case (.done, nil):
                continue
            case (.readable, nil), (.writable, nil):
                try await channel.wait(for: result.0, poller: poller)
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
        if let port = url.port, port != (url.scheme?.lowercased() == "https" ? 443 : 80) { host += ":\(port)" }
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
            let result = try withUnsafeTemporaryAllocation(byteCount: Self.chunkSize, alignment: 1) { (scratch) throws -> Channel.Progress in
                let result = try channel.read(into: scratch)
                if case .done(let count) = result { try decoder.decodeBody(UnsafeRawBufferPointer(rebasing: scratch[..<count]), into: &buffer) }
                return result
            }
            switch result {
            case .done:
                continue
            case .readable, .writable:
                try await channel.wait(for: result, poller: poller)
            case .endOfFile:
                try decoder.endOfInput()
                return buffer.count > start
            }
        }
        return true
    }
}

extension HTTPClientResponse {
    /// A connection's bytes: the socket itself, or a TLS session over it.
    struct Channel: Sendable {
        let socket: Socket
        #if canImport(Glibc)
        let tls: TLSSession?

        init(socket: Socket, tls: TLSSession? = nil) {
            self.socket = socket
            self.tls = tls
        }
        #else
        init(socket: Socket) {
            self.socket = socket
        }
        #endif

        /// What a read achieved, or what it waits for.
        typealias Progress = ReadProgress

        /// Reads what is available: `.done(count)` (never 0), or what to wait for.
        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Progress {
            #if canImport(Glibc)
            if let tls {
                switch try tls.read(into: buffer) {
                case .done(let count): return .done(count)
                case .readable: return .readable
                case .writable: return .writable
                case .endOfFile: return .endOfFile
                }
            }
            #endif
            switch try socket.read(into: buffer) {
            case .bytes(let count): return .done(count)
            case .wouldBlock: return .readable
            case .endOfFile: return .endOfFile
            }
        }

        /// Waits for the readiness `progress` asks for.
        nonisolated(nonsending) func wait(for progress: Progress, poller: Poller) async throws {
            if progress == .writable {
                try await poller.waitWritable(socket.fd)
            } else {
                try await poller.waitReadable(socket.fd)
            }
        }

        /// Sends the request head and body.
        nonisolated(nonsending) func send(head: [UInt8], body: [UInt8], poller: Poller) async throws {
            #if canImport(Glibc)
            if let tls {
                try await tls.writeAll(head + body, poller: poller)
                return
            }
            #endif
            if body.isEmpty {
                try await socket.writeAll(head, poller: poller)
            } else {
                try await socket.writeAll(head: head, frames: [EventFrame(encodedBytes: body)], poller: poller)
            }
        }
    }

    /// What a read on a ``Channel`` achieved, or what it waits for.
    enum ReadProgress: Equatable {
        /// This many bytes (at least one).
        case done(Int)
        /// Wait until the socket is readable.
        case readable
        /// Wait until the socket is writable (TLS may need to send before it can read).
        case writable
        /// The peer ended the stream.
        case endOfFile
    }
}
