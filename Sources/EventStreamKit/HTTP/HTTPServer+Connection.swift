import Synchronization

extension HTTPServer {
    /// Serves one client connection: requests one after another (keep-alive), until the
    /// client closes, asks to close, errs, or upgrades to an event stream.
    func serve(_ socket: Socket) async {
        var handedOff = false
        defer { if !handedOff { release(socket) } }
        var reader = RequestReader(socket: socket, poller: poller)
        let limits = HTTPRequestHeadParser.Limits(maxHeadSize: configuration.maxHeadSize, maxHeaderCount: configuration.maxHeaderCount)
        while true {
            let deadline = ContinuousClock.now + configuration.headTimeout
            state.withLock { state in
                state.deadlines[socket.fd] = .head(deadline)
                if reader.buffered == 0 { state.idle.insert(socket.fd) }
            }
            let head: HTTPRequestHead
            do {
                guard let next = try await reader.readHead(limits: limits) else { return }  // closed between requests
                head = next
                state.withLock { _ = $0.idle.remove(socket.fd) }
                let body = try await readBody(of: head, from: &reader)
                state.withLock { _ = $0.deadlines.removeValue(forKey: socket.fd) }
                let request = HTTPRequest(head: head, body: body)
                switch try await respond(to: request, on: socket) {
                case .keepAlive where !state.withLock({ $0.isStopping }):
                    continue
                case .keepAlive, .close:
                    return
                case .handedOff:
                    handedOff = true
                    return
                }
            } catch let error as HTTPParseError {
                configuration.logger(.warning, "refused a request (\(error.status.code)): \(error.message)")
                try? await socket.writeAll(Self.statusResponse(error.status, message: error.message), poller: poller)
                return
            } catch {
                return  // the socket failed: nothing to answer
            }
        }
    }

    private func readBody(of head: HTTPRequestHead, from reader: inout RequestReader) async throws -> [UInt8] {
        if head.headers["Transfer-Encoding"] != nil {
            throw HTTPParseError(.notImplemented, "Transfer-Encoding is not supported; send Content-Length")
        }
        let lengths = Set(head.headers.values("Content-Length").flatMap { $0.split(separator: ",") }.map(\.trimmingSpaces))
        guard let text = lengths.first else { return [] }
        guard lengths.count == 1, !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let length = Int(text) else {
            throw HTTPParseError(.badRequest, "malformed Content-Length")
        }
        guard length <= configuration.maxBodySize else {
            throw HTTPParseError(.payloadTooLarge, "request body of \(length) bytes is over the limit of \(configuration.maxBodySize)")
        }
        return try await reader.readBody(count: length)
    }

    /// Forgets and closes a connection's socket, and counts it closed.
    func release(_ socket: Socket) {
        state.withLock { state in
            state.openConnections -= 1
            state.deadlines[socket.fd] = nil
            state.idle.remove(socket.fd)
        }
        poller.forget(socket.fd)
        socket.close()
    }

    enum Outcome {
        /// The connection may serve another request.
        case keepAlive
        case close
        /// An event stream's task owns the socket now.
        case handedOff

        init(keepAlive: Bool) {
            self = keepAlive ? .keepAlive : .close
        }
    }

