import EventStreamKit
import Logging
import Metrics
import Synchronization

/// The hub's observer hooks as swift-metrics figures and swift-log lines: set it as the hub's
/// `Configuration.observer` after bootstrapping a metrics backend, and the figures appear
/// wherever that backend exports them (App.swift bootstraps swift-prometheus and serves its
/// registry on `GET /metrics`).
///
/// The metrics, each name after `prefix` (`eventstream_` by default):
///
/// | name | type | labels | counts |
/// |---|---|---|---|
/// | `open_connections` | gauge | | streams open now |
/// | `connections_opened_total` | counter | | streams opened |
/// | `reconnections_total` | counter | | streams opened with `Last-Event-ID` |
/// | `connections_closed_total` | counter | `reason` | streams ended, by `DisconnectReason` |
/// | `connection_duration_seconds` | timer (a histogram) | | how long the ended streams lasted |
/// | `bytes_written_total` | counter | | bytes the ended streams wrote (counted when each ends) |
/// | `events_published_total` | counter | `event`, only with `eventNames` | events queued, once each |
/// | `deliveries_total` | counter | | recipients of those events, summed |
/// | `events_without_recipients_total` | counter | | events nobody they were for was listening to |
/// | `frames_dropped_total` | counter | `policy`, `cause` | frames discarded: `cause` is `overflow` when the policy dropped them and the stream went on, else why it ended |
/// | `replays_total` | counter | | reconnections whose `Last-Event-ID` was replayed |
/// | `replayed_events_total` | counter | | events replayed to them |
/// | `replay_gaps_total` | counter | | reconnections whose `Last-Event-ID` could not be replayed |
/// | `heartbeats_total` | counter | | keep-alive comments sent to silent streams |
/// | `write_errors_total` | counter | | failed writes of `EventConnection.run(writingTo:)` |
///
/// (A host that reads `connection.body`, as this app does, reports no write errors: a failed
/// write there leaves the loop, and the stream ends as `clientGone` or `cancelled`.)
///
/// Every label has a bounded set of values: `reason` and `cause` are `DisconnectReason`s,
/// `policy` is the overflow policy's kind (`dropOldest`, `disconnect`, `suspendSender`,
/// `coalesce`), and `event` is one of `eventNames` or `other`, because event names are the
/// application's to choose. A source ID (who the user is), a connection ID or an event ID is
/// never a label, and the logs carry connection IDs only.
///
/// Logs: a stream's end at `debug` (reason, duration, bytes), a failed write at `warning`.
///
/// The hooks run on the hub's actor and must be quick: each does a few increments of handlers
/// made once (swift-prometheus's are atomics), and the labelled counters are found in a
/// dictionary under an uncontended lock. A log line is as quick as `logger`'s handler: the
/// default `StreamLogHandler` writes to standard error on the calling thread, which is why
/// only a stream's end (at `debug`, off by default) and a failed write are logged.
///
/// One instance per hub: metrics with the same name are the same series in the backend, so
/// give a second hub's instance another `prefix`.
final class EventStreamMetrics<SourceID: Hashable & Sendable>: EventServerObserver {
    private let openConnections: Meter
    private let connectionsOpened: Counter
    private let reconnections: Counter
    private let connectionsClosed: LabelledCounters
    private let connectionDuration: Metrics.Timer
    private let bytesWritten: Counter
    /// By event name when there are `eventNames`; `other` counts the rest, or all without them.
    private let eventsPublished: (named: [String: Counter], other: Counter)
    private let deliveries: Counter
    private let eventsWithoutRecipients: Counter
    private let framesDropped: LabelledCounters
    private let replays: Counter
    private let replayedEvents: Counter
    private let replayGaps: Counter
    private let heartbeats: Counter
    private let writeErrors: Counter
    private let logger: Logger

