public import Foundation

/// A Server-Sent Events client: an `AsyncSequence` of the events one stream delivers,
/// reconnecting as the WHATWG `EventSource` does.
///
/// ```swift
/// let source = try EventSource(url: "http://127.0.0.1:8080/events", headers: ["Authorization": "Bearer abc"])
/// for try await event in source {
///     print(event.type, event.data, event.lastEventID)
/// }
/// ```
///
/// What it does, per the spec:
/// - sends `Accept: text/event-stream`, `Cache-Control: no-cache`, your headers, and
///   `Last-Event-ID` whenever the last event ID is not empty (the `lastEventID` you give
///   seeds it, so a restarted process resumes where it left off);
/// - on end of stream or a network error (refused, reset, DNS, a timeout, a malformed
///   response), waits the reconnection time (the server's `retry`, else
///   ``Configuration/retry``, 3 s; never under ``Configuration/minimumRetry``), grown and
///   jittered by ``Configuration/backoff`` if set, then sends the original request again;
/// - a 204 ends the sequence normally: the server wants no more reconnections;
/// - any other status but 200 (after up to ``Configuration/maxRedirects`` redirects), or a
///   200 whose `Content-Type` is not `text/event-stream`, throws ``EventSourceError``
///   without reconnecting;
/// - an incomplete last event at end of stream is discarded, never dispatched.
///
/// ``Configuration/errorPolicy`` changes what reconnects; ``Request`` sends any method and
/// body (for APIs that answer a `POST` with a stream); ``stateChanges`` reports each attempt,
/// opening, retry and the end.
///
/// Termination: cancelling the consuming task closes the connection at once and throws
/// `CancellationError`; leaving the loop, or calling ``close()`` from anywhere, closes it
/// too and ends the sequence, in any phase (resolving, connecting, reading or waiting).
/// A source is one stream: iterate it once.
///
/// Limits: a line over ``EventStreamParser/Limits/maxLineLength`` or an event over
/// ``EventStreamParser/Limits/maxEventSize`` throws that ``WireError``, so a hostile server
/// cannot exhaust memory; no number a server sends can overflow a delay.
public final class EventSource: AsyncSequence, Sendable {
    public typealias Element = MessageEvent
    public typealias Failure = any Error

    /// The request's URL; reconnections go back to it, not to a redirect's target.
    public var url: URL { request.url }
    /// The request this source sends (again, on each reconnection).
    public let request: Request
    /// The settings this source uses.
    public let configuration: Configuration
    let storage: EventSourceStorage
    private let machine: EventSourceStateMachine

    /// Creates a source for any request; nothing connects until the first `next()`.
    ///
    /// - Parameters:
    ///   - request: The URL, method, headers and body to send.
    ///   - lastEventID: The ID to resume after, sent as `Last-Event-ID` on the first request.
    ///   - configuration: Reconnection, timeouts, limits and transport settings.
    /// - Throws: ``EventSourceError`` for an unsupported URL (not `http`/`https`, no host, a
    ///   port outside 1...65535), a reserved or malformed header or method, or a last event
    ///   ID with CR, LF or NUL.
    public init(request: Request, lastEventID: String = "", configuration: Configuration = Configuration()) throws(EventSourceError) {
        machine = try EventSourceStateMachine(request: request, lastEventID: lastEventID, configuration: configuration)
        self.request = request
        self.configuration = configuration
        storage = EventSourceStorage(lastEventID: lastEventID)
    }

    /// Creates a source that sends `GET` to `url`.
    ///
    /// - Parameters:
    ///   - url: An absolute `http` or `https` URL.
    ///   - headers: Extra request headers, e.g. `Authorization`. `Accept`, `Cache-Control`,
    ///     `Last-Event-ID`, `Accept-Encoding` and the framing headers are the source's own.
    ///   - lastEventID: The ID to resume after, sent as `Last-Event-ID` on the first request.
    ///   - configuration: Reconnection, timeouts, limits and transport settings.
    /// - Throws: ``EventSourceError``, as ``init(request:lastEventID:configuration:)``.
    public convenience init(url: URL, headers: HeaderFields = [:], lastEventID: String = "", configuration: Configuration = Configuration()) throws(EventSourceError) {
        try self.init(request: Request(url: url, headers: headers), lastEventID: lastEventID, configuration: configuration)
    }

    /// Creates a source from a URL string.
    ///
    /// - Throws: ``EventSourceError`` if `url` does not parse, or as ``init(url:headers:lastEventID:configuration:)``.
    public convenience init(url: String, headers: HeaderFields = [:], lastEventID: String = "", configuration: Configuration = Configuration()) throws(EventSourceError) {
        guard let parsed = URL(string: url) else { throw .invalidURL(url, "not a URL") }
        try self.init(url: parsed, headers: headers, lastEventID: lastEventID, configuration: configuration)
    }

    /// Connecting (or waiting to reconnect), open, or closed.
    public var readyState: ReadyState { storage.readyState }

    /// The last event ID string: what the next reconnection sends as `Last-Event-ID`.
    public var lastEventID: String { storage.lastEventID }

    /// Closes the stream from any task: a pending attempt to connect, read or reconnection
    /// wait ends at once, and the sequence ends (returns `nil`). Idempotent.
    public func close() {
        storage.close()
    }

    /// Ends the current attempt, stream or reconnection wait and connects again at once,
    /// e.g. when an app returns to the foreground, where its connection may have died
    /// unnoticed. Does not count as a failed attempt. Does nothing once the source is closed.
    public func reconnectNow() {
        storage.reconnectNow()
    }

    /// The source's state changes, from the moment this is called: each attempt, each
    /// opening, each retry with its delay and failure, and the end. Every call returns a
    /// sequence of its own, which ends when the source closes; a subscriber that falls more
    /// than 64 changes behind loses the oldest.
    public var stateChanges: AsyncStream<StateChange> { storage.stateChanges() }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(core: storage.claimIteration() ? EventSourceIteration(machine: machine, storage: storage) : nil)
    }

    /// Reads the stream; see ``EventSource`` for its behaviour.
    public struct AsyncIterator: AsyncIteratorProtocol {
        private let core: EventSourceIteration?
        private var reportedReuse = false

        init(core: EventSourceIteration?) {
            self.core = core
        }

        /// The next event, or `nil` when the stream ended for good (204, ``close()``).
        ///
        /// - Throws: ``EventSourceError`` or ``WireError`` for a fatal failure (once; then
        ///   the sequence ends), `CancellationError` when the task is cancelled.
        public mutating func next(isolation actor: isolated (any Actor)? = #isolation) async throws -> MessageEvent? {
            guard let core else {
                guard !reportedReuse else { return nil }
                reportedReuse = true
                throw EventSourceError.alreadyIterated
            }
            return try await core.next()
        }

        public mutating func next() async throws -> MessageEvent? {
            try await next(isolation: nil)
        }
    }
}
