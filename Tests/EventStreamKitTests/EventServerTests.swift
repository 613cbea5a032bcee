@testable import EventStreamKit
import Testing

private let note = try! EventType<String>("note", marshal: .text)

@Suite("EventServer: sending and registry")
struct EventServerTests {
    @Test func aSourceReceivesWhatIsSentToItInOrder() async throws {
        let server = EventServer<String>()
        let alice = StreamRecorder(try await server.connect(source: "alice"))
        for i in 1...5 { try await server.send("n\(i)", as: note, to: .source("alice")) }
        let events = try await alice.waitForEvents(5)
        #expect(events.map(\.data) == ["n1", "n2", "n3", "n4", "n5"])
        #expect(events.allSatisfy { $0.type == "note" })
        await alice.cancel()
    }

    @Test func idsAreAssignedStrictlyIncreasingWithAnEpoch() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.idGenerator = .epochSequence(epoch: "ep")
        let server = EventServer<String>(configuration: configuration)
        let a = StreamRecorder(try await server.connect(source: "a"))
        var ids: [String] = []
        for i in 0..<3 { ids.append(try await server.send("\(i)", as: note)) }
        #expect(ids == ["ep-1", "ep-2", "ep-3"])
        #expect(try await a.waitForEvents(3).map(\.lastEventID) == ids)
        #expect(await server.lastEventID == "ep-3")
        await a.cancel()
    }

    @Test func recipientsOnlyAndExcept() async throws {
        let server = EventServer<String>()
        let names = ["a", "b", "c"]
        var recorders: [String: StreamRecorder] = [:]
        for name in names { recorders[name] = StreamRecorder(try await server.connect(source: name)) }
        try await server.send("only-ab", as: note, to: .only(["a", "b"]))
        try await server.send("except-a", as: note, to: .everyone(except: ["a"]))
        try await server.send("all", as: note)
        #expect(try await recorders["a"]!.waitForEvents(2).map(\.data) == ["only-ab", "all"])
        #expect(try await recorders["b"]!.waitForEvents(3).map(\.data) == ["only-ab", "except-a", "all"])
        #expect(try await recorders["c"]!.waitForEvents(2).map(\.data) == ["except-a", "all"])
        for recorder in recorders.values { await recorder.cancel() }
    }

    @Test func severalTabsOfOneSourceEachGetTheEvent() async throws {
        let server = EventServer<String>()
        let tabs = [StreamRecorder(try await server.connect(source: "u")), StreamRecorder(try await server.connect(source: "u"))]
        #expect(await server.clientCount(source: "u") == 2)
        try await server.send("hi", as: note, to: .source("u"))
        for tab in tabs { #expect(try await tab.waitForEvents(1).map(\.data) == ["hi"]) }
        for tab in tabs { await tab.cancel() }
    }

    @Test func aThrowingMarshalSendsNothingAndLaterEventsFlow() async throws {
        struct Boom: Error {}
        let failing = try EventType<Int>("n", marshal: EventMarshal { _ in throw Boom() })
        let server = EventServer<String>()
        let a = StreamRecorder(try await server.connect(source: "a"))
        let error = await #expect(throws: WireError.self) { try await server.send(1, as: failing) }
        #expect(error?.code == .marshalFailed)
        try await server.send("after", as: note)
        #expect(try await a.waitForEvents(1).map(\.data) == ["after"])
        #expect(await server.eventsSent == 1)
        await a.cancel()
    }

    @Test func perRecipientPayloadsSeeSourceAndClientLastEventID() async throws {
        let server = EventServer<String>()
        _ = try await server.send("seed", as: note)
        let first = try await server.send("x", as: note)
        let a = StreamRecorder(try await server.connect(source: "a", lastEventID: first))
        let b = StreamRecorder(try await server.connect(source: "b"))
        try await server.send(as: note) { source, lastEventID in "\(source):\(lastEventID ?? "-")" }
        #expect(try await a.waitForEvents(1).map(\.data) == ["a:\(first)"])
        #expect(try await b.waitForEvents(1).map(\.data) == ["b:-"])
        // Once a newer event reached it, the client's last event ID is reset.
        try await server.send(as: note) { source, lastEventID in "\(source):\(lastEventID ?? "-")" }
        #expect(try await a.waitForEvents(2).map(\.data) == ["a:\(first)", "a:-"])
        await a.cancel()
        await b.cancel()
    }

    @Test func rawEventsAndComments() async throws {
        let server = EventServer<String>()
        let connection = try await server.connect(source: "a")
        let a = StreamRecorder(connection)
        try await server.send(try ServerSentEvent(event: "raw", data: "r"))
        try await server.send(try ServerSentEvent(id: "custom-id", data: "c"))
        await server.comment("just saying")
        let events = try await a.waitForEvents(2)
        #expect(events.map(\.type) == ["raw", "message"])
        #expect(events.last?.lastEventID == "custom-id")
        try await waitUntil("the comment") { a.comments == 1 }
        await a.cancel()
    }

    @Test func retryIsSentOnOpenAndWhenChanged() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.retry = .seconds(2)
        let server = EventServer<String>(configuration: configuration)
        let a = StreamRecorder(try await server.connect(source: "a"))
        try await waitUntil("the opening retry") { a.retries == [.seconds(2)] }
        await server.setRetry(.milliseconds(7500))
        try await waitUntil("the changed retry") { a.retries == [.seconds(2), .milliseconds(7500)] }
        let b = StreamRecorder(try await server.connect(source: "b"))
        try await waitUntil("the new retry on a new stream") { b.retries == [.milliseconds(7500)] }
        await a.cancel()
        await b.cancel()
    }

    @Test func heartbeatsGoOnlyToIdleStreams() async throws {
        let server = EventServer<String>()
        let idle = StreamRecorder(try await server.connect(source: "idle"))
        let busy = StreamRecorder(try await server.connect(source: "busy"))
        await server.sendHeartbeats()  // first tick: both idle since connect
        try await waitUntil("first heartbeats") { idle.comments == 1 && busy.comments == 1 }
        try await server.send("x", as: note, to: .source("busy"))
        _ = try await busy.waitForEvents(1)
        await server.sendHeartbeats()
        try await waitUntil("second heartbeat") { idle.comments == 2 }
        #expect(busy.comments == 1)  // it had an event since the last tick
        await idle.cancel()
        await busy.cancel()
    }

    @Test func runDrivesHeartbeatsWithOneTimer() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.heartbeatInterval = .milliseconds(20)
        let server = EventServer<String>(configuration: configuration)
        let a = StreamRecorder(try await server.connect(source: "a"))
        let running = Task { await server.run() }
        try await waitUntil("three heartbeats") { a.comments >= 3 }
        running.cancel()
        await running.value  // cancellation shuts the hub down, and run returns
        try await a.waitForEnd()
        #expect(await server.clientCount == 0)
    }
}

