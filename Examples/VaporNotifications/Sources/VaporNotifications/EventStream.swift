import EventStreamKit
import Vapor

extension EventServer {
    /// Opens a stream for `source` and answers the request with it: the hub's headers, then
    /// `connection.body` as a streaming body. Vapor does not tell a streaming body that its
    /// client left, it only fails the next write: `probe` writes nothing every 250 ms to
    /// notice, and tells the connection.
    func response(for request: Request, source: SourceID, probe: DisconnectProbe) async throws -> Response {
        let connection = try await connect(source: source, lastEventID: request.headers.first(name: "Last-Event-ID"))
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
}
