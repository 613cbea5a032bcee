import EventStreamKit
import Hummingbird

extension EventServer {
    /// Opens a stream for `source` and answers the request with it: the hub's headers, then
    /// `connection.body` as a streaming body. A client that leaves closes the request's
    /// inbound side; Hummingbird then cancels the loop, which ends the connection.
    func response(for request: Request, source: SourceID) async throws -> Response {
        let connection = try await connect(source: source, lastEventID: request.headers[.init("Last-Event-ID")!])
        var headers = HTTPFields()
        for (name, value) in responseHeaders { headers[.init(name)!] = value }
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            _ = try? await request.body.consumeWithCancellationOnInboundClose { _ in
                for await chunk in connection.body { try await writer.write(ByteBuffer(bytes: chunk)) }
            }
            try? await writer.finish(nil)
        })
    }
}