@Suite("EventServer: duplicate sources")
struct EventServerDuplicateTests {
    @Test func refuseNewRejectsASecondConnection() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.duplicateSourcePolicy = .refuseNew
        let server = EventServer<String>(configuration: configuration)
        let first = StreamRecorder(try await server.connect(source: "cid"))
        let error = await #expect(throws: EventServerError.self) { try await server.connect(source: "cid") }
        #expect(error?.code == .duplicateSource)
        #expect(await server.clientCount == 1)
        await first.cancel()
        #expect(await server.clientCount == 0)
        _ = try await server.connect(source: "cid")  // free again
    }

    @Test func replaceExistingEndsTheOldStream() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.duplicateSourcePolicy = .replaceExisting
        let server = EventServer<String>(configuration: configuration)
        let old = StreamRecorder(try await server.connect(source: "u"))
        let new = StreamRecorder(try await server.connect(source: "u"))
        try await old.waitForEnd()
        try await server.send("x", as: note, to: .source("u"))
        #expect(try await new.waitForEvents(1).map(\.data) == ["x"])
        #expect(await server.clientCount == 1)
        await new.cancel()
    }

    @Test func limitEvictsTheOldest() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.duplicateSourcePolicy = .limit(2)
        let server = EventServer<String>(configuration: configuration)
        let lifecycle = await server.lifecycleEvents()
        let first = try await server.connect(source: "u")
        let recorders = [StreamRecorder(first), StreamRecorder(try await server.connect(source: "u")), StreamRecorder(try await server.connect(source: "u"))]
        try await recorders[0].waitForEnd()
        #expect(await server.clientCount(source: "u") == 2)
        var reasons: [DisconnectReason] = []
        for await event in lifecycle {
            if case .disconnected(_, let id, let reason) = event, id == first.id {
                reasons.append(reason)
                break
            }
        }
        #expect(reasons == [.evicted])
        for recorder in recorders { await recorder.cancel() }
    }
}

