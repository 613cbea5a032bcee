import EventStreamKit
import Hummingbird
import NIOCore

extension EventServer {
    /// Opens a stream for `source` and answers the request with it: the hub's headers, then
    /// `connection.body` as a streaming body, iterated on the channel's event loop (see
    /// ``EventLoopExecutor``). A client that leaves ends the connection through a handler in
    /// the channel's pipeline (``ClientLeftHandler``). A refused stream is answered as
    /// EventStreamKit's own server answers it (``refusal(_:)``).
    func response(for request: Request, context: AppRequestContext, source: SourceID) async throws -> Response {
        // This request's task writes the body for as long as the stream lasts, and a task keeps
        // the allocation slabs its deepest call needed until it ends: the stream is opened in a
        // child task, whose slabs go when it returns (1.9 KiB per idle stream, and more).
        let lastEventID = request.headers[.init("Last-Event-ID")!], channel = context.channel
        return try await withThrowingTaskGroup(of: Response.self) { group in
            group.addTask { try await self.openStream(source: source, lastEventID: lastEventID, channel: channel) }
            return try await group.next()!
        }
    }

    private func openStream(source: SourceID, lastEventID: String?, channel: any Channel) async throws -> Response {
        let connection: EventConnection<SourceID>
        do {
            connection = try await connect(source: source, lastEventID: lastEventID)
        } catch let error as EventServerError {
            throw refusal(error)
        }
        var headers = HTTPFields()
        for (name, value) in responseHeaders { headers[.init(name)!] = value }
        let executor = EventLoopExecutor(channel.eventLoop)
        let leaving = ClientLeftHandler { connection.clientLeft() }
        // A channel that closed before the handler was in its pipeline (a reset right after the
        // request) has already sent its last event: the handler would wait for nothing.
        channel.pipeline.addHandler(leaving, position: .first).whenComplete { added in
            if case .failure = added { connection.clientLeft() } else if !channel.isActive { connection.clientLeft() }
        }
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            await withTaskExecutorPreference(executor) {
                for await chunk in connection.body {
                    guard (try? await writer.write(ByteBuffer(bytes: chunk))) != nil else { break }
                }
            }
            _ = try? await channel.pipeline.removeHandler(leaving).get()
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
