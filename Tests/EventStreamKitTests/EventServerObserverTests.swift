@testable import EventStreamKit
@testable import EventStreamHTTP
import Synchronization
import Testing

private let note = try! EventType<String>("note", marshal: .text)

/// Records every hook call, for the hub's and the HTTP server's observer tests.
final class RecordingObserver: EventServerObserver, HTTPServerObserver {
    enum Call: Equatable, Sendable {
        case opened(String, ConnectionID, String?)
        case closed(String, ConnectionID, DisconnectReason, bytes: Int)
        case published(String?, String, recipients: Int)
        case dropped(String, ConnectionID, Int, OverflowPolicy, DisconnectReason?)
        case replayed(String, ConnectionID, String, events: Int)
        case gap(String, ConnectionID, String)
        case heartbeats(Int)
        case streamWriteFailed(String, ConnectionID)
        case refused(Int, String?)
        case responseWriteFailed(String?)
    }

    private let state = Mutex<(calls: [Call], durations: [Duration])>(([], []))

    var calls: [Call] { state.withLock { $0.calls } }
    var durations: [Duration] { state.withLock { $0.durations } }
    private func note(_ call: Call) { state.withLock { $0.calls.append(call) } }

    func connectionOpened(source: String, connection: ConnectionID, lastEventID: String?) {
        note(.opened(source, connection, lastEventID))
    }
    func connectionClosed(source: String, connection: ConnectionID, reason: DisconnectReason, duration: Duration, bytesWritten: Int) {
        state.withLock {
            $0.calls.append(.closed(source, connection, reason, bytes: bytesWritten))
            $0.durations.append(duration)
        }
    }
    func eventPublished(name: String?, id: String, recipients: Int) { note(.published(name, id, recipients: recipients)) }
    func framesDropped(source: String, connection: ConnectionID, count: Int, policy: OverflowPolicy, reason: DisconnectReason?) {
        note(.dropped(source, connection, count, policy, reason))
    }
    func replayServed(source: String, connection: ConnectionID, lastEventID: String, events: Int) {
        note(.replayed(source, connection, lastEventID, events: events))
    }
    func replayGap(source: String, connection: ConnectionID, lastEventID: String) { note(.gap(source, connection, lastEventID)) }
    func heartbeatsSent(count: Int) { note(.heartbeats(count)) }
    func writeFailed(source: String, connection: ConnectionID, error: any Error) { note(.streamWriteFailed(source, connection)) }
    func requestRefused(status: HTTPStatus, reason: String, request: HTTPRequest?) { note(.refused(status.code, request?.path)) }
    func writeFailed(error: any Error, request: HTTPRequest?) { note(.responseWriteFailed(request?.path)) }
}

@Suite("EventServer: the observer's hooks")
struct EventServerObserverTests {
    private static func hub(_ observer: RecordingObserver, configure: (inout EventServer<String>.Configuration) -> Void = { _ in }) -> EventServer<String> {
        var configuration = EventServer<String>.Configuration()
        configuration.observer = observer
        configure(&configuration)
        return EventServer(configuration: configuration)
    }

