@testable import EventStreamKit
import Synchronization
import Testing

private let note = try! EventType<String>("note", marshal: .text)

/// What the sender logged, shared with the client tasks.
private final class SendLog: Sendable {
    let entries = Mutex<[(id: String, recipients: Recipients<Int>)]>([])

    func owed(to source: Int) -> [String] {
        entries.withLock { $0.filter { $0.recipients.includes(source: source, channels: channels(of: source)) }.map(\.id) }
    }
}

private func channels(of source: Int) -> Set<String> { source % 3 == 0 ? ["even3"] : [] }

@Suite("EventServer: backlog and replay")
struct EventServerReplayTests {
    @Test func aReconnectingClientGetsWhatItMissedBeforeLiveEvents() async throws {
        let server = EventServer<String>()
        let first = StreamRecorder(try await server.connect(source: "a"))
        try await server.send("1", as: note, to: .source("a"))
        let seen = try await first.waitForEvents(1)
        await first.cancel()
        try await server.send("2", as: note, to: .source("a"))
        try await server.send("for b", as: note, to: .source("b"))
        try await server.send("3", as: note)
        let again = StreamRecorder(try await server.connect(source: "a", lastEventID: seen.last!.lastEventID))
        try await server.send("4 live", as: note)
        #expect(try await again.waitForEvents(3).map(\.data) == ["2", "3", "4 live"])
        await again.cancel()
    }

