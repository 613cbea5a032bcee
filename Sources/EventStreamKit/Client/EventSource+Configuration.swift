public import Foundation

extension EventSource {
    /// The states of the WHATWG `EventSource.readyState`.
    public enum ReadyState: Int, Hashable, Sendable {
        /// Connecting, or waiting to reconnect.
        case connecting = 0
        /// The response arrived (200, `text/event-stream`) and events are flowing.
        case open = 1
        /// Ended for good: 204, a fatal error, ``EventSource/close()``, cancellation or the
        /// consumer leaving.
        case closed = 2
    }

    /// How long to wait before each reconnection, beyond the spec's fixed delay.
    ///
    /// The spec waits the reconnection time (the server's latest `retry`, else
    /// ``Configuration/retry``) before every attempt; that is ``none``, the default. With
    /// ``exponential(multiplier:maximum:jitter:)`` the wait grows with each failed attempt
    /// in a row, up to `maximum` (or the server's `retry`, if larger), and a random share of
    /// it (`jitter`) is taken off, so that clients dropped together do not come back
    /// together. An attempt counts as failed unless its connection stayed open for
    /// ``Configuration/backoffResetThreshold``: a server that accepts and drops at once
    /// cannot keep the wait short.
    ///
    /// Either way the wait is never shorter than ``Configuration/minimumRetry``.
    public struct Backoff: Hashable, Sendable {
        /// The factor applied per failed attempt in a row; 1 means no growth.
        public var multiplier: Double
        /// The longest wait growth may reach.
        public var maximum: Duration
        /// The largest share (0...1) of each wait removed at random.
        public var jitter: Double

        /// The spec's behaviour: wait exactly the reconnection time.
        public static let none = Backoff(multiplier: 1, maximum: .zero, jitter: 0)

        /// Exponential backoff with jitter.
        ///
        /// - Parameters:
        ///   - multiplier: The growth per failed attempt in a row (at least 1). Default 2.
        ///   - maximum: The cap on the wait. Default 60 s.
        ///   - jitter: The share of each wait removed at random, 0...1. Default 0.5.
        public static func exponential(multiplier: Double = 2, maximum: Duration = .seconds(60), jitter: Double = 0.5) -> Backoff {
            let multiplier = multiplier.isFinite ? Swift.max(1, multiplier) : 1
            let jitter = jitter.isFinite ? Swift.min(1, Swift.max(0, jitter)) : 0
            return Backoff(multiplier: multiplier, maximum: maximum, jitter: jitter)
        }
    }

    /// Which HTTP implementation opens the streams.
    public enum Transport: Hashable, Sendable {
        /// The built-in client (the same non-blocking sockets as the server, cheap enough
        /// for thousands of streams in one process) for `http://`; for `https://` too on
        /// Linux, with TLS from the system's OpenSSL (`libssl.so.3` or `.1.1`, loaded at the
        /// first `https` stream; certificates verified against the system's trust store,
        /// which honours `SSL_CERT_FILE`). On Apple platforms `https://` goes through
        /// `URLSession`.
        case automatic
        #if canImport(Darwin)
        /// `URLSession` for every URL. Apple platforms only: on Linux, FoundationNetworking
        /// (Swift 6.3) stops the process on a chunked response with trailer fields and
        /// cannot bound what a fast server makes it buffer, so the built-in client serves
        /// every URL there.
        case foundation
        #endif
    }

