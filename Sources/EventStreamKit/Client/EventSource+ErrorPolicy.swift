extension EventSource {
    /// Why a connection attempt failed or an open stream ended, as an ``ErrorPolicy`` sees it.
    public enum ConnectionFailure: Sendable, CustomStringConvertible {
        /// The connection could not be made or broke: DNS, refused, reset, TLS, a malformed
        /// response, or an error thrown by ``Configuration/headerProvider``.
        case network(any Error)
        /// No final response head within ``Configuration/connectTimeout``.
        case connectTimeout(Duration)
        /// No byte on an open stream for ``Configuration/readTimeout``.
        case readTimeout(Duration)
        /// The server answered a status other than 200, 204 or a redirect.
        case status(Int, headers: HeaderFields)
        /// The server answered 200 with this `Content-Type` (or none), not `text/event-stream`.
        case contentType(String?)
        /// The stream ended: the server closed it cleanly.
        case endOfStream

        public var description: String {
            switch self {
            case .network(let error): "\(error)"
            case .connectTimeout(let limit): "no response within \(limit.secondsDescription) s"
            case .readTimeout(let limit): "no data for \(limit.secondsDescription) s"
            case .status(let status, _): "status \(status)"
            case .contentType(let type): "Content-Type \((type ?? "none").debugDescription), not text/event-stream"
            case .endOfStream: "the server ended the stream"
            }
        }
    }

    /// Decides, for each ``ConnectionFailure``, whether the source reconnects and when.
    ///
    /// ``standard`` is the spec: network errors, timeouts and the end of a stream reconnect
    /// after the reconnection time (grown by ``Configuration/backoff``); any other status or
    /// content type ends the source with an error. A policy of your own can, for instance,
    /// retry a 503 after its `Retry-After`:
    ///
    /// ```swift
    /// var configuration = EventSource.Configuration()
    /// configuration.errorPolicy = EventSource.ErrorPolicy { failure, attempt in
    ///     switch failure {
    ///     case .status(503, let headers):
    ///         let seconds = headers["Retry-After"].flatMap { Int($0) } ?? 5
    ///         return attempt <= 10 ? .retryAfter(.seconds(seconds)) : .stop
    ///     default:
    ///         return EventSource.ErrorPolicy.standard.decide(failure, attempt: attempt)
    ///     }
    /// }
    /// ```
    ///
    /// ``Configuration/maxReconnectAttempts`` and ``Request/isRetryable`` still apply after
    /// the policy; a delay is never shorter than ``Configuration/minimumRetry``.
    public struct ErrorPolicy: Sendable {
        /// What to do after a failure.
        public enum Decision: Hashable, Sendable {
            /// Reconnect after the reconnection time, grown by the backoff.
            case retry
            /// Reconnect after this delay (at least ``Configuration/minimumRetry``).
            case retryAfter(Duration)
            /// Do not reconnect: the sequence ends, by throwing the failure's error (or by
            /// returning `nil` after ``ConnectionFailure/endOfStream``).
            case stop
        }

        private let decision: @Sendable (ConnectionFailure, Int) -> Decision

        /// A policy from a closure that gets the failure and the attempt's number in the
        /// current run of failures (1 for the first failure after a stable connection).
        public init(_ decide: @escaping @Sendable (_ failure: ConnectionFailure, _ attempt: Int) -> Decision) {
            decision = decide
        }

        /// Decides what to do after `failure`, the `attempt`-th failure in a row.
        public func decide(_ failure: ConnectionFailure, attempt: Int) -> Decision {
            decision(failure, attempt)
        }

        /// The spec's behaviour: reconnect after network errors, timeouts and the end of a
        /// stream; stop on any other status or content type.
        public static let standard = ErrorPolicy { failure, _ in
            switch failure {
            case .network, .connectTimeout, .readTimeout, .endOfStream: .retry
            case .status, .contentType: .stop
            }
        }
    }

    /// A change of an ``EventSource``'s state, as ``EventSource/stateChanges`` reports it.
    public enum StateChange: Sendable, CustomStringConvertible {
        /// An attempt starts: `attempt` is 1 for the first connection, and counts the
        /// attempts since then.
        case connecting(attempt: Int)
        /// The response arrived and events flow.
        case open
        /// The attempt or stream ended with `failure`; the next attempt starts after `delay`.
        case retrying(after: Duration, failure: ConnectionFailure)
        /// The source ended for good; `failure` is what ended it, if anything did (`nil` for
        /// ``EventSource/close()``, cancellation, 204 or the consumer leaving).
        case closed(failure: ConnectionFailure?)

        public var description: String {
            switch self {
            case .connecting(let attempt): "connecting (attempt \(attempt))"
            case .open: "open"
            case .retrying(let delay, let failure): "\(failure); retrying in \(delay.secondsDescription) s"
            case .closed(let failure?): "closed: \(failure)"
            case .closed(nil): "closed"
            }
        }
    }
}

extension Duration {
    /// Seconds with up to three decimals and no trailing zeros: `0.5`, `3`, `1.25`.
    var secondsDescription: String {
        let milliseconds = Int((min(inSeconds, 1e12) * 1000).rounded())
        let whole = milliseconds / 1000, fraction = milliseconds % 1000
        guard fraction != 0 else { return "\(whole)" }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 3 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }
}
