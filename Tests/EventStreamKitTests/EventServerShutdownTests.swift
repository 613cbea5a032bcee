@testable import EventStreamKit
import Testing

private let note = try! EventType<String>("note", marshal: .text)

@Suite("EventServer: shutdown and restart")
struct EventServerShutdownTests {
    @Test func shutdownEndsEveryStreamAndAccountsForEveryQueuedFrame() async throws {
        var configuration = EventServer<Int>.Configuration()
        configuration.retry = .seconds(2)
        configuration.reconnectSpread = .seconds(4)
        configuration.shutdownGracePeriod = .milliseconds(300)
        let server = EventServer<Int>(configuration: configuration)
        let running = Task { await server.run() }
        let lifecycle = await server.lifecycleEvents(bufferSize: 10_000)

        var unread: [EventConnection<Int>] = []  // clients that stopped reading
        for source in 0..<10 { unread.append(try await server.connect(source: -source - 1)) }
        var readers: [EventConnection<Int>] = []
        for source in 0..<990 { readers.append(try await server.connect(source: source)) }
        for i in 0..<5 { try await server.send("queued \(i)", as: note) }
        // Readers start only now, so their five events are still queued at shutdown.
        let recorders = readers.map(StreamRecorder.init)

        await server.shutdown()
        await running.value  // run() returns once the hub is down
        #expect(await server.clientCount == 0)

        var retries: Set<Duration> = []
        for recorder in recorders {
            try await recorder.waitForEnd()
            #expect(recorder.data == (0..<5).map { "queued \($0)" })
            #expect(recorder.retries.count == 2)  // the opening one, then the jittered one
            if let last = recorder.retries.last {
                #expect(last >= .seconds(2) && last < .seconds(6))
                retries.insert(last)
            }
        }
        #expect(retries.count > 100)  // spread out, not one instant for everybody
        for connection in unread {
            // Retry on open + 5 events + the final retry: queued, never written, all counted.
            #expect(connection.droppedCount == 7)
            #expect(connection.mailbox.endReason == .shutdown)
        }
        #expect(await server.droppedFrames == 70)

        let error = await #expect(throws: EventServerError.self) { try await server.connect(source: 1) }
        #expect(error?.code == .shutDown)
        var disconnects = 0
        for await event in lifecycle { if case .disconnected = event { disconnects += 1 } }  // ends with the hub
        #expect(disconnects == 1000)
    }

    @Test func restartClosesEveryStreamAndAcceptsReconnections() async throws {
        let server = EventServer<String>()
        let first = StreamRecorder(try await server.connect(source: "a"))
        let id = try await server.send("before", as: note)
        _ = try await first.waitForEvents(1)
        await server.reconnectAll()
        try await first.waitForEnd()
        #expect(first.retries.count == 1)
        try await server.send("while away", as: note)
        let again = StreamRecorder(try await server.connect(source: "a", lastEventID: id))
        #expect(try await again.waitForEvents(1).map(\.data) == ["while away"])
        await again.cancel()
    }

    @Test func cancellingRunShutsDownGracefully() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.heartbeatInterval = nil
        let server = EventServer<String>(configuration: configuration)
        let a = StreamRecorder(try await server.connect(source: "a"))
        try await server.send("x", as: note)
        let running = Task { await server.run() }
        try await a.waitForEvents(1)
        running.cancel()
        await running.value
        try await a.waitForEnd()
        #expect(a.retries.count == 1)
        #expect(await server.clientCount == 0)
    }
}
