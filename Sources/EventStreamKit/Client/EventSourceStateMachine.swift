import Foundation

/// One HTTP request an ``EventSource`` sends.
struct EventSourceRequest: Sendable {
    var url: URL
    var method: String
    var headers: HeaderFields
    var body: [UInt8]?
}

/// The WHATWG `EventSource` processing model as a pure value: what to send, what a response
/// means, and how long to wait before reconnecting. No I/O and no clock (the caller passes
/// the time), so every rule is tested without a socket; ``EventSource`` performs the actions
/// it returns.
struct EventSourceStateMachine {
    enum ResponseAction {
        /// 200 with `text/event-stream`: read the body.
        case open
        /// Fetch ``url`` (now the redirect's target) instead.
        case redirect
        /// 204: the server wants no more reconnections.
        case finish
        /// A failure the error policy decides on (``connectionEnded(_:at:using:)``).
        case failed(EventSource.ConnectionFailure)
        /// A fatal failure, whatever the policy: a redirect that must not be followed, a
        /// content coding the client cannot decode.
        case fail(EventSourceError)
    }

    enum ReconnectAction: Equatable {
        case reconnect(after: Duration)
        /// Do not reconnect; the sequence ends normally.
        case finish
        case fail(EventSourceError)

        static func == (lhs: Self, rhs: Self) -> Bool {
            switch (lhs, rhs) {
            case (.reconnect(let a), .reconnect(let b)): a == b
            case (.finish, .finish): true
            case (.fail(let a), .fail(let b)): a.code == b.code
            default: false
            }
        }
    }

    /// Headers the source sets itself; a caller may not.
    static let reservedHeaders: Set<String> = [
        "accept", "accept-encoding", "cache-control", "last-event-id", "host", "connection", "content-length",
        "transfer-encoding", "te", "upgrade", "expect",
    ]

    /// Credentials by nature: never sent after a redirect to another origin.
    static let credentialHeaders: Set<String> = ["authorization", "cookie", "proxy-authorization"]

    let original: EventSourceRequest
    let isRetryable: Bool
    let configuration: EventSource.Configuration
    private let sensitiveHeaders: Set<String>

    private(set) var readyState = EventSource.ReadyState.connecting
    /// The URL the next request goes to: the original, or a redirect's target.
    private(set) var url: URL
    /// The method the next request uses (a 301/302 after `POST`, or a 303, make it `GET`).
    private(set) var method: String
    private(set) var body: [UInt8]?
    /// The server's latest `retry` (clamped), or the configured default.
    private(set) var reconnectionTime: Duration
    /// Sent as `Last-Event-ID` when not empty.
    private(set) var lastEventID: String
    /// Redirects followed for the current connection.
    private(set) var redirects = 0
    /// Failed attempts in a row, for the backoff and the error policy: reset only by a
    /// connection that stays open for the threshold.
    private(set) var failures = 0
    /// Attempts in a row that delivered no event, for ``EventSource/Configuration/maxReconnectAttempts``:
    /// a server that delivers and then closes, as some rotate connections, is not failing.
    private(set) var attemptsWithoutEvents = 0
    /// Whether the current stream has delivered an event.
    private var deliveredEvent = false
    /// Attempts made since the source started (the first is 1).
    private(set) var attempts = 0
    /// When the current stream opened.
    private var openedAt: ContinuousClock.Instant?
    private var crossedOrigin = false
    /// A redirect turned the request into a body-less GET: the body's headers go too.
    private var droppedBodyHeaders = false

    /// Fetch's request-body-header names.
    static let bodyHeaders: Set<String> = ["content-type", "content-encoding", "content-language", "content-location"]

