@testable import EventStreamKit
@testable import EventStreamHTTP
import Synchronization
import Testing

/// The snippets of Docs/Hub.md, compiled and run, with checks of what they claim.
@Suite("Docs/Hub.md snippets")
struct HubGuideTests {
    struct Notification: Codable, Sendable {
        var title: String
        var body: String
    }

    /// Stands in for the app's own event store in the recovery snippet.
    struct Store: Sendable {
        func events(for user: String, after lastEventID: String) async -> [ServerSentEvent] {
            [try! ServerSentEvent(event: "recovered", data: "\(user) after \(lastEventID)")]
        }
    }

    @Test("the cluster snippet builds a hub that refuses what has no cluster-wide meaning, before it ever reaches Redis")
    func clusterSnippet() async throws {
        let hub = try EventServer<String>(cluster: .init(redisURL: "redis://127.0.0.1:6379", name: "notifications"))
        let note = try EventType<String>("note", marshal: .text)
        await #expect {
            try await hub.send(as: note) { user, _ in user }
        } throws: { ($0 as? EventServerError)?.code == .unsupportedInCluster }
        await #expect {
            try await hub.send(try ServerSentEvent(id: "mine", data: "x"))
        } throws: { ($0 as? EventServerError)?.code == .unsupportedInCluster }
        #expect { try EventServer<String>(cluster: .init(redisURL: "http://not-redis")) } throws: { ($0 as? EventServerError)?.code == .invalidCluster }
    }

    @Test("Docs/Cluster.md's snippet: a URL with a password and a database, a name and a log length; nothing connects before run()")
    func clusterGuideSnippet() async throws {
        let configuration = EventServer<String>.Configuration()
        // Docs/Cluster.md, first snippet:
        let hub = try EventServer<String>(
            configuration: configuration,
            cluster: .init(redisURL: "redis://:secret@10.0.0.5:6379/2", name: "notifications", logLength: 100_000)
        )
        #expect(await hub.clientCount == 0)
        #expect(await hub.cluster?.log.endpoint == RedisEndpoint(host: "10.0.0.5", port: 6379, password: "secret", database: 2))
    }

    @Test func perUserNotificationsSendingAndChannels() async throws {
        let user = "alice"
        let lastEventIDHeader: String? = nil

        let server = EventServer<String>()  // source IDs are user names here
        let notification = try EventType<Notification>("notification", marshal: .json())

        let connection = try await server.connect(source: user, lastEventID: lastEventIDHeader)
        let recorder = StreamRecorder(connection)

        try await server.send(Notification(title: "Hi", body: "You have mail"), as: notification, to: .source(user))

        try await server.send(try ServerSentEvent(event: "ping", data: "1"), to: .everyone)
        try await server.send(as: notification) { user, lastEventID in
            Notification(title: "Welcome back, \(user)", body: lastEventID == nil ? "" : "since \(lastEventID!)")
        }
        let price = try EventType<Double>("price", marshal: .text)
        try await server.send(contentsOf: [101.5, 101.75, 101.5], as: price, to: .channel("ticker"))
        await server.comment("maintenance at noon")
        await server.setRetry(.seconds(10))

        let events = try await recorder.waitForEvents(3)
        #expect(events.map(\.type) == ["notification", "ping", "notification"])
        #expect(events[0].data == #"{"body":"You have mail","title":"Hi"}"# || events[0].data == #"{"title":"Hi","body":"You have mail"}"#)
        try await waitUntil("the retry") { recorder.retries == [.seconds(10)] }

        let reader = try await server.connect(source: user, channels: ["news", "ticker"])
        let id = try await server.send(Notification(title: "Headline", body: "…"), as: notification, to: .channel("news"))
        #expect(Set(await server.channels) == ["news", "ticker"])
        #expect(await server.clientCount(channel: "news") == 1)
        #expect(await server.lastEventID(channel: "news") == id)
        await server.close(channel: "news")
        #expect(await server.clientCount(source: user) == 1)
        _ = reader
        await recorder.cancel()
    }

    @Test func replayConfiguration() async throws {
        let store = Store()
        var configuration = EventServer<String>.Configuration()
        configuration.backlogCapacity = 1024
        configuration.gapEvent = try ServerSentEvent(event: "reset", data: "")
        configuration.recovery = { user, lastEventID in
            await store.events(for: user, after: lastEventID)  // your database
        }
        let server = EventServer<String>(configuration: configuration)
        let recorder = StreamRecorder(try await server.connect(source: "bob", lastEventID: "gone-1"))
        #expect(try await recorder.waitForEvents(2).map(\.type) == ["reset", "recovered"])
        await recorder.cancel()
    }

    @Test func runningTheHub() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.heartbeatInterval = .milliseconds(10)
        let server = EventServer<String>(configuration: configuration)
        let recorder = StreamRecorder(try await server.connect(source: "a"))
        await withDiscardingTaskGroup { group in
            group.addTask { await server.run() }  // heartbeats; cancellation shuts down
            try? await waitUntil("a heartbeat") { recorder.comments > 0 }
            group.cancelAll()
        }
        try await recorder.waitForEnd()
        #expect(await server.clientCount == 0)
    }
}

/// Docs/Hub.md, "Hooks for logging and metrics": the observer, compiled as the guide shows it.
final class HubMetrics: EventServerObserver {
    let streams = Atomic<Int>(0)
    let gaps = Atomic<Int>(0)
    let dropped = Atomic<Int>(0)

    func connectionOpened(source: String, connection: ConnectionID, lastEventID: String?) {
        streams.add(1, ordering: .relaxed)
    }
    func connectionClosed(source: String, connection: ConnectionID, reason: DisconnectReason, duration: Duration, bytesWritten: Int) {
        streams.subtract(1, ordering: .relaxed)
    }
    func replayGap(source: String, connection: ConnectionID, lastEventID: String) {
        gaps.add(1, ordering: .relaxed)
    }
    func framesDropped(source: String, connection: ConnectionID, count: Int, policy: OverflowPolicy, reason: DisconnectReason?) {
        dropped.add(count, ordering: .relaxed)
    }
}

@Suite("Docs/Hub.md hooks snippet")
struct HubHooksGuideTests {
    @Test("the guide's observer counts streams, gaps and drops")
    func hooksSnippet() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.observer = HubMetrics()
        let server = EventServer<String>(configuration: configuration)
        let metrics = try #require(server.configuration.observer as? HubMetrics)
        let connection = try await server.connect(source: "alice", lastEventID: "unknown")
        #expect(metrics.streams.load(ordering: .relaxed) == 1)
        #expect(metrics.gaps.load(ordering: .relaxed) == 1)
        await connection.close()
        #expect(metrics.streams.load(ordering: .relaxed) == 0)
    }
}
