import EventStreamKit
import EventStreamHTTP
import Synchronization

/// What the hub's and the HTTP server's hooks report, counted for `/stats` and `/metrics`:
/// the counts the hub does not keep itself (durations, closes by reason, replays and gaps,
/// write errors, refusals by status).
///
/// Counts only, by reason, cause or status: never a user's name, since both routes answer
/// anyone. Each hook takes one uncontended lock for a few additions, as the hooks' contract
/// asks (quick, non-blocking).
final class DemoMetrics: EventServerObserver, HTTPServerObserver {
    struct Counts: Sendable {
        var connectionsOpened = 0
        var reconnections = 0
        var connectionsClosed: [String: Int] = [:]
        var connectionSeconds = 0.0
        var longestConnectionSeconds = 0.0
        var eventsWithoutRecipients = 0
        var droppedFrames: [String: Int] = [:]
        var replaysServed = 0
        var replayedEvents = 0
        var replayGaps = 0
        var heartbeats = 0
        var streamWriteErrors = 0
        var responseWriteErrors = 0
        var refusedRequests: [String: Int] = [:]
    }

    private let counts = Mutex(Counts())

    /// A consistent copy of every count.
    var snapshot: Counts { counts.withLock { $0 } }

    func connectionOpened(source: String, connection: ConnectionID, lastEventID: String?) {
        counts.withLock { counts in
            counts.connectionsOpened += 1
            if lastEventID != nil { counts.reconnections += 1 }
        }
    }

    func connectionClosed(source: String, connection: ConnectionID, reason: DisconnectReason, duration: Duration, bytesWritten: Int) {
        let seconds = duration / .seconds(1)
        counts.withLock { counts in
            counts.connectionsClosed[reason.description, default: 0] += 1
            counts.connectionSeconds += seconds
            counts.longestConnectionSeconds = max(counts.longestConnectionSeconds, seconds)
        }
    }

    func eventPublished(name: String?, id: String, recipients: Int) {
        guard recipients == 0 else { return }
        counts.withLock { $0.eventsWithoutRecipients += 1 }
    }

    func framesDropped(source: String, connection: ConnectionID, count: Int, policy: OverflowPolicy, reason: DisconnectReason?) {
        // "overflow" when the policy dropped them and the stream went on; else why it ended.
        let cause = reason.map { "\($0)" } ?? "overflow"
        counts.withLock { $0.droppedFrames[cause, default: 0] += count }
    }

    func replayServed(source: String, connection: ConnectionID, lastEventID: String, events: Int) {
        counts.withLock { counts in
            counts.replaysServed += 1
            counts.replayedEvents += events
        }
    }

    func replayGap(source: String, connection: ConnectionID, lastEventID: String) {
        counts.withLock { $0.replayGaps += 1 }
    }

    func heartbeatsSent(count: Int) {
        counts.withLock { $0.heartbeats += count }
    }

    func writeFailed(source: String, connection: ConnectionID, error: any Error) {
        counts.withLock { $0.streamWriteErrors += 1 }
    }

    func requestRefused(status: HTTPStatus, reason: String, request: HTTPRequest?) {
        counts.withLock { $0.refusedRequests[String(status.code), default: 0] += 1 }
    }

    /// `response`, counted with ``requestRefused(status:reason:request:)``'s if its status is
    /// an error: a route's own refusal (429 or 503 with `Retry-After`), which the server's
    /// hook does not see. Without it, a flood of sign-ins or tickets answered 429 or 503 left
    /// `refused_requests_total` at zero.
    func counted(_ response: HTTPResponse) -> HTTPResponse {
        if response.status.code >= 400 {
            counts.withLock { $0.refusedRequests[String(response.status.code), default: 0] += 1 }
        }
        return response
    }

    func writeFailed(error: any Error, request: HTTPRequest?) {
        counts.withLock { $0.responseWriteErrors += 1 }
    }
}