    @Test("the welcome event comes first, before replay, and without its ID, so the client's last event ID is kept")
    func welcomeEventComesFirstWithoutID() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.welcomeEvent = try ServerSentEvent(id: "would-break-replay", event: "node", data: "alpha")
        let server = EventServer<String>(configuration: configuration)
        let first = StreamRecorder(try await server.connect(source: "a"))
        try await server.send("1", as: note)
        let seen = try await first.waitForEvents(2)
        #expect(seen.map(\.type) == ["node", "note"])
        #expect(seen[0].lastEventID == "")
        await first.cancel()
        try await server.send("2", as: note)
        let again = StreamRecorder(try await server.connect(source: "a", lastEventID: seen[1].lastEventID))
        let replayed = try await again.waitForEvents(2)
        #expect(replayed.map(\.type) == ["node", "note"])
        #expect(replayed.map(\.data) == ["alpha", "2"])
        // No `id:` line in it: a fresh parser's last event ID is still empty after it.
        #expect(replayed[0].lastEventID == "")
        await again.cancel()
    }

    @Test func anUnknownIDIsAGapWithResetEventAndRecovery() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.gapEvent = try ServerSentEvent(event: "reset", data: "")
        configuration.recovery = { source, lastEventID in
            [try! ServerSentEvent(event: "recovered", data: "\(source) after \(lastEventID)")]
        }
        let server = EventServer<String>(configuration: configuration)
        let lifecycle = await server.lifecycleEvents()
        let connection = try await server.connect(source: "a", lastEventID: "old-epoch-7")
        try await server.send("live", as: note)
        let a = StreamRecorder(connection)
        let events = try await a.waitForEvents(3)
        #expect(events.map(\.type) == ["reset", "recovered", "note"])
        #expect(events[1].data == "a after old-epoch-7")
        var gaps: [String] = []
        for await event in lifecycle {
            if case .replayGap(_, _, let id) = event { gaps.append(id); break }
        }
        #expect(gaps == ["old-epoch-7"])
        await a.cancel()
    }

    @Test func anIDFromBeforeARestartIsAGapNotAMisreadSequence() async throws {
        var before = EventServer<String>.Configuration()
        before.idGenerator = .epochSequence(epoch: "run1")
        let old = EventServer<String>(configuration: before)
        let oldID = try await old.send("x", as: note)  // run1-1
        var after = EventServer<String>.Configuration()
        after.idGenerator = .epochSequence(epoch: "run2")
        after.gapEvent = try ServerSentEvent(event: "reset", data: "")
        let server = EventServer<String>(configuration: after)
        for i in 0..<3 { try await server.send("\(i)", as: note) }
        let a = StreamRecorder(try await server.connect(source: "a", lastEventID: oldID))
        try await server.send("live", as: note)
        #expect(try await a.waitForEvents(2).map(\.type) == ["reset", "note"])
        #expect(a.events.last?.data == "live")
        await a.cancel()
    }

    @Test func anEvictedIDIsAGapAndCapacityCanChangeAtRunTime() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.backlogCapacity = 3
        let server = EventServer<String>(configuration: configuration)
        var ids: [String] = []
        for i in 0..<5 { ids.append(try await server.send("\(i)", as: note)) }
        #expect(await server.backlogCount == 3)
        // ids[1] is evicted: a gap. ids[2] is the oldest kept: replay 3 and 4.
        let gapped = StreamRecorder(try await server.connect(source: "g", lastEventID: ids[1]))
        let kept = StreamRecorder(try await server.connect(source: "k", lastEventID: ids[2]))
        #expect(try await kept.waitForEvents(2).map(\.data) == ["3", "4"])
        try await server.send("live", as: note)
        #expect(try await gapped.waitForEvents(1).map(\.data) == ["live"])
        await server.setBacklogCapacity(1)
        #expect(await server.backlogCount == 1)
        #expect(await server.backlogCapacity == 1)
        await gapped.cancel()
        await kept.cancel()
    }

    @Test func anIDEvictedByTheByteLimitIsAGap() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.backlogByteLimit = 2_500
        configuration.gapEvent = try ServerSentEvent(event: "reset", data: "")
        let server = EventServer<String>(configuration: configuration)
        var ids: [String] = []
        for i in 0..<4 { ids.append(try await server.send("\(i)" + String(repeating: "x", count: 1_000), as: note)) }
        #expect(await server.backlogCount == 2)  // each frame is a little over 1,000 bytes
        let gapped = StreamRecorder(try await server.connect(source: "g", lastEventID: ids[1]))
        let kept = StreamRecorder(try await server.connect(source: "k", lastEventID: ids[2]))
        try await server.send("live", as: note)
        #expect(try await gapped.waitForEvents(2).map(\.type) == ["reset", "note"])
        #expect(try await kept.waitForEvents(2).map { $0.data.prefix(1) } == ["3", "l"])
        await gapped.cancel()
        await kept.cancel()
    }

    @Test func replayHonoursChannelsAndPerSourceAddressing() async throws {
        let server = EventServer<String>()
        let start = try await server.send("before", as: note)
        try await server.send("news", as: note, to: .channel("news"))
        try await server.send("sport", as: note, to: .channel("sport"))
        try await server.send("to a", as: note, to: .source("a"))
        try await server.send("not a", as: note, to: .everyone(except: ["a"]))
        let a = StreamRecorder(try await server.connect(source: "a", channels: ["news"], lastEventID: start))
        try await server.send("end", as: note)
        #expect(try await a.waitForEvents(3).map(\.data) == ["news", "to a", "end"])
        await a.cancel()
    }

    /// Clients disconnect and reconnect at random while events are being sent; each must end
    /// up with exactly the events addressed to it, in order, no gap, no duplicate.
    @Test("exactly-once replay under reconnect churn", arguments: [1, 2, 3] as [UInt64])
    func exactlyOnceReplay(seed: UInt64) async throws {
        let sourceCount = 12
        let eventCount = 1500
        var configuration = EventServer<Int>.Configuration()
        configuration.backlogCapacity = eventCount + 10
        configuration.queueCapacity = eventCount + 10  // no overflow: this test is about replay
        let server = EventServer<Int>(configuration: configuration)
        let log = SendLog()

        // Every client connects once before the first send, so every event is owed to it.
        var firstConnections: [EventConnection<Int>] = []
        for source in 0..<sourceCount {
            firstConnections.append(try await server.connect(source: source, channels: channels(of: source)))
        }

        let received = try await withDeadline(.seconds(60), "every client to catch up") { [firstConnections] in
            try await withThrowingTaskGroup(of: (Int, [String]).self) { group in
                group.addTask {
                    var random = SeededGenerator(seed: seed)
                    for i in 0...eventCount {
                        let pick = i == eventCount ? 0 : Int.random(in: 0..<5, using: &random)
                        let recipients: Recipients<Int> = switch pick {
                        case 0: .everyone
                        case 1: .source(Int.random(in: 0..<sourceCount, using: &random))
                        case 2: .only([Int.random(in: 0..<sourceCount, using: &random), Int.random(in: 0..<sourceCount, using: &random)])
                        case 3: .everyone(except: [Int.random(in: 0..<sourceCount, using: &random)])
                        default: .channel("even3")
                        }
                        // The last event, "done", is owed to everyone: each client reads until it has it.
                        let id = try await server.send(i == eventCount ? "done" : "e\(i)", as: note, to: recipients)
                        log.entries.withLock { $0.append((id, recipients)) }
                        if i % 50 == 0 { await Task.yield() }
                    }
                    return (-1, [])
                }
                for source in 0..<sourceCount {
                    let firstConnection = firstConnections[source]
                    group.addTask {
                        var random = SeededGenerator(seed: seed &* 1000 &+ UInt64(source))
                        var ids: [String] = []
                        var connection = firstConnection
                        var done = false
                        // A cancelled client (the deadline passed) must stop, not reconnect forever.
                        while !done && !Task.isCancelled {
                            var parser = EventStreamParser()
                            var iterator: EventConnection<Int>.Body.AsyncIterator? = connection.body.makeAsyncIterator()
                            let toRead = Int.random(in: 1...40, using: &random)
                            var read = 0
                            while !done, read < toRead, let chunk = await iterator!.next() {
                                for case .event(let event) in try parser.parse(chunk) {
                                    ids.append(event.lastEventID)
                                    read += 1
                                    if event.data == "done" { done = true }
                                }
                            }
                            iterator = nil  // the client goes away, mid-stream
                            if !done {
                                connection = try await server.connect(source: source, channels: channels(of: source), lastEventID: ids.last)
                            }
                        }
                        return (source, ids)
                    }
                }
                var received: [Int: [String]] = [:]
                for try await (source, ids) in group where source >= 0 { received[source] = ids }
                return received
            }
        }

        #expect(log.entries.withLock { $0.count } == eventCount + 1)
        for source in 0..<sourceCount {
            let owed = log.owed(to: source)
            #expect(received[source] == owed, "source \(source), seed \(seed): got \(received[source]?.count ?? 0) of \(owed.count)")
        }
    }
}

@Suite("EventServer: tee")
struct EventServerTeeTests {
    @Test func teeReadsBacklogSinceAnIDThenLiveEventsWithoutGapOrDuplicate() async throws {
        let server = EventServer<String>()
        let first = try await server.send("1", as: note)
        let second = try await server.send("2", as: note, to: .source("x"))
        let tee = await server.tee(after: first)
        let third = try await server.send("3", as: note, to: .channel("c"))
        await server.shutdown()  // ends the tee
        var ids: [String] = []
        var frames: [String] = []
        for await event in tee {
            ids.append(event.id)
            frames.append(String(decoding: event.frame?.bytes ?? [], as: UTF8.self))
        }
        #expect(ids == [second, third])
        #expect(frames.last == "id: \(third)\nevent: note\ndata: 3\n\n")
    }

    @Test func teeWithoutAnIDStartsLive() async throws {
        let server = EventServer<String>()
        try await server.send("old", as: note)
        let tee = await server.tee()
        let live = try await server.send("new", as: note)
        await server.shutdown()
        var ids: [String] = []
        for await event in tee { ids.append(event.id) }
        #expect(ids == [live])
    }
}