@Suite("EventServer: channels and lifecycle")
struct EventServerChannelTests {
    @Test func channelsListCountLastIDAndClose() async throws {
        let server = EventServer<String>()
        let a = StreamRecorder(try await server.connect(source: "a", channels: ["news", "sport"]))
        let b = StreamRecorder(try await server.connect(source: "b", channels: ["news"]))
        let c = StreamRecorder(try await server.connect(source: "c"))
        #expect(Set(await server.channels) == ["news", "sport"])
        #expect(await server.clientCount(channel: "news") == 2)
        let id = try await server.send("headline", as: note, to: .channel("news"))
        #expect(await server.lastEventID(channel: "news") == id)
        #expect(await server.lastEventID(channel: "sport") == nil)
        try await server.send("every channel", as: note, to: .everyChannel)
        #expect(try await a.waitForEvents(2).map(\.data) == ["headline", "every channel"])
        #expect(try await b.waitForEvents(2).map(\.data) == ["headline", "every channel"])
        await server.close(channel: "news")
        try await a.waitForEnd()
        try await b.waitForEnd()
        #expect(await server.channels.isEmpty)  // sport's only subscriber was a
        #expect(c.events.isEmpty)
        #expect(await server.clientCount == 1)
        await c.cancel()
    }

    @Test func lifecycleReportsConnectReconnectAndDisconnect() async throws {
        let server = EventServer<String>()
        let events = await server.lifecycleEvents()
        let id = try await server.send("x", as: note)
        let first = try await server.connect(source: "a")
        let second = try await server.connect(source: "a", lastEventID: id)
        await server.close(source: "a")
        var seen: [LifecycleEvent<String>] = []
        for await event in events {
            seen.append(event)
            if seen.count == 4 { break }
        }
        #expect(seen == [
            .connected(source: "a", connection: first.id),
            .reconnected(source: "a", connection: second.id, lastEventID: id),
            .disconnected(source: "a", connection: first.id, reason: .closedByServer),
            .disconnected(source: "a", connection: second.id, reason: .closedByServer),
        ] || seen == [
            .connected(source: "a", connection: first.id),
            .reconnected(source: "a", connection: second.id, lastEventID: id),
            .disconnected(source: "a", connection: second.id, reason: .closedByServer),
            .disconnected(source: "a", connection: first.id, reason: .closedByServer),
        ])
        #expect(await server.sources.isEmpty)
    }

    @Test func aConnectionHasOneReader() async throws {
        let server = EventServer<String>()
        let connection = try await server.connect(source: "a")
        var first = connection.body.makeAsyncIterator()  // claims the stream
        await #expect(throws: EventServerError.self) { try await connection.run(writingTo: RecordingSink()) }
        var second = connection.body.makeAsyncIterator()
        #expect(await second.next() == nil)
        try await server.send("x", as: note)
        #expect(await first.next() != nil)  // the first reader is unaffected
        await connection.close()
        #expect(await first.next() == nil)
        #expect(await server.clientCount == 0)
    }

    @Test func clientLeftEndsAWaitingReaderAndDropsWhatIsQueued() async throws {
        let server = EventServer<String>()
        let events = await server.lifecycleEvents()
        let connection = try await server.connect(source: "a")
        let reading = Task {
            var chunks = 0
            for await _ in connection.body { chunks += 1 }
            return chunks
        }
        try await server.send("read", as: note)
        try await waitUntil("the reader took the event") { connection.bytesWritten > 0 }
        connection.clientLeft()  // as a host's disconnect probe calls it, from any thread
        #expect(await reading.value == 1)
        #expect(await server.clientCount == 0)
        connection.clientLeft()  // a second call, after the end, does nothing

        // What was queued and not yet read counts as dropped.
        let queued = try await server.connect(source: "b")
        try await server.send("never read", as: note)
        queued.clientLeft()
        #expect(queued.droppedCount == 1)
        var iterator = queued.body.makeAsyncIterator()
        #expect(await iterator.next() == nil)
        #expect(await server.clientCount == 0)

        var reasons: [DisconnectReason] = []
        for await event in events {
            if case .disconnected(_, _, let reason) = event { reasons.append(reason) }
            if reasons.count == 2 { break }
        }
        #expect(reasons == [.clientGone, .clientGone])
    }

    @Test("clientLeft() takes a connection out of the hub although its body is never read: a host that drops the body unrun (its channel closed first) leaks nothing")
    func clientLeftForgetsABodyNeverRead() async throws {
        let server = EventServer<String>()
        let events = await server.lifecycleEvents()
        let connection = try await server.connect(source: "a")
        try await server.send("never read", as: note)
        connection.clientLeft()
        connection.clientLeft()  // the host's handler may see the input close, then the channel go
        try await waitUntil("the hub forgot it") { await server.clientCount == 0 }
        var reasons: [DisconnectReason] = []
        for await event in events {
            if case .disconnected(_, _, let reason) = event { reasons.append(reason) }
            if case .droppedEvents = event { continue }
            if !reasons.isEmpty { break }
        }
        #expect(reasons == [.clientGone])
        // A body read after all (late) ends at once, and nothing is reported twice.
        var iterator = connection.body.makeAsyncIterator()
        #expect(await iterator.next() == nil)
        #expect(await server.clientCount == 0)
    }

    @Test("a host whose write was in flight when the client left, and that then stops iterating, leaves no connection in the hub")
    func clientLeftDuringAHostWrite() async throws {
        let server = EventServer<String>()
        let connection = try await server.connect(source: "a")
        try await server.send("in flight", as: note)
        var iterator: EventConnection<String>.Body.AsyncIterator? = connection.body.makeAsyncIterator()
        #expect(await iterator?.next() != nil)  // the host now writes this chunk...
        connection.clientLeft()  // ...the client goes meanwhile...
        iterator = nil  // ...the write fails and the host breaks out of its loop
        try await waitUntil("the hub forgot it") { await server.clientCount == 0 }
        #expect(iterator == nil)

        // The same when the stream ended by its mailbox alone (as a transport's own watch
        // ends it): the dropped iterator, which never saw the end, tells the hub.
        let other = try await server.connect(source: "b")
        try await server.send("in flight", as: note)
        var reader: EventConnection<String>.Body.AsyncIterator? = other.body.makeAsyncIterator()
        #expect(await reader?.next() != nil)
        other.mailbox.finish(.clientGone, drain: false)
        reader = nil
        try await waitUntil("the hub forgot the other") { await server.clientCount == 0 }
        #expect(reader == nil)
    }

    @Test func runWritesEachWakeUpInOneWriteAndLeavesWhenTheSinkFails() async throws {
        let server = EventServer<String>()
        let connection = try await server.connect(source: "a")
        try await server.send("1", as: note)
        try await server.send("2", as: note)
        let sink = RecordingSink()
        let running = Task { try await connection.run(writingTo: sink) }
        try await waitUntil("the first write") { !sink.chunks.isEmpty }
        #expect(sink.chunks.count == 1)  // both queued events in one write
        #expect(sink.text == "id: \(await server.lastEventID!.dropLast(2))-1\nevent: note\ndata: 1\n\nid: \(await server.lastEventID!.dropLast(2))-2\nevent: note\ndata: 2\n\n")
        sink.fail()
        try await server.send("3", as: note)
        #expect(try await running.value == .clientGone)
        #expect(await server.clientCount == 0)
        #expect(connection.bytesWritten == sink.bytes.count)
        // The hub keeps counting what ended connections wrote.
        #expect(await server.bytesWritten == sink.bytes.count)
    }
}