    /// - Parameters:
    ///   - prefix: Starts every metric's name.
    ///   - eventNames: Event names counted apart in `events_published_total`'s `event` label
    ///     (an event without a name is `message`); any other is counted as `other`. Empty (the
    ///     default): no `event` label.
    ///   - logger: Where a stream's end and a failed write are logged.
    ///   - factory: The metrics backend; by default the one `MetricsSystem.bootstrap` set.
    init(
        prefix: String = "eventstream_",
        eventNames: Set<String> = [],
        logger: Logger = Logger(label: "EventStreamKit"),
        factory: any MetricsFactory = MetricsSystem.factory
    ) {
        @Sendable func counter(_ name: String, _ dimensions: [(String, String)] = []) -> Counter {
            Counter(label: prefix + name, dimensions: dimensions, factory: factory)
        }
        openConnections = Meter(label: prefix + "open_connections", factory: factory)
        connectionsOpened = counter("connections_opened_total")
        reconnections = counter("reconnections_total")
        connectionsClosed = LabelledCounters { counter("connections_closed_total", [("reason", $0[0])]) }
        connectionDuration = Metrics.Timer(label: prefix + "connection_duration_seconds", factory: factory)
        bytesWritten = counter("bytes_written_total")
        eventsPublished = eventNames.isEmpty
            ? ([:], counter("events_published_total"))
            : (
                Dictionary(uniqueKeysWithValues: eventNames.map { ($0, counter("events_published_total", [("event", $0)])) }),
                counter("events_published_total", [("event", "other")])
            )
        deliveries = counter("deliveries_total")
        eventsWithoutRecipients = counter("events_without_recipients_total")
        framesDropped = LabelledCounters { counter("frames_dropped_total", [("policy", $0[0]), ("cause", $0[1])]) }
        replays = counter("replays_total")
        replayedEvents = counter("replayed_events_total")
        replayGaps = counter("replay_gaps_total")
        heartbeats = counter("heartbeats_total")
        writeErrors = counter("write_errors_total")
        self.logger = logger
    }

    func connectionOpened(source: SourceID, connection: ConnectionID, lastEventID: String?) {
        openConnections.increment()
        connectionsOpened.increment()
        if lastEventID != nil { reconnections.increment() }
    }

    func connectionClosed(source: SourceID, connection: ConnectionID, reason: DisconnectReason, duration: Duration, bytesWritten: Int) {
        openConnections.decrement()
        connectionsClosed[[reason.description]].increment()
        connectionDuration.record(duration: duration)
        self.bytesWritten.increment(by: bytesWritten)
        logger.debug("event stream closed", metadata: [
            "connection": "\(connection)", "reason": "\(reason)", "duration": "\(duration)", "bytes": "\(bytesWritten)",
        ])
    }

    func eventPublished(name: String?, id: String, recipients: Int) {
        (eventsPublished.named[name ?? "message"] ?? eventsPublished.other).increment()
        deliveries.increment(by: recipients)
        if recipients == 0 { eventsWithoutRecipients.increment() }
    }

    func framesDropped(source: SourceID, connection: ConnectionID, count: Int, policy: OverflowPolicy, reason: DisconnectReason?) {
        // The policy's kind: `suspendSender(timeout: …)` without its timeout.
        let kind = String(policy.description.prefix { $0 != "(" })
        framesDropped[[kind, reason?.description ?? "overflow"]].increment(by: count)
    }

    func replayServed(source: SourceID, connection: ConnectionID, lastEventID: String, events: Int) {
        replays.increment()
        replayedEvents.increment(by: events)
    }

    func replayGap(source: SourceID, connection: ConnectionID, lastEventID: String) {
        replayGaps.increment()
    }

    func heartbeatsSent(count: Int) {
        heartbeats.increment(by: count)
    }

    func writeFailed(source: SourceID, connection: ConnectionID, error: any Error) {
        writeErrors.increment()
        logger.warning("event stream write failed", metadata: ["connection": "\(connection)", "error": "\(error)"])
    }
}

/// One counter per combination of label values, made on first use: for labels whose values
/// are bounded but not all known in advance (a `DisconnectReason` added later).
private final class LabelledCounters: Sendable {
    private let make: @Sendable ([String]) -> Counter
    private let counters = Mutex<[[String]: Counter]>([:])

    init(_ make: @escaping @Sendable ([String]) -> Counter) {
        self.make = make
    }

    subscript(values: [String]) -> Counter {
        counters.withLock { counters in
            if let counter = counters[values] { return counter }
            let counter = make(values)
            counters[values] = counter
            return counter
        }
    }
}
