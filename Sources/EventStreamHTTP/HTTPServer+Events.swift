import Synchronization
import EventStreamKit

extension HTTPServer {
    /// Opens an event stream for `request` and hands it to a task of its own (``stream(_:)``),
    /// or answers the refusal.
    func serveEvents(_ route: EventRoute, for request: HTTPRequest, on socket: Socket, handle: Handle) async throws -> Outcome {
        let logger = configuration.logger
        var response = HTTPResponse(status: .ok)
        for (name, value) in route.hub.responseHeaders { response.headers.add(name, value) }
        let head = responseBytes(response, to: request, minorVersion: request.head.minorVersion, isHead: true, keepAlive: false, streamed: true)
        guard !head.isEmpty else {
            // The hub's extra headers would inject a line: `send` answers 500 and logs it.
            try await send(response, to: request, on: socket, handle: handle, keepAlive: false)
            return .close
        }
        let connection: any EventStreamConnection
        do {
            connection = try await route.open(request, SourceResolution(server: self, handle: handle))
        } catch let error as HTTPError {
            logger(.info, "\(error.status.code) \(request.method) \(request.path): \(error.message)")
            configuration.observer?.requestRefused(status: error.status, reason: error.message, request: request)
            try await send(.generated(error.status, error.message + "\n"), to: request, on: socket, handle: handle, keepAlive: false)
            return .close
        } catch let error as EventServerError {
            var refusal = HTTPResponse.generated(.conflict, "\(error)\n")
            if error.code != .duplicateSource {
                // Shutting down: come back no sooner than the streams it ended were told.
                refusal.status = .serviceUnavailable
                let seconds = Int((await route.hub.refusalDelay() / .seconds(1)).rounded(.up))
                refusal.headers.add("Retry-After", String(max(1, seconds)))
            }
            logger(.info, "\(refusal.status.code) \(request.path): \(error)")
            configuration.observer?.requestRefused(status: refusal.status, reason: "\(error)", request: request)
            try await send(refusal, to: request, on: socket, handle: handle, keepAlive: false)
            return .close
        } catch {
            logger(.error, "500 \(request.path): source resolver failed: \(error)")
            configuration.observer?.requestRefused(status: .internalServerError, reason: "source resolver failed: \(error)", request: request)
            try await send(.generated(.internalServerError, "internal error\n"), to: request, on: socket, handle: handle, keepAlive: false)
            return .close
        }

        socket.setNoDelay()
        let sink = SocketSink(socket: socket, poller: poller, head: head, writeDeadline: writeDeadline(for: handle))
        if connection.mailbox.queuedCount == 0 {
            // Nothing to send with it yet: the client must see the head now, not at the first event.
            do {
                try await sink.flushHead()
            } catch {
                configuration.observer?.writeFailed(error: error, request: request)
                throw error
            }
        }
        let mailbox = connection.mailbox
        // A write stuck on a client that stopped reading must not outlive the stream. This runs
        // before the reader sees the end, so while the descriptor is still this socket's.
        mailbox.onFinish { socket.shutdown() }
        // The client closing (read of 0) or resetting (error) ends the stream at once. The
        // watch is a poller callback, not a task: an idle stream holds no second task.
        // A client has nothing to say on an event stream: what it sends is discarded, up to
        // `streamInputLimit` bytes; one that keeps sending is cut off, so that it cannot keep
        // the poller's thread busy reading.
        let discarded = Atomic<Int>(0)
        let watching = poller.watchReadable(socket.fd) {
            let result = try? withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 1) { try socket.read(into: $0) }
            switch result {
            case .bytes(let count)?:
                if discarded.add(count, ordering: .relaxed).newValue <= Self.streamInputLimit { return true }
                mailbox.finish(.clientGone, drain: false)
                return false
            case .wouldBlock?:
                return true
            case .endOfFile?, nil:
                mailbox.finish(.clientGone, drain: false)
                return false
            }
        }
        if !watching { mailbox.finish(.clientGone, drain: false) }
        let handoff = StreamHandoff(connection: connection, sink: sink, socket: socket, handle: handle)
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
        release(handoff.socket, handle: handoff.handle)
    }

    /// The most bytes an event stream's client may send after its request before the stream
    /// is closed.
    static let streamInputLimit = 64 * 1024
}
