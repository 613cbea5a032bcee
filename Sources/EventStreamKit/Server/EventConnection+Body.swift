import Synchronization

extension EventConnection {
    /// The stream as byte chunks, for a host server's streaming response body.
    ///
    /// Each chunk is everything that was queued when the reader woke, ready to write as it
    /// is. The sequence ends when the server closes the stream. Cancelling the task that
    /// iterates it, or dropping its iterator early (as a host does when a write to a vanished
    /// client fails), ends the connection and removes it from the hub.
    ///
    /// It can be iterated once: a second iterator ends at once.
    ///
    /// A host must end the iteration when its client leaves, or call
    /// ``EventConnection/clientLeft()`` (which also covers a body the host never runs because
    /// its channel closed first), or the connection stays in the hub until a write fails (the
    /// next event or heartbeat). Hummingbird 2, with a small channel handler that
    /// calls `clientLeft()` when the client's side closes, and the channel's event loop as
    /// the loop's executor (so that a wake-up and the write happen on one thread):
    ///
    /// ```swift
    /// let leaving = ClientLeftHandler { connection.clientLeft() }
    /// // A channel that closed before the handler was in its pipeline (a reset right after the
    /// // request) has already sent its last event: the handler would wait for nothing.
    /// channel.pipeline.addHandler(leaving, position: .first).whenComplete { added in
    ///     if case .failure = added { connection.clientLeft() } else if !channel.isActive { connection.clientLeft() }
    /// }
    /// return Response(status: .ok, headers: headers, body: ResponseBody { writer in
    ///     await withTaskExecutorPreference(executor) {
    ///         for await chunk in connection.body {
    ///             guard (try? await writer.write(ByteBuffer(bytes: chunk))) != nil else { break }
    ///         }
    ///     }
    ///     _ = try? await channel.pipeline.removeHandler(leaving).get()
    ///     try? await writer.finish(nil)
    /// })
    /// ```
    ///
    /// `ClientLeftHandler` and `executor` are the example's (`Examples/HummingbirdNotifications`);
    /// Vapor 4 and others: see `Docs/Embedding.md`.
    public nonisolated var body: Body { Body(connection: self) }

    /// The byte chunks of one event stream; see ``EventConnection/body``.
    public struct Body: AsyncSequence, Sendable {
        public typealias Element = [UInt8]
        public typealias Failure = Never

        let connection: EventConnection

        public func makeAsyncIterator() -> AsyncIterator {
            let claimed = (try? connection.claim()) != nil
            return AsyncIterator(reader: claimed ? Reader(connection: connection) : nil)
        }

        /// Reads the stream; see ``EventConnection/body``.
        public struct AsyncIterator: AsyncIteratorProtocol {
            let reader: Reader?

            public mutating func next() async -> [UInt8]? {
                await reader?.next()
            }

            public mutating func next(isolation actor: isolated (any Actor)?) async -> [UInt8]? {
                await reader?.next()
            }
        }
    }

    /// Owns the reading side; when the iterator is dropped before it saw the stream's end,
    /// its deinit ends the connection.
    final class Reader: Sendable {
        let connection: EventConnection
        /// Whether ``next()`` saw the end and told the hub.
        private let sawEnd = Atomic<Bool>(false)

        init(connection: EventConnection) { self.connection = connection }

        func next() async -> [UInt8]? {
            guard let batch = await connection.mailbox.next() else {
                sawEnd.store(true, ordering: .relaxed)
                await connection.server.connectionEnded(connection.id)
                return nil
            }
            let chunk = EventConnection.join(batch)
            connection.addWritten(chunk.count)
            return chunk
        }

        deinit {
            guard !sawEnd.load(ordering: .relaxed) else { return }
            // The host dropped the body before it saw the end: its write failed and it broke
            // out of its loop, possibly after the stream had ended meanwhile (the client left
            // while the chunk was being written). Either way the hub must forget the
            // connection, and deinit cannot await: this task makes one actor call and ends
            // (the call does nothing if the hub already forgot it).
            connection.mailbox.finish(.clientGone, drain: false)
            let server = connection.server, id = connection.id
            Task { await server.connectionEnded(id) }
        }
    }
}
