@testable import EventStreamKit
@testable import EventStreamHTTP
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// Senders writing for idle streams on the built-in server (`Configuration.immediateWrites`),
/// over loopback: the write is made by the sender, and a client too slow to take it all still
/// gets every byte, in order, from the stream's own reader.
@Suite("Immediate writes: over sockets")
struct ImmediateWriteTests {
    private static func hub(immediate: Bool = true, capacity: Int = 256) -> EventServer<String> {
        var configuration = EventServer<String>.Configuration()
        configuration.heartbeatInterval = nil
        configuration.immediateWrites = immediate
        configuration.queueCapacity = capacity
        configuration.queueByteLimit = 64 << 20
        return EventServer(configuration: configuration)
    }

    private static func open(_ server: TestServer, user: String, receiveBuffer: Int32? = nil) async throws -> LoopbackClient {
        let client = try server.client()
        if var size = receiveBuffer {
            _ = setsockopt(client.socket.fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        try await client.send("GET /events?user=\(user) HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try await client.read { $0.contains("\r\n\r\n") }
        return client
    }

    /// Reads and parses until `count` events arrived (or the server closed); returns their
    /// data, their IDs and the bytes read.
    private static func events(from client: LoopbackClient, count: Int) async throws -> (data: [String], ids: [String], bytes: Int) {
        try await withDeadline(.seconds(60), "\(count) events") {
            var parser = EventStreamParser()
            var elements: [EventStreamParser.Element] = []
            var (data, ids, bytes) = ([String](), [String](), 0)
            var chunk = [UInt8](repeating: 0, count: 65536)
            while data.count < count {
                switch try chunk.withUnsafeMutableBytes({ try client.socket.read(into: $0) }) {
                case .bytes(let n):
                    bytes += n
                    try chunk.withUnsafeBytes { try parser.parse(UnsafeRawBufferPointer(rebasing: $0[..<n]), into: &elements) }
                    for case .event(let event) in elements {
                        data.append(event.data)
                        ids.append(event.lastEventID)
                    }
                    elements.removeAll(keepingCapacity: true)
                case .endOfFile: return (data, ids, bytes)
                case .wouldBlock: try await client.poller.waitReadable(client.socket.fd)
                }
            }
            return (data, ids, bytes)
        }
    }

    @Test("an event for an idle stream is written by the send itself, and the reader is not woken", arguments: [true, false])
    func theSendWrites(immediate: Bool) async throws {
        let server = try TestServer.start(hub: Self.hub(immediate: immediate))
        let client = try await Self.open(server, user: "ann")
        try await waitUntil("registered") { await server.hub.clientCount == 1 }
        let connection = try #require(await server.hub.connections(source: "ann").first)
        try await waitUntil("head sent, reader waiting") { connection.mailbox.queuedCount == 0 && connection.bytesWritten == 0 }
        let tick = try EventType<String>("tick", marshal: .text)
        for index in 0..<100 {
            try await server.hub.send("\(index)", as: tick)
        }
        let text = try await client.read { $0.components(separatedBy: "data: ").count == 101 }
        #expect(text.components(separatedBy: "data: ").dropFirst().map { $0.prefix { $0 != "\n" } } == (0..<100).map { Substring("\($0)") })
        // Sequential sends to a client that keeps up: each finds the reader idle and writes.
        #expect(connection.mailbox.immediateWriteCount == (immediate ? 100 : 0))
        try await waitUntil("counted") { connection.bytesWritten == text.utf8.count }
        client.close()
        await server.stop()
    }

    @Test("a client too slow for the sender's write still gets every byte, in order, none dropped")
    func aSlowClientGetsEverything() async throws {
        let count = 3000
        let server = try TestServer.start(hub: Self.hub(capacity: count))
        let client = try await Self.open(server, user: "slow", receiveBuffer: 64 * 1024)
        try await waitUntil("registered") { await server.hub.clientCount == 1 }
        let connection = try #require(await server.hub.connections(source: "slow").first)
        let blob = try EventType<String>("blob", marshal: .text)
        // 1,000-byte events, one send each: the first ones go out from the send, until the
        // client's buffer is full and a write is cut mid-frame; the reader writes the rest.
        for index in 0..<count {
            try await server.hub.send("\(index) " + String(repeating: "x", count: 1000), as: blob)
        }
        #expect(connection.mailbox.immediateWriteCount > 0)
        #expect(connection.mailbox.immediateWriteCount < count, "the client's buffer never filled: the test proves nothing")
        let (data, ids, bytes) = try await Self.events(from: client, count: count)
        #expect(data.count == count)
        if let wrong = data.indices.first(where: { data[$0] != "\($0) " + String(repeating: "x", count: 1000) }) {
            Issue.record("event \(wrong) arrived as \(data[wrong].prefix(40))…")
        }
        #expect(Set(ids).count == count, "an event arrived twice")
        #expect(connection.droppedCount == 0)
        try await waitUntil("counted") { connection.bytesWritten == bytes }
        #expect(await server.hub.bytesWritten == bytes, "the hub's running total")
        client.close()
        await server.stop()
    }

    @Test("a client that resets while the send writes ends its stream as clientGone, and the hub forgets it")
    func aResetDuringImmediateWrites() async throws {
        let server = try TestServer.start(hub: Self.hub())
        let client = try await Self.open(server, user: "gone")
        try await waitUntil("registered") { await server.hub.clientCount == 1 }
        let connection = try #require(await server.hub.connections(source: "gone").first)
        client.reset()
        let blob = try EventType<String>("blob", marshal: .text)
        try await waitUntil("the stream ended") {
            _ = try? await server.hub.send(String(repeating: "y", count: 10_000), as: blob)
            return await server.hub.clientCount == 0
        }
        #expect(connection.mailbox.endReason == .clientGone)
        try await waitUntil("released") { server.server.connectionCount == 0 }
        await server.stop()
    }
}
