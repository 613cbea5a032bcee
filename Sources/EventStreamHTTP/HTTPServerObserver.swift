import EventStreamKit

/// Receives what goes wrong in an ``HTTPServer`` as it happens, for your own logging and
/// metrics: requests it refused and responses it could not write.
///
/// Set one as ``HTTPServer/Configuration/observer``. Every method has an empty default
/// implementation. With no observer set the server does no work for it beyond one `nil`
/// check per refusal or failed write; event streams report to their hub's
/// ``/EventStreamKit/EventServerObserver`` (Docs/Decisions/0010-observer-hooks.md).
///
/// ```swift
/// final class Refusals: HTTPServerObserver {
///     let byStatus = Mutex<[Int: Int]>([:])
///
///     func requestRefused(status: HTTPStatus, reason: String, request: HTTPRequest?) {
///         byStatus.withLock { $0[status.code, default: 0] += 1 }
///     }
/// }
///
/// var configuration = HTTPServer.Configuration(host: "127.0.0.1", port: 0)
/// configuration.observer = Refusals()
/// ```
///
/// - Warning: The methods are called synchronously on the task serving the connection
///   (for connections refused at accept, the accept loop's): do only quick, non-blocking
///   work, such as bumping an `Atomic` or a counter under a `Mutex`. A slow observer delays
///   that connection, and at accept every connection after it.
public protocol HTTPServerObserver: Sendable {
    /// The server answered with an error status instead of a handler's response: a malformed
    /// or oversized request (400, 413, 431, 501), an unknown host (421), an unknown path
    /// (404) or method (405), an `HTTPError` a handler or an events route's source resolver
    /// threw (401, 429…), a hub refusing a stream (409, 503), too many connections (503),
    /// or an error a handler threw (500). The server logs each too.
    ///
    /// - Parameters:
    ///   - status: The status it answered.
    ///   - reason: Why, as logged (the error's message); it may echo the request.
    ///   - request: The request, if one was read: `nil` for a connection refused at accept
    ///     or a request that could not be parsed.
    func requestRefused(status: HTTPStatus, reason: String, request: HTTPRequest?)

    /// Writing a response failed: the client went away, reset the connection, or did not
    /// read for ``HTTPServer/Configuration/writeTimeout``. The connection is closed. Writes
    /// of event streams report to their hub
    /// (``/EventStreamKit/EventServerObserver/writeFailed(source:connection:error:)``).
    ///
    /// - Parameters:
    ///   - error: What the socket write threw.
    ///   - request: The request being answered, if one was read.
    func writeFailed(error: any Error, request: HTTPRequest?)
}

/// Empty defaults: an observer implements only what it needs.
extension HTTPServerObserver {
    /// Does nothing.
    public func requestRefused(status: HTTPStatus, reason: String, request: HTTPRequest?) {}
    /// Does nothing.
    public func writeFailed(error: any Error, request: HTTPRequest?) {}
}
