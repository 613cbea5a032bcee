/// One HTTP request as handlers see it: the head and the whole body.
public struct HTTPRequest: Sendable {
    /// The request line and header fields.
    public let head: HTTPRequestHead
    /// The body (`Content-Length` bytes; empty without one).
    public let body: [UInt8]

    /// The method, e.g. `GET`.
    public var method: String { head.method }
    /// The path, percent-decoded.
    public var path: String { head.path }
    /// The query parameters, percent-decoded.
    public var query: [String: String] { head.query }
    /// The header fields.
    public var headers: HTTPHeaders { head.headers }

    /// The client's last event ID: the `Last-Event-ID` header, or for polyfills that cannot
    /// set headers, the `lastEventId` query parameter.
    public var lastEventID: String? {
        headers["Last-Event-ID"] ?? query["lastEventId"]
    }
}

/// A complete response from a handler.
public struct HTTPResponse: Sendable {
    /// The status.
    public var status: HTTPStatus
    /// Header fields; `Content-Length` and `Connection` are added by the server.
    public var headers: HTTPHeaders
    /// The body.
    public var body: [UInt8]

    /// A response with a body of bytes.
    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response with a text body and a content type (default `text/plain; charset=utf-8`).
    public init(status: HTTPStatus = .ok, text: String, contentType: String = "text/plain; charset=utf-8") {
        self.init(status: status, headers: ["Content-Type": contentType], body: Array(text.utf8))
    }
}

/// Throw this from a handler or a source resolver to answer with a status: a resolver that
/// cannot authenticate the request throws `HTTPError(.unauthorized)`, and no stream opens.
public struct HTTPError: Error, CustomStringConvertible, Sendable {
    /// The status to answer with.
    public let status: HTTPStatus
    /// A message for the response body and the log.
    public let message: String

    /// Creates an error that answers with `status`.
    public init(_ status: HTTPStatus, _ message: String? = nil) {
        self.status = status
        self.message = message ?? status.reason
    }

    public var description: String { "\(status.code) \(message)" }
}