    /// Answers one request.
    private func respond(to request: HTTPRequest, on socket: Socket) async throws -> Outcome {
        let logger = configuration.logger
        let keepAlive = request.head.keepAlive
        switch router.match(method: request.method, path: request.path) {
        case .notFound:
            logger(.info, "404 \(request.method) \(request.path)")
            try await send(HTTPResponse(status: .notFound, text: "no route for \(request.path)\n"), to: request, on: socket, keepAlive: keepAlive)
            return Outcome(keepAlive: keepAlive)
        case .methodNotAllowed(let allowed):
            logger(.info, "405 \(request.method) \(request.path)")
            var response = HTTPResponse(status: .methodNotAllowed, text: "\(request.method) is not allowed on \(request.path)\n")
            response.headers.add("Allow", allowed.joined(separator: ", "))
            try await send(response, to: request, on: socket, keepAlive: keepAlive)
            return Outcome(keepAlive: keepAlive)
        case .preflight(let allowed):
            var response = HTTPResponse(status: .noContent)
            response.headers.add("Allow", allowed.joined(separator: ", "))
            response.headers.add("Access-Control-Allow-Methods", allowed.joined(separator: ", "))
            if let requested = request.headers["Access-Control-Request-Headers"] {
                response.headers.add("Access-Control-Allow-Headers", requested)
            }
            response.headers.add("Access-Control-Max-Age", "600")
            try await send(response, to: request, on: socket, keepAlive: keepAlive)
            return Outcome(keepAlive: keepAlive)
        case .route(.plain(let handler)):
            let response: HTTPResponse
            do {
                response = try await handler(request)
            } catch let error as HTTPError {
                logger(.info, "\(error.status.code) \(request.method) \(request.path): \(error.message)")
                response = HTTPResponse(status: error.status, text: error.message + "\n")
            } catch {
                logger(.error, "500 \(request.method) \(request.path): \(error)")
                response = HTTPResponse(status: .internalServerError, text: "internal error\n")
            }
            try await send(response, to: request, on: socket, keepAlive: keepAlive)
            return Outcome(keepAlive: keepAlive)
        case .route(.events(let route)):
            return try await serveEvents(route, for: request, on: socket)
        }
    }

    func send(_ response: HTTPResponse, to request: HTTPRequest, on socket: Socket, keepAlive: Bool) async throws {
        var head = "HTTP/1.1 \(response.status.code) \(response.status.reason)\r\n"
        for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
        for (name, value) in router.corsHeaders { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(response.body.count)\r\n"
        head += keepAlive ? (request.head.minorVersion == 0 ? "Connection: keep-alive\r\n\r\n" : "\r\n") : "Connection: close\r\n\r\n"
        let body = request.method == "HEAD" ? [] : response.body
        try await socket.writeAll(Array(head.utf8) + body, poller: poller)
    }
}

/// Reads requests from a socket into a buffer that carries over what follows a request
/// (its body, or a pipelined request).
struct RequestReader {
    let socket: Socket
    let poller: Poller
    private var buffer: [UInt8] = []
    private static let chunkSize = 16 * 1024

    init(socket: Socket, poller: Poller) {
        self.socket = socket
        self.poller = poller
    }

    var buffered: Int { buffer.count }

    /// The next request head, or `nil` if the client closed the connection cleanly first.
    mutating func readHead(limits: HTTPRequestHeadParser.Limits) async throws -> HTTPRequestHead? {
        while true {
            if !buffer.isEmpty, case .complete(let head, let consumed) = try HTTPRequestHeadParser.parse(buffer, limits: limits) {
                buffer.removeFirst(consumed)
                return head
            }
            guard try await fill() else {
                if buffer.isEmpty { return nil }
                throw HTTPParseError(.badRequest, "connection closed in the middle of a request head")
            }
        }
    }

    mutating func readBody(count: Int) async throws -> [UInt8] {
        while buffer.count < count {
            guard try await fill() else { throw HTTPParseError(.badRequest, "connection closed in the middle of a request body") }
        }
        let body = Array(buffer.prefix(count))
        buffer.removeFirst(count)
        return body
    }

    /// Reads what is available, waiting for it; `false` at end of file.
    private mutating func fill() async throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: Self.chunkSize)
        while true {
            let result = try chunk.withUnsafeMutableBytes { try socket.read(into: $0) }
            switch result {
            case .bytes(let count):
                buffer.append(contentsOf: chunk[..<count])
                return true
            case .endOfFile:
                return false
            case .wouldBlock:
                try await poller.waitReadable(socket.fd)
            }
        }
    }
}