@Suite("EventServer: bursts")
struct EventServerBurstTests {
    @Test func sendContentsOfQueuesABurstInOrderForOneWakeUpAndOneWrite() async throws {
        let server = EventServer<String>()
        let connection = try await server.connect(source: "a")
        let ids = try await server.send(contentsOf: (1...10).map { "t\($0)" }, as: note)
        #expect(ids.count == 10 && Set(ids).count == 10)
        #expect(await server.deliveries == 10)
        let sink = RecordingSink()
        let running = Task { try await connection.run(writingTo: sink) }
        try await waitUntil("the burst") { !sink.chunks.isEmpty }
        #expect(sink.chunks.count == 1)
        var parser = EventStreamParser()
        let events = try parser.parse(sink.bytes).compactMap { if case .event(let e) = $0 { e } else { nil } }
        #expect(events.map(\.data) == (1...10).map { "t\($0)" })
        #expect(events.map(\.lastEventID) == ids)
        // The burst is in the backlog like any other events.
        let late = StreamRecorder(try await server.connect(source: "b", lastEventID: ids[6]))
        #expect(try await late.waitForEvents(3).map(\.data) == ["t8", "t9", "t10"])
        await late.cancel()
        running.cancel()
        _ = try await running.value
    }

    @Test func aFailingMarshalInABurstSendsNothing() async throws {
        struct Boom: Error {}
        let picky = try EventType<Int>("n", marshal: EventMarshal { value in
            if value == 3 { throw Boom() }
            return Array(String(value).utf8)
        })
        let server = EventServer<String>()
        _ = try await server.connect(source: "a")
        await #expect(throws: WireError.self) { try await server.send(contentsOf: [1, 2, 3, 4], as: picky) }
        #expect(await server.eventsSent == 0)
        #expect(await server.backlogCount == 0)
    }

