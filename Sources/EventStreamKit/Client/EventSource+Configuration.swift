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
    /// ``exponential(multiplier:maximum:jitter:)`` the wait grows with each attempt in a
    /// row that receives nothing, up to `maximum` (or the server's `retry`, if larger), and
    /// a random share of it (`jitter`) is taken off, so that clients dropped together do
    /// not come back together. The count resets as soon as a connection receives bytes.
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
            Backoff(multiplier: Swift.max(1, multiplier), maximum: maximum, jitter: Swift.min(1, Swift.max(0, jitter)))
        }
    }

    /// Which HTTP implementation opens the streams.
    public enum Transport: Hashable, Sendable {
        /// `http://` on the built-in client (the same non-blocking sockets as the server,
        /// cheap enough for thousands of streams in one process); `https://` on
        /// Foundation's `URLSession`.
        case automatic
        /// `URLSession` for every URL.
        case foundation
    }

    /// Settings of an ``EventSource``; every one has a default.
    public struct Configuration: Sendable {
        /// The reconnection time until the server sends `retry`. Default: 3 s, as browsers.
        public var retry: Duration = .seconds(3)
        /// Growth and jitter of the wait between attempts. Default: ``Backoff/none`` (the spec).
        public var backoff: Backoff = .none
        /// The most redirects followed for one connection. Default: 10.
        public var maxRedirects = 10
        /// The most reconnection attempts in a row that receive nothing; `nil` (the
        /// default) retries forever, as a browser does.
        public var maxReconnectAttempts: Int?
        /// Bounds on lines and events, so that a hostile server cannot exhaust memory.
        public var limits = EventStreamParser.Limits()
        /// Which HTTP implementation to use. Default: ``Transport/automatic``.
        public var transport: Transport = .automatic

        /// Creates the default configuration.
        public init() {}
    }
}
