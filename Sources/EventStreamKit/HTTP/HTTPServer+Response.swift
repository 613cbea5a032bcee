extension HTTPServer {
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
    func respond(to request: HTTPRequest, on socket: Socket, handle: Handle) async throws -> Outcome {
        let logger = configuration.logger
        let response: HTTPResponse
        switch router.match(method: request.method, path: request.path) {
        case .notFound:
            logger(.info, "404 \(request.method) \(request.path)")
            response = HTTPResponse(status: .notFound, text: "no route for \(request.path)\n")
        case .methodNotAllowed(let allowed):
            logger(.info, "405 \(request.method) \(request.path)")
            var refusal = HTTPResponse(status: .methodNotAllowed, text: "\(request.method) is not allowed on \(request.path)\n")
            refusal.headers.add("Allow", allowed.joined(separator: ", "))
            response = refusal
        case .preflight(let allowed):
            var preflight = HTTPResponse(status: .noContent)
            preflight.headers.add("Allow", allowed.joined(separator: ", "))
            preflight.headers.add("Access-Control-Allow-Methods", allowed.joined(separator: ", "))
            if let requested = request.headers["Access-Control-Request-Headers"] {
                preflight.headers.add("Access-Control-Allow-Headers", requested)
            }
            preflight.headers.add("Access-Control-Max-Age", "600")
            response = preflight
        case .route(.plain(let handler)):
            do {
                response = try await handler(request)
            } catch let error as HTTPError {
                logger(.info, "\(error.status.code) \(request.method) \(request.path): \(error.message)")
                response = HTTPResponse(status: error.status, text: error.message + "\n")
            } catch {
                logger(.error, "500 \(request.method) \(request.path): \(error)")
                response = HTTPResponse(status: .internalServerError, text: "internal error\n")
            }
        case .route(.events(let route)):
            if request.method == "HEAD" { return try await answerHead(of: route, for: request, on: socket, handle: handle) }
            return try await serveEvents(route, for: request, on: socket, handle: handle)
        }
        try await send(response, to: request, on: socket, handle: handle, keepAlive: request.head.keepAlive)
        return Outcome(keepAlive: request.head.keepAlive)
    }

    /// `HEAD` on an event route: the headers a `GET` would get (or its refusal), no stream.
    private func answerHead(of route: EventRoute, for request: HTTPRequest, on socket: Socket, handle: Handle) async throws -> Outcome {
        var response = HTTPResponse(status: .ok)
        do {
            try await route.check(request, SourceResolution(server: self, handle: handle))
            for (name, value) in route.hub.responseHeaders { response.headers.add(name, value) }
        } catch let error as HTTPError {
            response = HTTPResponse(status: error.status, text: error.message + "\n")
        } catch {
            response = HTTPResponse(status: .internalServerError, text: "internal error\n")
        }
        try await send(response, to: request, on: socket, handle: handle, keepAlive: request.head.keepAlive, streamed: response.status == .ok)
        return Outcome(keepAlive: request.head.keepAlive)
    }

    /// Sends a complete response; a response to `HEAD` without its body.
    func send(_ response: HTTPResponse, to request: HTTPRequest, on socket: Socket, handle: Handle, keepAlive: Bool, streamed: Bool = false) async throws {
        var bytes = responseBytes(response, minorVersion: request.head.minorVersion, isHead: request.method == "HEAD", keepAlive: keepAlive, streamed: streamed)
        if bytes.isEmpty {
            configuration.logger(.error, "500 \(request.method) \(request.path): the handler's response has a header field with CR, LF or NUL, or an invalid name")
            bytes = responseBytes(HTTPResponse(status: .internalServerError, text: "internal error\n"), minorVersion: request.head.minorVersion, isHead: false, keepAlive: false)
        }
        try await write(bytes, to: socket, handle: handle)
    }

    /// The bytes of a complete response: status line, the handler's fields, CORS fields,
    /// `Date`, `Content-Length` (not on 1xx, 204 or 304, nor on a `streamed` answer to
    /// `HEAD`), `Connection`, then the body (none for `HEAD`).
    ///
    /// The server frames the message: a handler's `Content-Length`, `Transfer-Encoding` or
    /// `Connection` field is left out. Empty if a field would inject a line (CR, LF or NUL in
    /// a value, or a name that is not a token): the caller answers 500 instead.
    func responseBytes(_ response: HTTPResponse, minorVersion: Int, isHead: Bool, keepAlive: Bool, streamed: Bool = false) -> [UInt8] {
        let status = response.status
        var head = "HTTP/1.1 \(status.code) \(status.reason)\r\n"
        var hasDate = false
        for (name, value) in response.headers.fields + router.corsHeaders {
            guard Self.isValidField(name: name, value: value) else { return [] }
            switch name.lowercasedASCII {
            case "content-length", "transfer-encoding", "connection": continue
            case "date": hasDate = true
            default: break
            }
            head += "\(name): \(value)\r\n"
        }
        if !hasDate { head += "Date: \(HTTPDate.now())\r\n" }
        let hasNoContent = (100..<200).contains(status.code) || status.code == 204 || status.code == 304
        if !hasNoContent && !streamed { head += "Content-Length: \(response.body.count)\r\n" }
        head += keepAlive ? (minorVersion == 0 ? "Connection: keep-alive\r\n\r\n" : "\r\n") : "Connection: close\r\n\r\n"
        var bytes = Array(head.utf8)
        if !isHead && !hasNoContent { bytes += response.body }
        return bytes
    }

    /// A field that cannot start another line or field: a token name, and a value without
    /// CR, LF or NUL.
    static func isValidField(name: String, value: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy(HTTPRequestHeadParser.isTokenByte) && !value.utf8.contains { $0 == 13 || $0 == 10 || $0 == 0 }
    }
}
