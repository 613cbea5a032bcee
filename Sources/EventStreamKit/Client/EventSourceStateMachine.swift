import Foundation

/// One HTTP request an ``EventSource`` sends: always `GET`.
struct EventSourceRequest: Sendable {
    var url: URL
    var headers: HTTPHeaders
}

/// The WHATWG `EventSource` processing model as a pure value: what to send, what a response
/// means, and how long to wait before reconnecting. No I/O and no clock, so every rule is
/// tested without a socket; ``EventSource`` performs the actions it returns.
struct EventSourceStateMachine {
    enum ResponseAction {
        /// 200 with `text/event-stream`: read the body.
        case open
        /// Fetch ``url`` (now the redirect's target) instead.
        case redirect
        /// 204: the server wants no more reconnections.
        case finish
        /// A fatal failure.
        case fail(EventSourceError)
    }

    enum ReconnectAction {
        case reconnect(after: Duration)
        case fail(EventSourceError)
    }

    /// Headers the source sets itself; a caller may not.
    static let reservedHeaders: Set<String> = ["accept", "cache-control", "last-event-id", "host", "connection", "content-length", "transfer-encoding"]

    let originalURL: URL
    let configuration: EventSource.Configuration
    private let userHeaders: HTTPHeaders

    private(set) var readyState = EventSource.ReadyState.connecting
    /// The URL the next request goes to: the original, or a redirect's target.
    private(set) var url: URL
    /// The server's latest valid `retry`, or the configured default.
    private(set) var reconnectionTime: Duration
    /// Sent as `Last-Event-ID` when not empty.
    private(set) var lastEventID: String
    /// Redirects followed for the current connection.
    private(set) var redirects = 0
    /// Connections in a row that ended before receiving any bytes.
    private(set) var failures = 0
    private var crossedOrigin = false

    init(url: URL, headers: HTTPHeaders, lastEventID: String, configuration: EventSource.Configuration) throws(EventSourceError) {
        try Self.validate(url)
        for (name, value) in headers {
            guard !name.isEmpty, name.utf8.allSatisfy(HTTPRequestHeadParser.isTokenByte) else { throw .invalidHeader(name, "not a valid header name") }
            guard !value.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) else { throw .invalidHeader(name, "the value contains CR, LF or NUL") }
            guard !Self.reservedHeaders.contains(name.lowercasedASCII) else { throw .invalidHeader(name, "EventSource sets this header itself") }
        }
        guard !lastEventID.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) else {
            throw .invalidHeader("Last-Event-ID", "the last event ID contains CR, LF or NUL")
        }
        self.originalURL = url
        self.url = url
        self.userHeaders = headers
        self.lastEventID = lastEventID
        self.configuration = configuration
        self.reconnectionTime = configuration.retry
    }

    /// The request to send now.
    var request: EventSourceRequest {
        var headers = HTTPHeaders([("Accept", "text/event-stream"), ("Cache-Control", "no-cache")])
        if !lastEventID.isEmpty { headers.add("Last-Event-ID", lastEventID) }
        for (name, value) in userHeaders where !(crossedOrigin && name.lowercasedASCII == "authorization") {
            headers.add(name, value)
        }
        return EventSourceRequest(url: url, headers: headers)
    }

    /// Decides what a response head means (WHATWG "announce the connection" / "fail the
    /// connection", with fetch's redirect rules).
    mutating func received(status: Int, headers: HTTPHeaders) -> ResponseAction {
        switch status {
        case 200:
            let essence = headers["Content-Type"]?.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces.lowercasedASCII }
            guard essence == "text/event-stream" else {
                readyState = .closed
                return .fail(.wrongContentType(headers["Content-Type"], url: url.absoluteString))
            }
            readyState = .open
            redirects = 0
            return .open
        case 204:
            readyState = .closed
            return .finish
        case 301, 302, 303, 307, 308:
            guard let location = headers["Location"] else {
                readyState = .closed
                return .fail(.badStatus(status, url: url.absoluteString))
            }
            guard let target = URL(string: location, relativeTo: url)?.absoluteURL, (try? Self.validate(target)) != nil else {
                readyState = .closed
                return .fail(.invalidURL(location, "a redirect's Location must be an absolute or relative http(s) URL"))
            }
            redirects += 1
            guard redirects <= configuration.maxRedirects else {
                readyState = .closed
                return .fail(.tooManyRedirects(limit: configuration.maxRedirects, url: target.absoluteString))
            }
            // Fetch drops credentials the caller set for one origin when a redirect leaves it.
            if Self.origin(of: target) != Self.origin(of: url) { crossedOrigin = true }
            url = target
            return .redirect
        default:
            readyState = .closed
            return .fail(.badStatus(status, url: url.absoluteString))
        }
    }

    /// Body bytes arrived on an open stream: the failures in a row are over.
    mutating func receivedBytes() {
        failures = 0
    }

    /// A valid `retry` field set the reconnection time.
    mutating func received(retry: Duration) {
        reconnectionTime = retry
    }

    /// The parser's last event ID after a chunk: sent on the next reconnection.
    mutating func update(lastEventID: String) {
        self.lastEventID = lastEventID
    }

    /// The connection ended (end of body, network error, malformed response): wait and
    /// reconnect to the original URL, or give up if attempts ran out.
    mutating func connectionEnded(error: (any Error)?, using generator: inout some RandomNumberGenerator) -> ReconnectAction {
        guard readyState != .closed else { return .fail(.reconnectLimitReached(attempts: failures, lastError: error)) }
        let delay = delay(afterFailures: failures, using: &generator)
        failures += 1
        if let limit = configuration.maxReconnectAttempts, failures > limit {
            readyState = .closed
            return .fail(.reconnectLimitReached(attempts: failures - 1, lastError: error))
        }
        readyState = .connecting
        url = originalURL
        redirects = 0
        crossedOrigin = false
        return .reconnect(after: delay)
    }

    /// `close()`, cancellation or the consumer leaving.
    mutating func close() {
        readyState = .closed
    }

    /// The wait before attempt `failures + 1`: the reconnection time, grown and jittered
    /// by the backoff.
    func delay(afterFailures failures: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let backoff = configuration.backoff
        var delay = reconnectionTime
        if backoff.multiplier > 1, failures > 0 {
            let cap = max(backoff.maximum, reconnectionTime)
            let grown = reconnectionTime.inSeconds * pow(backoff.multiplier, Double(min(failures, 64)))
            delay = grown < cap.inSeconds ? .seconds(grown) : cap
        }
        if backoff.jitter > 0 {
            delay = delay * (1 - backoff.jitter * Double.random(in: 0..<1, using: &generator))
        }
        return delay
    }

    /// An absolute `http`/`https` URL with a host.
    static func validate(_ url: URL) throws(EventSourceError) {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw .invalidURL(url.absoluteString, "the scheme must be http or https")
        }
        guard let host = url.host, !host.isEmpty else { throw .invalidURL(url.absoluteString, "no host") }
    }

    private static func origin(of url: URL) -> String {
        let scheme = url.scheme?.lowercased() ?? ""
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        return "\(scheme)://\(url.host?.lowercased() ?? ""):\(port)"
    }
}
