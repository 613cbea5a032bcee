import EventStreamKit
import Hummingbird

extension EventServer {
    /// Opens a stream for `source` and answers the request with it: the hub's headers, then
    /// `connection.body` as a streaming body. A client that leaves closes the request's
    /// inbound side; Hummingbird then cancels the loop, which ends the connection. A refused
    /// stream is answered as EventStreamKit's own server answers it (``refusal(_:)``).
    func response(for request: Request, source: SourceID) async throws -> Response {
        let connection: EventConnection<SourceID>
        do {
            connection = try await connect(source: source, lastEventID: request.headers[.init("Last-Event-ID")!])
        } catch let error as EventServerError {
            throw refusal(error)
        }
        var headers = HTTPFields()
        for (name, value) in responseHeaders { headers[.init(name)!] = value }
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            _ = try? await request.body.consumeWithCancellationOnInboundClose { _ in
                for await chunk in connection.body { try await writer.write(ByteBuffer(bytes: chunk)) }
            }
            try? await writer.finish(nil)
        })
    }

    /// 409 when the duplicate-source policy refuses a second stream; otherwise the hub is
    /// shutting down: 503, with `Retry-After` what the hub tells the streams it ends (`retry`,
    /// or 3 s, plus up to `reconnectSpread`), in whole seconds.
    func refusal(_ error: EventServerError) -> Hummingbird.HTTPError {
        if error.code == .duplicateSource { return HTTPError(.conflict, message: error.description) }
        let delay = (retry ?? .seconds(3)) + configuration.reconnectSpread * Double.random(in: 0..<1)
        let seconds = Int((delay / .seconds(1)).rounded(.up))
        return HTTPError(.serviceUnavailable, headers: [.retryAfter: "\(max(1, seconds))"], message: error.description)
    }
}
