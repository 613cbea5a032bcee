/// Why an ``EventSource`` stopped for good, or could not be created.
///
/// By default (``EventSource/ErrorPolicy/standard``) only failures the WHATWG spec calls
/// fatal end a stream: a status other than 200, 204 or a redirect; a `Content-Type` other
/// than `text/event-stream`; a redirect that cannot be followed. A refused or dropped
/// connection, a timeout or a malformed response is not fatal: the source reconnects,
/// unless ``EventSource/Configuration/maxReconnectAttempts`` runs out, which ends it with
/// ``Code/reconnectLimitReached`` and the last error in ``underlying``. A policy of your own
/// (or a request that is not retryable) can stop on those too: then they are thrown as
/// ``Code/connectionFailed`` and ``Code/timedOut``.
///
/// ```swift
/// do {
///     for try await event in try EventSource(url: "http://127.0.0.1:8080/events") { print(event.data) }
/// } catch let error as EventSourceError where error.code == .badStatus {
///     print("refused with", error.status ?? 0)
/// }
/// ```
public struct EventSourceError: Error, CustomStringConvertible, Sendable {
    /// What kind of error this is. New codes may be added in later versions.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case invalidURL, invalidHeader, badStatus, wrongContentType, tooManyRedirects
            case invalidResponse, reconnectLimitReached, alreadyIterated
            case invalidRequest, insecureRedirect, unsupportedContentEncoding, connectionFailed, timedOut
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The URL is not an absolute `http` or `https` URL with a host.
        public static let invalidURL = Code(.invalidURL)
        /// A request header, or the initial last event ID, is malformed or reserved.
        public static let invalidHeader = Code(.invalidHeader)
        /// The server answered with a status other than 200, 204 or a redirect.
        public static let badStatus = Code(.badStatus)
        /// The server answered 200 with a `Content-Type` other than `text/event-stream`.
        public static let wrongContentType = Code(.wrongContentType)
        /// More redirects in a row than ``EventSource/Configuration/maxRedirects``.
        public static let tooManyRedirects = Code(.tooManyRedirects)
        /// The server's response was not valid HTTP/1.x. Not fatal on its own: the source
        /// reconnects, and reports it only as the ``EventSourceError/underlying`` error of
        /// ``reconnectLimitReached``.
        public static let invalidResponse = Code(.invalidResponse)
        /// Reconnecting failed ``EventSource/Configuration/maxReconnectAttempts`` times in a row.
        public static let reconnectLimitReached = Code(.reconnectLimitReached)
        /// The source was iterated a second time; each source is one stream, read once.
        public static let alreadyIterated = Code(.alreadyIterated)
        /// The request's method or body cannot be sent.
        public static let invalidRequest = Code(.invalidRequest)
        /// A redirect from `https` to plain `http`, refused unless
        /// ``EventSource/Configuration/allowsInsecureRedirects`` is set.
        public static let insecureRedirect = Code(.insecureRedirect)
        /// The response has a `Content-Encoding` the client does not decode (it asks for
        /// `identity`); the stream would be unreadable, so the source stops.
        public static let unsupportedContentEncoding = Code(.unsupportedContentEncoding)
        /// The connection failed and the error policy (or a request that is not retryable)
        /// said not to reconnect; the network error is in ``EventSourceError/underlying``.
        public static let connectionFailed = Code(.connectionFailed)
        /// A connect or read timeout, and the error policy (or a request that is not
        /// retryable) said not to reconnect.
        public static let timedOut = Code(.timedOut)

        public var description: String { String(describing: base) }
    }

    /// What kind of error this is.
    public let code: Code
    /// The HTTP status, for ``Code/badStatus`` (and the response that had the wrong type).
    public let status: Int?
    /// The last connection error, for ``Code/reconnectLimitReached``.
    public let underlying: (any Error)?
    private let message: String

    private init(_ code: Code, _ message: String, status: Int? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.status = status
        self.underlying = underlying
    }

    public var description: String { message }

    static func invalidURL(_ url: String, _ why: String) -> EventSourceError {
        EventSourceError(.invalidURL, "invalid event source URL \(url.debugDescription): \(why)")
    }

    static func invalidHeader(_ name: String, _ why: String) -> EventSourceError {
        EventSourceError(.invalidHeader, "invalid request header \(name.debugDescription): \(why)")
    }

    static func badStatus(_ status: Int, url: String) -> EventSourceError {
        EventSourceError(.badStatus, "\(url) answered \(status); an event stream needs 200 (or 204 to stop)", status: status)
    }

    static func wrongContentType(_ contentType: String?, url: String) -> EventSourceError {
        EventSourceError(
            .wrongContentType,
            "\(url) answered with Content-Type \((contentType ?? "none").debugDescription), not text/event-stream",
            status: 200
        )
    }

    static func tooManyRedirects(limit: Int, url: String) -> EventSourceError {
        EventSourceError(.tooManyRedirects, "more than \(limit) redirects in a row, the last to \(url)")
    }

    static func invalidResponse(_ why: String) -> EventSourceError {
        EventSourceError(.invalidResponse, "invalid HTTP response: \(why)")
    }

    /// - Parameters:
    ///   - lastError: The last attempt's error, if it was one.
    ///   - ending: How the last attempt ended: said when there is no error (the server ended
    ///     the stream), so that giving up always says why. (A string, not the failure itself,
    ///     so that this file builds alone in the fuzz targets.)
    static func reconnectLimitReached(attempts: Int, lastError: (any Error)?, ending: String) -> EventSourceError {
        let cause = lastError.map { "\($0)" } ?? ending
        return EventSourceError(.reconnectLimitReached, "gave up after \(attempts) failed attempt\(attempts == 1 ? "" : "s") in a row: \(cause)", underlying: lastError)
    }

    static func invalidRequest(_ why: String) -> EventSourceError {
        EventSourceError(.invalidRequest, "invalid event source request: \(why)")
    }

    static func insecureRedirect(from: String, to: String) -> EventSourceError {
        EventSourceError(.insecureRedirect, "\(from) redirected to plain http (\(to)); refused, as allowsInsecureRedirects is false")
    }

    static func unsupportedContentEncoding(_ coding: String, url: String) -> EventSourceError {
        EventSourceError(.unsupportedContentEncoding, "\(url) answered with Content-Encoding \(coding.debugDescription), which this client does not decode (it asked for identity)")
    }

    static func connectionFailed(_ error: any Error, url: String) -> EventSourceError {
        EventSourceError(.connectionFailed, "\(url): \(error)", underlying: error)
    }

    static func timedOut(_ what: String) -> EventSourceError {
        EventSourceError(.timedOut, what)
    }

    static var alreadyIterated: EventSourceError {
        EventSourceError(.alreadyIterated, "this EventSource is already being iterated; create another for a second stream")
    }
}
