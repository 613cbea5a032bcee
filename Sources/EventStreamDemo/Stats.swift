import EventStreamKit
import Foundation

/// A snapshot of the hub's counts, for `GET /stats` (JSON) and `GET /metrics` (Prometheus).
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

    /// Reads everything in one turn of the hub's actor: one hop, one consistent snapshot.
    static func snapshot(of hub: isolated EventServer<String>) -> Stats {
        var channels: [String: Int] = [:]
        for channel in hub.channels { channels[channel] = hub.clientCount(channel: channel) }
        return Stats(
            clients: hub.clientCount, sources: hub.sources.count, channels: channels, eventsSent: hub.eventsSent,
            deliveries: hub.deliveries, bytesWritten: hub.bytesWritten, droppedFrames: hub.droppedFrames,
            backlogSize: hub.backlogCount, backlogCapacity: hub.backlogCapacity
        )
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
        return HTTPResponse(text: lines.joined(separator: "\n") + "\n", contentType: "text/plain; version=0.0.4; charset=utf-8")
    }

    /// A label value: backslash, double quote and line feed escaped.
    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
