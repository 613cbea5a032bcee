extension HTTPServer {
    /// Opens an event stream for `request` and hands it to a task of its own (``stream(_:)``),
    /// or answers the refusal.
    func serveEvents(_ route: EventRoute, for request: HTTPRequest, on socket: Socket) async throws -> Outcome {
        let logger = configuration.logger
        let connection: any EventStreamConnection
        do {
            connection = try await route.open(request, SourceResolution(server: self, fd: socket.fd))
        } catch let error as HTTPError {
            logger(.info, "\(error.status.code) \(request.method) \(request.path): \(error.message)")
            try await send(HTTPResponse(status: error.status, text: error.message + "\n"), to: request, on: socket, keepAlive: false)
            return .close
        } catch let error as EventServerError {
            let status: HTTPStatus = error.code == .duplicateSource ? .conflict : .serviceUnavailable
            logger(.info, "\(status.code) \(request.path): \(error)")
            try await send(HTTPResponse(status: status, text: "\(error)\n"), to: request, on: socket, keepAlive: false)
            return .close
        } catch {
            logger(.error, "500 \(request.path): source resolver failed: \(error)")
            try await send(HTTPResponse(status: .internalServerError, text: "internal error\n"), to: request, on: socket, keepAlive: false)
            return .close
        }

        socket.setNoDelay()
        var head = "HTTP/1.1 200 OK\r\n"
        for (name, value) in route.hub.responseHeaders { head += "\(name): \(value)\r\n" }
        for (name, value) in router.corsHeaders { head += "\(name): \(value)\r\n" }
        head += "Connection: close\r\n\r\n"
        let sink = SocketSink(socket: socket, poller: poller, head: Array(head.utf8))
        if connection.mailbox.queuedCount == 0 {
            // Nothing to send with it yet: the client must see the head now, not at the first event.
            try await sink.flushHead()
        }
        let mailbox = connection.mailbox
        // A write stuck on a client that stopped reading must not outlive the stream. This runs
        // before the reader sees the end, so while the descriptor is still this socket's.
        mailbox.onFinish { socket.shutdown() }
        // The client closing (read of 0) or resetting (error) ends the stream at once. The
        // watch is a poller callback, not a task: an idle stream holds no second task.
        let watching = poller.watchReadable(socket.fd) {
            let result = try? withUnsafeTemporaryAllocation(byteCount: 512, alignment: 1) { try socket.read(into: $0) }
            switch result {
            case .bytes?, .wouldBlock?:
                return true  // a client has nothing to say on an event stream; ignore it
            case .endOfFile?, nil:
                mailbox.finish(.clientGone, drain: false)
                return false
            }
        }
        if !watching { mailbox.finish(.clientGone, drain: false) }
        let handoff = StreamHandoff(connection: connection, sink: sink, socket: socket)
        guard handoffs.hand(handoff) else {
            // Only while the server stops, if at all: serve it on this task then.
            _ = try? await connection.run(writingTo: sink)
            return .close
        }
        return .handedOff
    }

    /// Serves a stream until it ends: the response head goes out with the first frames (if it
    /// has not yet), each wake-up's frames in one `send`; the poller's watch ends it at once
    /// when the client closes or resets the connection. Then releases the socket.
    func stream(_ handoff: StreamHandoff) async {
        _ = try? await handoff.connection.run(writingTo: handoff.sink)
        release(handoff.socket)
    }
}
