import EventStreamKit
import EventStreamHTTP
import Foundation

/// A snapshot of the hub's counts, for `GET /stats` (JSON) and `GET /metrics` (Prometheus):
/// what the hub keeps itself, and what its hooks and the HTTP server's reported to
/// ``DemoMetrics`` (durations, closes by reason, replays and gaps, write errors, refusals).
///
/// Counts only: both routes answer anyone, so a user's name in them would tell everyone who is
/// online and when. Channel names are the demo's own (`news`), not anybody's.
struct Stats: Codable {
    var clients: Int
    /// Users with at least one stream open.
    var sources: Int
    var channels: [String: Int]
    var eventsSent: Int
    var deliveries: Int
    var bytesWritten: Int
    var droppedFrames: Int
    var backlogSize: Int
    var backlogCapacity: Int
    /// From the hooks (``DemoMetrics``): streams opened (`reconnections` of them with
    /// `Last-Event-ID`), closed by reason, and how long the closed ones lasted.
    var connectionsOpened = 0
    var reconnections = 0
    var connectionsClosed: [String: Int] = [:]
    var connectionSeconds = 0.0
    var longestConnectionSeconds = 0.0
    /// Events nobody was listening for.
    var eventsWithoutRecipients = 0
    /// `droppedFrames` by cause: `overflow` (the policy dropped them, the stream went on) or
    /// the reason the stream ended with them unwritten.
    var droppedFramesByCause: [String: Int] = [:]
    /// Reconnections whose `Last-Event-ID` was replayed (and the events that took), or not.
    var replaysServed = 0
    var replayedEvents = 0
    var replayGaps = 0
    var heartbeats = 0
    /// Failed writes: to event streams, and of other responses.
    var streamWriteErrors = 0
    var responseWriteErrors = 0
    /// Requests the server answered with an error status, by status code.
    var refusedRequests: [String: Int] = [:]
    /// This node's name, in a cluster.
    var node: String?
    /// The node's view of the cluster's log, in a cluster.
    var cluster: Cluster?

    /// A node's view of the cluster: ``EventStreamKit/ClusterStatus`` and the cluster-wide
    /// count of streams.
    struct Cluster: Codable {
        var epoch: String?
        /// The last sequence number this node delivered, and the highest it knows exists.
        var delivered: UInt64
        var knownEnd: UInt64
        /// Events the node knows exist and has not delivered yet.
        var lag: UInt64
        /// From a send of this node's to its delivery by this node's tail, in milliseconds.
        var roundTripMilliseconds: Double?
        var logReachable: Bool
        /// Outages of the log and sends the log did not take.
        var redisErrors: Int
        var outages: Int
        var appendFailures: Int
        var epochChanges: Int
        var gaps: Int
        var malformedRecords: Int
        /// Streams open on every live node; `nil` while Redis cannot be asked.
        var clients: Int?
    }

    /// Reads everything in one turn of the hub's actor (one hop, one consistent snapshot),
    /// then, in a cluster, the cluster-wide count from Redis.
    static func snapshot(of hub: EventServer<String>, metrics: DemoMetrics, node: String?) async -> Stats {
        var stats = await local(of: hub)
        stats.node = node
        stats.add(metrics.snapshot)
        if var cluster = stats.cluster {
            cluster.clients = try? await hub.clusterClientCount()
            stats.cluster = cluster
        }
        return stats
    }

    private static func local(of hub: isolated EventServer<String>) -> Stats {
        var channels: [String: Int] = [:]
        for channel in hub.channels { channels[channel] = hub.clientCount(channel: channel) }
        return Stats(
            clients: hub.clientCount, sources: hub.sourceCount, channels: channels, eventsSent: hub.eventsSent,
            deliveries: hub.deliveries, bytesWritten: hub.bytesWritten, droppedFrames: hub.droppedFrames,
            backlogSize: hub.backlogCount, backlogCapacity: hub.backlogCapacity,
            cluster: hub.clusterStatus.map { status in
                Cluster(
                    epoch: status.epoch, delivered: status.deliveredSequence, knownEnd: status.knownEndSequence, lag: status.lag,
                    roundTripMilliseconds: status.lastRoundTrip.map { $0 / .milliseconds(1) }, logReachable: status.isLogReachable,
                    redisErrors: status.outages + status.appendFailures, outages: status.outages, appendFailures: status.appendFailures,
                    epochChanges: status.epochChanges, gaps: status.gaps, malformedRecords: status.malformedRecords
                )
            }
        )
    }

    private mutating func add(_ counts: DemoMetrics.Counts) {
        connectionsOpened = counts.connectionsOpened
        reconnections = counts.reconnections
        connectionsClosed = counts.connectionsClosed
        connectionSeconds = counts.connectionSeconds
        longestConnectionSeconds = counts.longestConnectionSeconds
        eventsWithoutRecipients = counts.eventsWithoutRecipients
        droppedFramesByCause = counts.droppedFrames
        replaysServed = counts.replaysServed
        replayedEvents = counts.replayedEvents
        replayGaps = counts.replayGaps
        heartbeats = counts.heartbeats
        streamWriteErrors = counts.streamWriteErrors
        responseWriteErrors = counts.responseWriteErrors
        refusedRequests = counts.refusedRequests
    }