    init(request: EventSource.Request, lastEventID: String, configuration: EventSource.Configuration) throws(EventSourceError) {
        try Self.validate(request.url)
        try Self.validate(request.headers)
        let method = request.method
        guard !method.isEmpty, method.utf8.allSatisfy(HTTPHeadScanner.isTokenByte) else {
            throw .invalidRequest("the method \(method.debugDescription) is not an HTTP token")
        }
        guard !["CONNECT", "TRACE", "HEAD"].contains(method.uppercased()) else { throw .invalidRequest("\(method) cannot carry an event stream") }
        guard !lastEventID.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) else {
            throw .invalidHeader("Last-Event-ID", "the last event ID contains CR, LF or NUL")
        }
        original = EventSourceRequest(url: request.url, method: method, headers: request.headers, body: request.body)
        isRetryable = request.isRetryable
        url = request.url
        self.method = method
        body = request.body
        self.lastEventID = lastEventID
        self.configuration = configuration
        sensitiveHeaders = Self.credentialHeaders.union(configuration.sensitiveHeaders.map(\.lowercasedASCII))
        reconnectionTime = .zero
        reconnectionTime = clamped(configuration.retry)
    }

    /// The request to send now, with `extra` headers (from the header provider) after the
    /// caller's.
    func request(adding extra: HeaderFields = [:]) -> EventSourceRequest {
        var headers = HeaderFields([("Accept", "text/event-stream"), ("Accept-Encoding", "identity"), ("Cache-Control", "no-cache")])
        if !lastEventID.isEmpty { headers.add("Last-Event-ID", lastEventID) }
        for (name, value) in Array(original.headers) + Array(extra) where sends(name) {
            headers.add(name, value)
        }
        return EventSourceRequest(url: url, method: method, headers: headers, body: body)
    }

    /// Whether a caller's header goes out with the next request.
    private func sends(_ name: String) -> Bool {
        let lowercased = name.lowercasedASCII
        if crossedOrigin && sensitiveHeaders.contains(lowercased) { return false }
        return !(droppedBodyHeaders && Self.bodyHeaders.contains(lowercased))
    }

    /// An attempt starts.
    mutating func attemptStarted() {
        attempts += 1
    }

    /// Decides what a response head means (WHATWG "announce the connection" / "fail the
    /// connection", with fetch's redirect rules).
    mutating func received(status: Int, headers: HeaderFields, at now: ContinuousClock.Instant) -> ResponseAction {
        switch status {
        case 200:
            guard Self.isEventStream(headers) else { return .failed(.contentType(headers.values("Content-Type").joined(separator: ", "))) }
            readyState = .open
            redirects = 0
            openedAt = now
            return .open
        case 204:
            readyState = .closed
            return .finish
        case 301, 302, 303, 307, 308:
            return redirect(status: status, headers: headers)
        default:
            return .failed(.status(status, headers: headers))
        }
    }

    private mutating func redirect(status: Int, headers: HeaderFields) -> ResponseAction {
        guard let location = headers["Location"] else { return .failed(.status(status, headers: headers)) }
        guard let target = URL(string: location, relativeTo: url)?.absoluteURL, (try? Self.validate(target)) != nil else {
            readyState = .closed
            let shown = URL(string: location).map(Self.redacted) ?? location
            return .fail(.invalidURL(shown, "a redirect's Location must be an absolute or relative http(s) URL with a port in 1...65535 and no credentials"))
        }
        redirects += 1
        guard redirects <= configuration.maxRedirects else {
            readyState = .closed
            return .fail(.tooManyRedirects(limit: configuration.maxRedirects, url: target.absoluteString))
        }
        if url.scheme?.lowercased() == "https", target.scheme?.lowercased() == "http", !configuration.allowsInsecureRedirects {
            readyState = .closed
            return .fail(.insecureRedirect(from: url.absoluteString, to: target.absoluteString))
        }
        // Fetch drops credentials the caller set for one origin when a redirect leaves it;
        // we drop every credential header, for the rest of this connection's redirects.
        if Self.origin(of: target) != Self.origin(of: url) { crossedOrigin = true }
        // Fetch: 303 (for anything but HEAD), and 301/302 after POST, become GET without a
        // body, and without the headers that described the body.
        if status == 303 && method != "HEAD" || (status == 301 || status == 302) && method == "POST" {
            method = "GET"
            body = nil
            droppedBodyHeaders = true
        }
        url = target
        return .redirect
    }

    /// Whether the response's MIME type is `text/event-stream`. With several `Content-Type`
    /// values the last one counts, as fetch's "extract a MIME type" has it (so that
    /// `text/event-stream` followed by `text/plain` is not an event stream).
    static func isEventStream(_ headers: HeaderFields) -> Bool {
        let values = headers.values("Content-Type").flatMap { $0.split(separator: ",") }
        guard let last = values.last(where: { !$0.trimmingSpaces.isEmpty }) else { return false }
        return last.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces.lowercasedASCII } == "text/event-stream"
    }

    /// A valid `retry` field set the reconnection time: clamped to the configured range.
    mutating func received(retry: Duration) {
        reconnectionTime = clamped(retry)
    }

    /// The open stream delivered an event: the attempt limit's count starts again when it ends.
    mutating func receivedEvent() {
        deliveredEvent = true
    }

    /// The parser's last event ID after a chunk: sent on the next reconnection.
    mutating func update(lastEventID: String) {
        self.lastEventID = lastEventID
    }

    /// The attempt or the stream ended with `failure` at `now`: asks the error policy, then
    /// waits and reconnects to the original request, or ends.
    mutating func connectionEnded(_ failure: EventSource.ConnectionFailure, at now: ContinuousClock.Instant, using generator: inout some RandomNumberGenerator) -> ReconnectAction {
        guard readyState != .closed else { return .finish }
        if let openedAt, openedAt.duration(to: now) >= configuration.backoffResetThreshold { failures = 0 }
        let delivered = deliveredEvent
        openedAt = nil
        deliveredEvent = false
        let attempt = failures + 1
        let decision: EventSource.ErrorPolicy.Decision = isRetryable ? configuration.errorPolicy.decide(failure, attempt: attempt) : .stop
        let delay: Duration
        switch decision {
        case .stop:
            readyState = .closed
            return ending(failure)
        case .retry:
            delay = self.delay(afterFailures: failures, using: &generator)
        case .retryAfter(let after):
            delay = max(configuration.minimumRetry, min(after, configuration.maximumRetry))
        }
        failures = attempt
        attemptsWithoutEvents = delivered ? 0 : attemptsWithoutEvents + 1
        if let limit = configuration.maxReconnectAttempts, attemptsWithoutEvents > limit {
            readyState = .closed
            return .fail(.reconnectLimitReached(attempts: attemptsWithoutEvents, lastError: underlying(failure), ending: failure.description))
        }
        readyState = .connecting
        restoreOriginal()
        return .reconnect(after: delay)
    }

    /// ``EventSource/reconnectNow()`` ended the attempt or stream: the next request goes to
    /// the original URL at once; no failure is counted.
    mutating func reconnectingNow() {
        guard readyState != .closed else { return }
        readyState = .connecting
        openedAt = nil
        if deliveredEvent { attemptsWithoutEvents = 0 }
        deliveredEvent = false
        restoreOriginal()
    }

    private mutating func restoreOriginal() {
        url = original.url
        method = original.method
        body = original.body
        redirects = 0
        crossedOrigin = false
        droppedBodyHeaders = false
    }

    /// `close()`, cancellation or the consumer leaving.
    mutating func close() {
        readyState = .closed
    }

    /// The wait before attempt `failures + 1`: the reconnection time, grown and jittered by
    /// the backoff, never under the floor.
    func delay(afterFailures failures: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let backoff = configuration.backoff
        let floor = configuration.minimumRetry
        var delay = reconnectionTime
        if backoff.multiplier > 1, failures > 0 {
            let cap = max(backoff.maximum, reconnectionTime)
            let grown = reconnectionTime.inSeconds * pow(backoff.multiplier, Double(min(failures, 64)))
            delay = grown.isFinite && grown < cap.inSeconds ? .seconds(grown) : cap
        }
        if backoff.jitter > 0 {
            delay = delay * (1 - backoff.jitter * Double.random(in: 0..<1, using: &generator))
        }
        return max(floor, delay)
    }

    /// `duration` within `minimumRetry...maximumRetry` (the floor wins if they cross).
    private func clamped(_ duration: Duration) -> Duration {
        max(configuration.minimumRetry, min(duration, configuration.maximumRetry))
    }

    /// What a failure the policy stopped on ends the sequence with.
    private func ending(_ failure: EventSource.ConnectionFailure) -> ReconnectAction {
        guard let error = error(for: failure) else { return .finish }
        return .fail(error)
    }

    /// The error a failure is reported as; `nil` for the end of a stream.
    func error(for failure: EventSource.ConnectionFailure) -> EventSourceError? {
        switch failure {
        case .network(let error): .connectionFailed(error, url: url.absoluteString)
        case .connectTimeout(let limit): .timedOut("\(url.absoluteString): no response within \(limit.secondsDescription) s")
        case .readTimeout(let limit): .timedOut("\(url.absoluteString): no data for \(limit.secondsDescription) s")
        case .status(let status, _): .badStatus(status, url: url.absoluteString)
        case .contentType(let type): .wrongContentType(type, url: url.absoluteString)
        case .endOfStream: nil
        }
    }

    /// What ``EventSourceError/underlying`` carries after the attempt limit: the network
    /// error itself, or the error the failure would have been reported as.
    private func underlying(_ failure: EventSource.ConnectionFailure) -> (any Error)? {
        if case .network(let error) = failure { return error }
        return error(for: failure)
    }

    /// An absolute `http`/`https` URL with a host, and a port in 1...65535 if it has one.
    static func validate(_ url: URL) throws(EventSourceError) {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw .invalidURL(url.absoluteString, "the scheme must be http or https")
        }
        guard let host = url.host, !host.isEmpty else { throw .invalidURL(url.absoluteString, "no host") }
        // Fetch refuses them too; and a password in a URL ends up in logs and error messages.
        guard url.user == nil, url.password == nil else {
            throw .invalidURL(redacted(url), "credentials in the URL; send them in a header (Authorization)")
        }
        // The port's text, not `url.port`: Foundation wraps 2^64 + 1 around to 1.
        if let port = portText(of: url.absoluteString), !port.isEmpty {
            let digits = port.drop { $0 == "0" }
            guard port.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), digits.utf8.count <= 5, let value = Int(digits), (1...65535).contains(value) else {
                throw .invalidURL(url.absoluteString, "the port must be in 1...65535")
            }
        }
        guard !url.absoluteString.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F }) else {
            throw .invalidURL(url.absoluteString, "control characters or spaces")
        }
    }

    /// Header names are tokens, values have no CR, LF or NUL, and none is the source's own.
    static func validate(_ headers: HeaderFields) throws(EventSourceError) {
        for (name, value) in headers {
            guard !name.isEmpty, name.utf8.allSatisfy(HTTPHeadScanner.isTokenByte) else { throw .invalidHeader(name, "not a valid header name") }
            guard !value.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) else { throw .invalidHeader(name, "the value contains CR, LF or NUL") }
            guard !reservedHeaders.contains(name.lowercasedASCII) else { throw .invalidHeader(name, "EventSource sets this header itself") }
        }
    }

    /// The URL with any user and password replaced by `***`, for messages.
    static func redacted(_ url: URL) -> String {
        let text = url.absoluteString
        guard let start = text.range(of: "://")?.upperBound else { return text }
        let authorityEnd = text[start...].firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? text.endIndex
        guard let at = text[start..<authorityEnd].lastIndex(of: "@") else { return text }
        return String(text[..<start]) + "***" + String(text[at...])
    }

    /// The text after the host's `:` in an absolute URL's authority, if there is a colon.
    static func portText(of absolute: String) -> Substring? {
        guard let start = absolute.range(of: "://")?.upperBound else { return nil }
        var authority = absolute[start...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") { authority = authority[authority.index(after: close)...] }
        guard let colon = authority.lastIndex(of: ":") else { return nil }
        return authority[authority.index(after: colon)...]
    }

    private static func origin(of url: URL) -> String {
        let scheme = url.scheme?.lowercased() ?? ""
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        return "\(scheme)://\(url.host?.lowercased() ?? ""):\(port)"
    }
}