    @Test func aBurstIntoAFullQueueFollowsThePolicy() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.queueCapacity = 4
        let server = EventServer<String>(configuration: configuration)
        let connection = try await server.connect(source: "a")
        try await server.send(contentsOf: (1...10).map(String.init), as: note)
        #expect(connection.droppedCount == 6)
        #expect(await server.droppedFrames == 6)
        let reader = StreamRecorder(connection)
        #expect(try await reader.waitForEvents(4).map(\.data) == ["7", "8", "9", "10"])
        await reader.cancel()
    }

    @Test("frames taken from the queue by a write that fails count as dropped: every frame is written or counted")
    func framesOfAFailedWriteCountAsDropped() async throws {
        let server = EventServer<String>()
        let connection = try await server.connect(source: "a")
        try await server.send(contentsOf: (1...5).map(String.init), as: note)
        let sink = RecordingSink()
        sink.fail()
        let reason = try await connection.run(writingTo: sink)
        #expect(reason == .clientGone)
        #expect(connection.droppedCount == 5)
        #expect(await server.droppedFrames == 5)
        #expect(await server.clientCount == 0)
    }

    @Test func aStalledClientHoldsNoMoreThanTheQueueByteLimit() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.queueByteLimit = 10_000
        let server = EventServer<String>(configuration: configuration)
        let connection = try await server.connect(source: "a")
        for index in 0..<20 { try await server.send("\(index)" + String(repeating: "x", count: 3_000), as: note) }
        #expect(connection.mailbox.queuedBytes <= 10_000)
        #expect(connection.mailbox.queuedCount == 3)  // three frames of a little over 3,000 bytes
        #expect(connection.droppedCount == 17)
        let reader = StreamRecorder(connection)
        #expect(try await reader.waitForEvents(3).map { $0.data.prefix(2) } == ["17", "18", "19"])
        await reader.cancel()
    }

    /// Many stalled clients, each within its own limit, must not add up without bound: the
    /// hub-wide limit keeps what all queues hold to the limit plus one frame per connection,
    /// a client that keeps up still gets every event, and every byte is given back.
    @Test func stalledClientsTogetherHoldNoMoreThanTheTotalLimit() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.queueByteLimit = 1 << 20
        configuration.totalQueueByteLimit = 20_000
        let server = EventServer<String>(configuration: configuration)
        var stalled: [EventConnection<String>] = []
        for index in 0..<10 { stalled.append(try await server.connect(source: "stalled \(index)")) }
        let reader = StreamRecorder(try await server.connect(source: "reader"))
        for index in 0..<40 {
            try await server.send("\(index)" + String(repeating: "x", count: 2_000), as: note)
            _ = try await reader.waitForEvents(index + 1)
            #expect(server.queuedBytes <= 20_000 + 11 * 2_100, "after event \(index): \(server.queuedBytes) bytes held")
        }
        #expect(try await reader.waitForEvents(40).count == 40, "a client that keeps up loses nothing")
        #expect(stalled.allSatisfy { $0.mailbox.queuedCount >= 1 }, "each stalled client keeps at least the newest")
        #expect(stalled.reduce(0) { $0 + $1.droppedCount } > 0)
        await reader.cancel()
        for connection in stalled { await server.close(source: connection.source) }
        stalled.removeAll()
        try await waitUntil("every byte given back") { server.queuedBytes == 0 }
    }
}
