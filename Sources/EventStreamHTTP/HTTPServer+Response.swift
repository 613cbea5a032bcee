import EventStreamKit

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
            configuration.observer?.requestRefused(status: .notFound, reason: "no route", request: request)
            response = .generated(.notFound, "no route for \(request.path)\n")
        case .methodNotAllowed(let allowed):
            logger(.info, "405 \(request.method) \(request.path)")
            configuration.observer?.requestRefused(status: .methodNotAllowed, reason: "method not allowed", request: request)
            var refusal = HTTPResponse.generated(.methodNotAllowed, "\(request.method) is not allowed on \(request.path)\n")
            refusal.headers.add("Allow", allowed.joined(separator: ", "))
            response = refusal
        case .preflight(let allowed):
            var preflight = HTTPResponse(status: .noContent)
            preflight.headers.add("Allow", allowed.joined(separator: ", "))
            if let cors = router.cors {
                // Only for a listed origin; the rest of its headers come with every answer.
                for (name, value) in cors.preflightHeaders(for: request, methods: allowed) { preflight.headers.add(name, value) }
            } else {
                preflight.headers.add("Access-Control-Allow-Methods", allowed.joined(separator: ", "))
                if let requested = request.headers["Access-Control-Request-Headers"] {
                    preflight.headers.add("Access-Control-Allow-Headers", requested)
                }
                preflight.headers.add("Access-Control-Max-Age", "600")
            }
            response = preflight
        case .route(.plain(let handler)):
            do {
                response = try await handler(request)
            } catch let error as HTTPError {
                logger(.info, "\(error.status.code) \(request.method) \(request.path): \(error.message)")
                configuration.observer?.requestRefused(status: error.status, reason: error.message, request: request)
                response = .generated(error.status, error.message + "\n")
            } catch {
                logger(.error, "500 \(request.method) \(request.path): \(error)")
                configuration.observer?.requestRefused(status: .internalServerError, reason: "\(error)", request: request)
                response = .generated(.internalServerError, "internal error\n")
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
            configuration.observer?.requestRefused(status: error.status, reason: error.message, request: request)
            response = .generated(error.status, error.message + "\n")
        } catch {
            configuration.observer?.requestRefused(status: .internalServerError, reason: "\(error)", request: request)
            response = .generated(.internalServerError, "internal error\n")
        }
        try await send(response, to: request, on: socket, handle: handle, keepAlive: request.head.keepAlive, streamed: response.status == .ok)
        return Outcome(keepAlive: request.head.keepAlive)
    }

    /// Sends a complete response; a response to `HEAD` without its body.
    func send(_ response: HTTPResponse, to request: HTTPRequest, on socket: Socket, handle: Handle, keepAlive: Bool, streamed: Bool = false) async throws {
        var bytes = responseBytes(response, to: request, minorVersion: request.head.minorVersion, isHead: request.method == "HEAD", keepAlive: keepAlive, streamed: streamed)
        if bytes.isEmpty {
            configuration.logger(.error, "500 \(request.method) \(request.path): the handler's response has a header field with CR, LF or NUL, or an invalid name")
            configuration.observer?.requestRefused(status: .internalServerError, reason: "invalid response header", request: request)
            bytes = responseBytes(.generated(.internalServerError, "internal error\n"), to: request, minorVersion: request.head.minorVersion, isHead: false, keepAlive: false)
        }
        do {
            try await write(bytes, to: socket, handle: handle)
        } catch {
            configuration.observer?.writeFailed(error: error, request: request)
            throw error
        }
    }

    /// The bytes of `response`, with the router's CORS headers for `request` (`nil`: a request
    /// the server could not read, which gets ``HTTPRouter/corsHeaders`` only).
    func responseBytes(_ response: HTTPResponse, to request: HTTPRequest?, minorVersion: Int, isHead: Bool, keepAlive: Bool, streamed: Bool = false) -> [UInt8] {
        response.serialized(minorVersion: minorVersion, isHead: isHead, keepAlive: keepAlive, streamed: streamed, extraHeaders: router.extraHeaders(for: request)) ?? []
    }
}

extension HTTPResponse {
    /// A plain-text answer the server writes itself (a refusal, a 404, a 500, a handler's or
    /// resolver's `HTTPError`), with `X-Content-Type-Options: nosniff`: its text may echo the
    /// request (a 404 names the decoded path), and a browser must not sniff it into HTML.
    static func generated(_ status: HTTPStatus, _ text: String) -> HTTPResponse {
        var response = HTTPResponse(status: status, text: text)
        response.headers.add("X-Content-Type-Options", "nosniff")
        return response
    }
}
