import Foundation
import Synchronization
import Testing
@testable import EventStreamKit
@testable import EventStreamHTTP

/// The client against the library's own server, on every transport of the platform.
@Suite("EventSource against HTTPServer and EventServer")
struct EventSourceEndToEndTests {
    @Test("events arrive per user, a dropped stream reconnects with Last-Event-ID and replays what it missed, close() leaves the hub", arguments: EventSourceNetworkTests.transports)
    func roundTrip(transport: EventSource.Transport) async throws {
        let server = try TestServer.start()
        do {
            var configuration = EventSource.Configuration()
            configuration.retry = .milliseconds(100)
            configuration.minimumRetry = .milliseconds(100)
            configuration.transport = transport
            let source = try EventSource(url: "http://127.0.0.1:\(server.port)/events?user=alice", configuration: configuration)
            let received = Mutex<[MessageEvent]>([])
            let consumer = Task {
                for try await event in source { received.withLock { $0.append(event) } }
            }
            let hub = server.hub
            try await waitUntil("alice to connect") { await hub.clientCount(source: "alice") == 1 }
            var ids: [String] = []
            for index in 1...3 { ids.append(try await hub.send(ServerSentEvent(event: "note", data: "live \(index)"), to: .source("alice"))) }
            _ = try await hub.send(ServerSentEvent(data: "for bob"), to: .source("bob"))
            try await waitUntil("three live events") { received.withLock { $0.count } == 3 }
            #expect(source.readyState == .open)
            #expect(source.lastEventID == ids[2])

            await hub.close(source: "alice")
            for index in 4...5 { ids.append(try await hub.send(ServerSentEvent(event: "note", data: "missed \(index)"), to: .source("alice"))) }
            try await waitUntil("the replay") { received.withLock { $0.count } == 5 }
            let reconnected = await hub.connections(source: "alice")
            #expect(reconnected.count == 1)
            #expect(reconnected.first?.requestedLastEventID == ids[2])

            let events = received.withLock { $0 }
            #expect(events.map(\.data) == ["live 1", "live 2", "live 3", "missed 4", "missed 5"])
            #expect(events.map(\.lastEventID) == ids)
            #expect(events.allSatisfy { $0.type == "note" })

            source.close()
            try await waitUntil("alice to leave the hub") { await hub.clientCount == 0 }
            try await withDeadline(.seconds(5)) { try await consumer.value }
            #expect(source.readyState == .closed)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    @Test("the hub's refusals reach the client as fatal errors with the status", arguments: [("", 401), ("?user=mallory", 403)])
    func refused(query: String, status: Int) async throws {
        let server = try TestServer.start()
        let source = try EventSource(url: "http://127.0.0.1:\(server.port)/events\(query)")
        await #expect { _ = try await withDeadline(.seconds(5)) { for try await _ in source {} } } throws: { error in
            (error as? EventSourceError)?.status == status
        }
        await server.stop()
    }

    @Test("a thousand streams open in one process on the built-in client, and all get a broadcast")
    func thousandStreams() async throws {
        let server = try TestServer.start()
        let hub = server.hub
        let count = 1_000
        let received = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            var sources: [EventSource] = []
            for index in 0..<count {
                let source = try EventSource(url: "http://127.0.0.1:\(server.port)/events?user=u\(index)")
                sources.append(source)
                group.addTask {
                    for try await event in source where event.data == "hello all" {
                        received.increment()
                    }
                }
            }
            try await waitUntil("every stream to open", timeout: .seconds(30)) { await hub.clientCount == count }
            _ = try await hub.send(ServerSentEvent(data: "hello all"))
            try await waitUntil("every stream to receive", timeout: .seconds(30)) { received.count == count }
            for source in sources { source.close() }
            try await group.waitForAll()
        }
        try await waitUntil("the hub to empty") { await hub.clientCount == 0 }
        await server.stop()
    }
}