    /// Settings of an ``EventSource``; every one has a default.
    ///
    /// The defaults follow the browser where it has a rule (3 s reconnection time, no
    /// backoff, unlimited attempts, `Authorization` not sent to another origin) and add what
    /// a browser leaves to its network stack: timeouts, a floor under the reconnection time,
    /// and credentials that never follow a redirect to another origin or to plain HTTP.
    ///
    /// To behave as LaunchDarkly's SDKs do:
    /// ```swift
    /// var configuration = EventSource.Configuration()
    /// configuration.retry = .seconds(1)
    /// configuration.backoff = .exponential(multiplier: 2, maximum: .seconds(30), jitter: 0.5)
    /// configuration.backoffResetThreshold = .seconds(60)
    /// configuration.readTimeout = .seconds(300)
    /// ```
    public struct Configuration: Sendable {
        /// The reconnection time until the server sends `retry`. Default: 3 s, as browsers.
        public var retry: Duration = .seconds(3)
        /// The shortest wait before a reconnection, whatever the server's `retry` says (a
        /// `retry: 0` would otherwise reconnect as fast as the server closes). Default:
        /// 0.5 s, about what browsers use.
        public var minimumRetry: Duration = .milliseconds(500)
        /// The longest reconnection time a server's `retry` can set; larger values saturate
        /// to it. Default: 1 hour.
        public var maximumRetry: Duration = .seconds(3600)
        /// Growth and jitter of the wait between attempts. Default: ``Backoff/none`` (the spec).
        public var backoff: Backoff = .none
        /// How long a connection must stay open for the next failure to count as the first in
        /// a row again (for ``backoff`` and ``maxReconnectAttempts``). Default: 60 s, as
        /// LaunchDarkly. A server that closes every stream after a fixed time shorter than
        /// this (some proxies do, at 30 or 55 s) makes the backoff grow: lower it for those.
        public var backoffResetThreshold: Duration = .seconds(60)
        /// The most redirects followed for one connection. Default: 10.
        public var maxRedirects = 10
        /// How many times in a row the source reconnects after an attempt that delivered no
        /// event before it gives up with ``EventSourceError/Code/reconnectLimitReached``:
        /// with 2, the third such attempt in a row ends it. An attempt that delivered events
        /// starts the count again (a server may close streams routinely), though not the
        /// backoff's (see ``backoffResetThreshold``). `nil` (the default) retries forever, as
        /// a browser does.
        public var maxReconnectAttempts: Int?
        /// The longest wait from starting an attempt (the header provider, DNS, TCP, TLS, the
        /// request, and every redirect it follows) to the final response head; then the
        /// attempt fails with a timeout and the source reconnects. `nil`: no limit. Default: 30 s.
        public var connectTimeout: Duration? = .seconds(30)
        /// The longest an open stream may go without a single byte (an event, a comment, a
        /// heartbeat) before the source drops it and reconnects, as after a network error: a
        /// half-open connection after a network change is otherwise never noticed. `nil`: no
        /// limit. Default: 300 s, as LaunchDarkly. Against a server that sends heartbeats,
        /// set it to about three heartbeat intervals (`EventServer`'s default heartbeat is
        /// 15 s: 45 s).
        public var readTimeout: Duration? = .seconds(300)
        /// Header names, besides `Authorization`, `Cookie` and `Proxy-Authorization`, whose
        /// values are credentials: none of them is sent after a redirect to another origin.
        /// Case does not matter. Default: none.
        public var sensitiveHeaders: Set<String> = []
        /// Whether a redirect may lead from `https` to plain `http`. Default: `false`: such a
        /// redirect fails with ``EventSourceError/Code/insecureRedirect``.
        public var allowsInsecureRedirects = false
        /// Called before every attempt (the first and each reconnection): the headers it
        /// returns are added to the request's, so that a short-lived token can be refreshed
        /// before each reconnection. An error it throws counts as a network error of that
        /// attempt. Default: none.
        public var headerProvider: (@Sendable () async throws -> HeaderFields)?
        /// Decides, for each failure, whether to reconnect and when. Default:
        /// ``ErrorPolicy/standard``, the spec's behaviour.
        public var errorPolicy: ErrorPolicy = .standard
        /// Bounds on lines and events, so that a hostile server cannot exhaust memory.
        public var limits = EventStreamParser.Limits()
        /// Which HTTP implementation to use. Default: ``Transport/automatic``.
        public var transport: Transport = .automatic

        /// Creates the default configuration.
        public init() {}
    }

    /// A request for an event stream: `GET` by default; any method, headers and body for
    /// APIs that answer a `POST` with `text/event-stream` (LLM completions, MCP).
    ///
    /// ```swift
    /// var request = EventSource.Request(url: URL(string: "https://api.example.com/v1/chat/completions")!)
    /// request.method = "POST"
    /// request.headers = ["Content-Type": "application/json", "Authorization": "Bearer key"]
    /// request.body = Array(#"{"stream":true}"#.utf8)
    /// request.isRetryable = false  // a completion must not be requested twice
    /// let source = try EventSource(request: request)
    /// ```
    public struct Request: Sendable {
        /// An absolute `http` or `https` URL; reconnections go back to it.
        public var url: URL
        /// The method, e.g. `GET` or `POST`. Default: `GET`.
        public var method: String
        /// Extra request headers. `Accept`, `Cache-Control`, `Last-Event-ID`,
        /// `Accept-Encoding` and the framing headers are the source's own.
        public var headers: HeaderFields
        /// The request body, sent with its `Content-Length`; `nil` for none.
        public var body: [UInt8]?
        /// Whether the request may be sent again when the connection ends or fails (with
        /// `Last-Event-ID`). Default: `true`. When `false`, the first connection is the only
        /// one: its end ends the sequence, its failure is thrown.
        public var isRetryable: Bool

        /// Creates a request.
        public init(url: URL, method: String = "GET", headers: HeaderFields = [:], body: [UInt8]? = nil, isRetryable: Bool = true) {
            self.url = url
            self.method = method
            self.headers = headers
            self.body = body
            self.isRetryable = isRetryable
        }
    }
}
