import EventStreamKit
import Vapor

extension EventServer {
    /// Opens a stream for `source` and answers the request with it: the hub's headers, then
    /// `connection.body` as a streaming body. Vapor does not tell a streaming body that its
    /// client left, it only fails the next write: `probe` writes nothing every 500 ms to
    /// notice, and tells the connection. A refused stream is answered as EventStreamKit's own
    /// server answers it (``refusal(_:)``).
    func response(for request: Request, source: SourceID, probe: DisconnectProbe) async throws -> Response {
        let connection: EventConnection<SourceID>
        do {
            connection = try await connect(source: source, lastEventID: request.headers.first(name: "Last-Event-ID"))
        } catch let error as EventServerError {
            throw refusal(error)
        }
        let headers = HTTPHeaders(responseHeaders.map { ($0.name, $0.value) })
        return Response(status: .ok, headers: headers, body: .init(asyncStream: { writer in
            let ticket = probe.watch(writer) { connection.clientLeft() }
            do {
                try await writer.writeBuffer(ByteBuffer())  // the head goes out now, not with the first event
                for await chunk in connection.body { try await writer.writeBuffer(ByteBuffer(bytes: chunk)) }
            } catch {}  // the client left: leaving the loop drops the body's iterator, which ends the connection
            probe.unwatch(ticket)
            try? await writer.write(.end)
        }))
    }

    /// 409 when the duplicate-source policy refuses a second stream; otherwise the hub is
    /// shutting down: 503, with `Retry-After` what the hub tells the streams it ends (`retry`,
    /// or 3 s, plus up to `reconnectSpread`), in whole seconds.
    func refusal(_ error: EventServerError) -> Abort {
        if error.code == .duplicateSource { return Abort(.conflict, reason: error.description) }
        let delay = (retry ?? .seconds(3)) + configuration.reconnectSpread * Double.random(in: 0..<1)
        let seconds = Int((delay / .seconds(1)).rounded(.up))
        return Abort(.serviceUnavailable, headers: ["Retry-After": "\(max(1, seconds))"], reason: error.description)
    }
}
