public import EventStreamKit

/// One HTTP request as handlers see it: the head and the whole body.
public struct HTTPRequest: Sendable {
    /// The request line and header fields.
    public let head: HTTPRequestHead
    /// The body (`Content-Length` bytes; empty without one).
    public let body: [UInt8]
    /// The address of the connection's other end, an IPv4 or IPv6 literal (an IPv4 client
    /// of an IPv6 listener as IPv4): behind a reverse proxy, the proxy's. `nil` if the socket
    /// could not tell.
    public let peerAddress: String?
    /// The address of the client that made the request, an IPv4 or IPv6 literal, or `nil`
    /// if unknown: ``peerAddress``, unless the peer is one of
    /// ``HTTPServer/Configuration/trustedProxies``. Then it is read from `X-Forwarded-For`,
    /// from the right (each proxy appends the address it received the request from): the
    /// right-most address that is not itself a trusted proxy.
    ///
    /// A client can write anything into `X-Forwarded-For`; only the entries that trusted
    /// proxies appended are believed, so a request that did not come through one gets its
    /// ``peerAddress`` whatever the header says. An entry that is not an IP literal (a port,
    /// `unknown`, a host name) ends the walk at the last trusted address reached, since
    /// nothing left of it can be vouched for. Empty list elements are skipped.
    ///
    /// ```swift
    /// var configuration = HTTPServer.Configuration(host: "127.0.0.1", port: 8080)
    /// configuration.trustedProxies = ["127.0.0.1"]   // nginx on the same machine
    /// // A request from nginx with `X-Forwarded-For: 10.0.0.1, 198.51.100.7`:
    /// // clientAddress == "198.51.100.7" (10.0.0.1 was written by the client, and is not believed)
    /// ```
    public let clientAddress: String?

    init(head: HTTPRequestHead, body: [UInt8], peerAddress: String? = nil, clientAddress: String? = nil) {
        self.head = head
        self.body = body
        self.peerAddress = peerAddress
        self.clientAddress = clientAddress ?? peerAddress
    }

    /// The method, e.g. `GET`.
    public var method: String { head.method }
    /// The path, percent-decoded.
    public var path: String { head.path }
    /// The query parameters, percent-decoded.
    public var query: [String: String] { head.query }
    /// The header fields.
    public var headers: HeaderFields { head.headers }
    /// The host the request is for, `host[:port]` as sent: an absolute-form target's authority
    /// (`POST http://host:port/path`, which RFC 9112 §3.2.2 says replaces `Host`), else the
    /// `Host` field. This is what ``HTTPServer/Configuration/allowedHosts`` checked: compare
    /// an `Origin` with it, not with `headers["Host"]`, which an absolute-form request may
    /// set to anything.
    public var authority: String? { head.authority }

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
    public var headers: HeaderFields
    /// The body.
    public var body: [UInt8]

    /// A response with a body of bytes.
    public init(status: HTTPStatus = .ok, headers: HeaderFields = [:], body: [UInt8] = []) {
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