    @Test("opened, published (with its recipients, none too), closed with reason, bytes and duration")
    func openPublishClose() async throws {
        let observer = RecordingObserver()
        let hub = Self.hub(observer)
        let connection = try await hub.connect(source: "alice")
        let sink = RecordingSink()
        let reader = Task { try await connection.run(writingTo: sink) }
        let first = try await hub.send("hi", as: note)
        let nobody = try await hub.send("hi", as: note, to: .source("bob"))
        try await waitUntil("alice's event") { sink.text.contains("data: hi") }
        await hub.close(source: "alice")
        #expect(try await reader.value == .closedByServer)
        let bytes = sink.bytes.count
        #expect(observer.calls == [
            .opened("alice", connection.id, nil),
            .published("note", first, recipients: 1),
            .published("note", nobody, recipients: 0),
            .closed("alice", connection.id, .closedByServer, bytes: bytes),
        ])
        #expect(observer.durations.count == 1 && observer.durations[0] > .zero)
    }

    @Test("a send of several values reports each event with its recipients")
    func batchReportsEachEvent() async throws {
        let observer = RecordingObserver()
        let hub = Self.hub(observer)
        let a = try await hub.connect(source: "a")
        let b = try await hub.connect(source: "b")
        let ids = try await hub.send(contentsOf: ["1", "2"], as: note)
        #expect(observer.calls.filter { if case .published = $0 { true } else { false } } == ids.map { .published("note", $0, recipients: 2) })
        await a.close()
        await b.close()
    }

    @Test("a reconnection is replayed (with the count of events it missed) or reported as a gap")
    func replayOrGap() async throws {
        let observer = RecordingObserver()
        let hub = Self.hub(observer)
        let first = try await hub.send("1", as: note)
        try await hub.send("2", as: note)
        try await hub.send("3", as: note)
        let caughtUp = try await hub.connect(source: "alice", lastEventID: first)
        let lost = try await hub.connect(source: "bob", lastEventID: "not-an-id")
        let calls = observer.calls.filter { if case .published = $0 { false } else { true } }
        #expect(calls == [
            .opened("alice", caughtUp.id, first),
            .replayed("alice", caughtUp.id, first, events: 2),
            .opened("bob", lost.id, "not-an-id"),
            .gap("bob", lost.id, "not-an-id"),
        ])
        await hub.shutdown()
    }

    @Test("frames an overflow policy drops are reported with the policy, and no reason while the stream goes on")
    func overflowDrops() async throws {
        let observer = RecordingObserver()
        let hub = Self.hub(observer) { $0.queueCapacity = 1 }
        let stalled = try await hub.connect(source: "slow")  // never read
        for value in ["1", "2", "3"] { try await hub.send(value, as: note) }
        let drops = observer.calls.filter { if case .dropped = $0 { true } else { false } }
        #expect(drops == [.dropped("slow", stalled.id, 1, .dropOldest, nil), .dropped("slow", stalled.id, 1, .dropOldest, nil)])
        await hub.shutdown()
    }

    @Test("under the disconnect policy the drop names the reason the stream ended")
    func disconnectDrops() async throws {
        let observer = RecordingObserver()
        let hub = Self.hub(observer) {
            $0.queueCapacity = 1
            $0.overflowPolicy = .disconnect
        }
        let stalled = try await hub.connect(source: "slow")
        try await hub.send("1", as: note)
        try await hub.send("2", as: note)
        // The frame it held and the one that did not fit.
        #expect(observer.calls.contains(.dropped("slow", stalled.id, 2, .disconnect, .slowClient)))
        #expect(observer.calls.contains(.closed("slow", stalled.id, .slowClient, bytes: 0)))
    }

    @Test("heartbeats are reported once per tick, with the streams that got one")
    func heartbeats() async throws {
        let observer = RecordingObserver()
        let hub = Self.hub(observer)
        let a = try await hub.connect(source: "a")
        let b = try await hub.connect(source: "b")
        await hub.sendHeartbeats()
        #expect(observer.calls.last == .heartbeats(2))
        await a.close()
        await b.close()
    }

    @Test("a failed write is reported, then the frames it lost, then the close")
    func writeFailure() async throws {
        let observer = RecordingObserver()
        let hub = Self.hub(observer)
        let connection = try await hub.connect(source: "alice")
        let sink = RecordingSink()
        sink.fail()
        let reader = Task { try await connection.run(writingTo: sink) }
        try await hub.send("lost", as: note)
        #expect(try await reader.value == .clientGone)
        let after = observer.calls.drop { if case .published = $0 { false } else { true } }.dropFirst()
        #expect(Array(after) == [
            .streamWriteFailed("alice", connection.id),
            .dropped("alice", connection.id, 1, .dropOldest, .clientGone),
            .closed("alice", connection.id, .clientGone, bytes: 0),
        ])
    }

    @Test("by default there is no observer: the hub keeps none and reads no clock for one")
    func noObserverByDefault() async throws {
        #expect(EventServer<String>.Configuration().observer == nil)
        #expect(HTTPServer.Configuration().observer == nil)
        let hub = EventServer<String>()
        #expect(hub.observer == nil)
        let connection = try await hub.connect(source: "alice")
        // The connect instant is taken only for an observer's durations.
        #expect(connection.openedAt == nil)
        try await hub.send("x", as: note)
        await hub.shutdown()
    }
}
