import EventStreamKit
import Vapor

extension EventServer {
    /// Opens a stream for `source` and answers the request with it: the hub's headers, then
    /// `connection.body` as a streaming body. Vapor does not tell a streaming body that its
    /// client left, it only fails the next write: a zero-byte write every 250 ms (nothing
    /// reaches the wire) notices, and cancelling the loop ends the connection.
    func response(for request: Request, source: SourceID) async throws -> Response {
        let connection = try await connect(source: source, lastEventID: request.headers.first(name: "Last-Event-ID"))
        let headers = HTTPHeaders(responseHeaders.map { ($0.name, $0.value) })
        return Response(status: .ok, headers: headers, body: .init(asyncStream: { writer in
            try? await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { for await chunk in connection.body { try await writer.writeBuffer(ByteBuffer(bytes: chunk)) } }
                group.addTask { while true { try await Task.sleep(for: .milliseconds(250)); try await writer.writeBuffer(ByteBuffer()) } }
                _ = try await group.next()
                group.cancelAll()
            }
            try? await writer.write(.end)
        }))
    }
}