    var json: HTTPResponse {
        get throws {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return HTTPResponse(headers: ["Content-Type": "application/json"], body: Array(try encoder.encode(self)) + [10])
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    var prometheus: HTTPResponse {
        var lines: [String] = []
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: Int)]) {
            lines.append("# HELP eventstream_\(name) \(help)")
            lines.append("# TYPE eventstream_\(name) \(type)")
            for sample in samples { lines.append("eventstream_\(name)\(sample.labels) \(sample.value)") }
        }
        metric("clients", "gauge", "Open event streams.", [("", clients)])
        metric("sources", "gauge", "Users with at least one open event stream.", [("", sources)])
        metric("channel_clients", "gauge", "Open event streams per channel.", channels.sorted { $0.key < $1.key }.map { ("{channel=\"\(Self.escape($0.key))\"}", $0.value) })
        metric("events_sent_total", "counter", "Events sent (each send once, whatever the recipients).", [("", eventsSent)])
        metric("deliveries_total", "counter", "Frames queued for clients.", [("", deliveries)])
        metric("bytes_written_total", "counter", "Bytes written to clients.", [("", bytesWritten)])
        metric("dropped_frames_total", "counter", "Frames dropped by slow-client policies, closes and shutdown.", [("", droppedFrames)])
        metric("backlog_events", "gauge", "Events held for replay.", [("", backlogSize)])
        metric("backlog_capacity", "gauge", "The most events held for replay.", [("", backlogCapacity)])
        metric("connections_opened_total", "counter", "Event streams opened.", [("", connectionsOpened)])
        metric("reconnections_total", "counter", "Event streams opened with Last-Event-ID.", [("", reconnections)])
        metric("connections_closed_total", "counter", "Event streams ended, by reason.", Self.labelled("reason", connectionsClosed))
        lines.append("# HELP eventstream_connection_duration_seconds How long the event streams that ended lasted.")
        lines.append("# TYPE eventstream_connection_duration_seconds summary")
        lines.append("eventstream_connection_duration_seconds_sum " + String(format: "%.3f", connectionSeconds))
        lines.append("eventstream_connection_duration_seconds_count \(connectionsClosed.values.reduce(0, +))")
        metric("events_without_recipients_total", "counter", "Events sent while nobody they were for was listening.", [("", eventsWithoutRecipients)])
        metric("dropped_frames_by_cause_total", "counter", "Dropped frames: overflow (the stream went on), or why the stream ended.", Self.labelled("cause", droppedFramesByCause))
        metric("replays_total", "counter", "Reconnections whose Last-Event-ID was replayed.", [("", replaysServed)])
        metric("replayed_events_total", "counter", "Events replayed to reconnecting clients.", [("", replayedEvents)])
        metric("replay_gaps_total", "counter", "Reconnections whose Last-Event-ID could not be replayed.", [("", replayGaps)])
        metric("heartbeats_total", "counter", "Keep-alive comments sent to silent streams.", [("", heartbeats)])
        metric("write_errors_total", "counter", "Failed writes, to event streams and of other responses.", [("{kind=\"stream\"}", streamWriteErrors), ("{kind=\"response\"}", responseWriteErrors)])
        metric("refused_requests_total", "counter", "Requests answered with an error status, by status.", Self.labelled("status", refusedRequests))
        if let cluster {
            // Label values are the node's name (checked: letters, digits, . : _ -) and an epoch
            // read from Redis, escaped like any other.
            metric("cluster_info", "gauge", "This node of the cluster, and the log's epoch.", [("{node=\"\(Self.escape(node ?? ""))\",epoch=\"\(Self.escape(cluster.epoch ?? ""))\"}", 1)])
            metric("cluster_delivered_sequence", "gauge", "The last sequence number of the cluster's log this node delivered.", [("", Int(clamping: cluster.delivered))])
            metric("cluster_lag_events", "gauge", "Events of the cluster's log this node knows exist and has not delivered yet.", [("", Int(clamping: cluster.lag))])
            metric("cluster_log_reachable", "gauge", "1 while this node's tail is connected to Redis.", [("", cluster.logReachable ? 1 : 0)])
            metric("cluster_redis_errors_total", "counter", "Outages of the cluster's log, and sends it did not take.", [("", cluster.redisErrors)])
            metric("cluster_epoch_changes_total", "counter", "Times the log's epoch changed (Redis lost its data, or rolled back).", [("", cluster.epochChanges)])
            metric("cluster_gaps_total", "counter", "Times this node's tail found events trimmed before it read them.", [("", cluster.gaps)])
            metric("cluster_malformed_records_total", "counter", "Records of the log that could not be read.", [("", cluster.malformedRecords)])
            if let clients = cluster.clients {
                metric("cluster_clients", "gauge", "Open event streams on every live node of the cluster.", [("", clients)])
            }
            if let roundTrip = cluster.roundTripMilliseconds {
                lines.append("# HELP eventstream_cluster_round_trip_seconds From this node's last send to its delivery by this node's tail.")
                lines.append("# TYPE eventstream_cluster_round_trip_seconds gauge")
                lines.append("eventstream_cluster_round_trip_seconds \(roundTrip / 1000)")
            }
        }
        return HTTPResponse(text: lines.joined(separator: "\n") + "\n", contentType: "text/plain; version=0.0.4; charset=utf-8")
    }

    /// Samples labelled `name="key"`, sorted by key. Keys are the demo's own (reasons,
    /// causes, status codes), escaped all the same.
    static func labelled(_ name: String, _ counts: [String: Int]) -> [(labels: String, value: Int)] {
        counts.sorted { $0.key < $1.key }.map { ("{\(name)=\"\(escape($0.key))\"}", $0.value) }
    }

    /// A label value: backslash, double quote and line feed escaped.
    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
