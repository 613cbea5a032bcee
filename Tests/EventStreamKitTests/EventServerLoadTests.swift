@testable import EventStreamKit
import Synchronization
import Testing

private let note = try! EventType<String>("note", marshal: .text)

/// A send target described independently of ``Recipients``, so that the expected result
/// is not computed by the code under test.
private enum Target {
    case source(Int), only([Int]), except([Int]), channel(String), everyone, everyChannel

    var recipients: Recipients<Int> {
        switch self {
        case .source(let s): .source(s)
        case .only(let s): .only(Set(s))
        case .except(let s): .everyone(except: Set(s))
        case .channel(let c): .channel(c)
        case .everyone: .everyone
        case .everyChannel: .everyChannel
        }
    }

    func reaches(_ source: Int) -> Bool {
        switch self {
        case .source(let s): s == source
        case .only(let s): s.contains(source)
        case .except(let s): !s.contains(source)
        case .channel(let c): channelNames(of: source).contains(c)
        case .everyone: true
        case .everyChannel: !channelNames(of: source).isEmpty
        }
    }
}

/// Source i is in channel "c(i % 5)", and sources divisible by 7 in no channel at all.
private func channelNames(of source: Int) -> Set<String> { source % 7 == 0 ? [] : ["c\(source % 5)"] }

private final class WeakConnection: Sendable {
    weak let connection: EventConnection<Int>?
    init(_ connection: EventConnection<Int>) { self.connection = connection }
}

@Suite("EventServer: isolation, fan-out and slow clients")
struct EventServerLoadTests {
    @Test func fiftySourcesEachReceiveExactlyWhatWasAddressedToThem() async throws {
        let server = EventServer<Int>()
        var recorders: [Int: StreamRecorder] = [:]
        for source in 0..<50 { recorders[source] = StreamRecorder(try await server.connect(source: source, channels: channelNames(of: source))) }
        var random = SeededGenerator(seed: 50)
        var sent: [(data: String, target: Target)] = []
        for i in 0..<400 {
            let target: Target = switch Int.random(in: 0..<6, using: &random) {
            case 0: .source(Int.random(in: 0..<50, using: &random))
            case 1: .only((0..<3).map { _ in Int.random(in: 0..<50, using: &random) })
            case 2: .except((0..<10).map { _ in Int.random(in: 0..<50, using: &random) })
            case 3: .channel("c\(Int.random(in: 0..<5, using: &random))")
            case 4: .everyChannel
            default: .everyone
            }
            try await server.send("m\(i)", as: note, to: target.recipients)
            sent.append(("m\(i)", target))
        }
        try await server.send("end", as: note)
        for source in 0..<50 {
            let expected = sent.filter { $0.target.reaches(source) }.map(\.data) + ["end"]
            let received = try await recorders[source]!.waitForEvents(expected.count)
            // Wait for "end", which everyone gets last: nothing can arrive after it.
            #expect(received.map(\.data) == expected, "source \(source)")
        }
        for recorder in recorders.values { await recorder.cancel() }
    }

    @Test func aBroadcastToAThousandConnectionsMarshalsOnceAndSharesOneFrame() async throws {
        let calls = Counter()
        let counted = try EventType<String>("counted", marshal: EventMarshal { value in
            calls.increment()
            return Array(value.utf8)
        })
        let server = EventServer<Int>()
        var connections: [EventConnection<Int>] = []
        for source in 0..<1000 { connections.append(try await server.connect(source: source)) }
        try await server.send("payload", as: counted)
        #expect(calls.value.load(ordering: .relaxed) == 1)
        var chunks: Set<[UInt8]> = []
        for connection in connections {
            var iterator = connection.body.makeAsyncIterator()
            if let chunk = await iterator.next() { chunks.insert(chunk) }
        }
        #expect(chunks.count == 1)  // every recipient got the same bytes
        #expect(await server.deliveries == 1000)
        await server.shutdown()
    }

    @Test(arguments: [OverflowPolicy.dropOldest, .disconnect, .coalesce])
    func aStalledClientAmongAThousandDelaysNobodyAndStaysBounded(policy: OverflowPolicy) async throws {
        var configuration = EventServer<Int>.Configuration()
        configuration.queueCapacity = 32
        configuration.overflowPolicy = policy
        let server = EventServer<Int>(configuration: configuration)
        let lifecycle = await server.lifecycleEvents(bufferSize: 100_000)
        let stalled = try await server.connect(source: -1)  // never read
        var readers: [StreamRecorder] = []
        for source in 0..<1000 { readers.append(StreamRecorder(try await server.connect(source: source))) }
        let bursts = 5, perBurst = 20
        for burst in 0..<bursts {
            for i in 0..<perBurst { try await server.send("b\(burst)-\(i)", as: note) }
            // Every reader keeps up with each burst; the stalled one never does.
            for reader in readers { try await reader.waitForEvents((burst + 1) * perBurst) }
            #expect(stalled.mailbox.queuedCount <= configuration.queueCapacity)
        }
        let total = bursts * perBurst
        for reader in readers { #expect(reader.events.count == total) }
        switch policy {
        case .disconnect:
            #expect(stalled.mailbox.endReason == .slowClient)
            #expect(await server.clientCount(source: -1) == 0)
        case .coalesce:
            // All events share one name: older ones give way to newer, the queue shrinks.
            #expect(stalled.droppedCount == total - stalled.mailbox.queuedCount)
            #expect(stalled.droppedCount > 0)
        default:
            #expect(stalled.mailbox.queuedCount == configuration.queueCapacity)
            #expect(stalled.droppedCount == total - configuration.queueCapacity)
        }
        var reportedDrops = 0
        for await event in lifecycle {
            if case .droppedEvents(-1, _, let count) = event { reportedDrops += count }
            if reportedDrops >= stalled.droppedCount { break }
        }
        #expect(reportedDrops == stalled.droppedCount)
        #expect(await server.droppedFrames == stalled.droppedCount)
        for reader in readers { await reader.cancel() }
    }

    @Test func coalescingKeepsTheNewestTickPerName() async throws {
        var configuration = EventServer<Int>.Configuration()
        configuration.queueCapacity = 4
        configuration.overflowPolicy = .coalesce
        let server = EventServer<Int>(configuration: configuration)
        let connection = try await server.connect(source: 1)
        let price = try EventType<Int>("price", marshal: .text)
        let chat = try EventType<String>("chat", marshal: .text)
        try await server.send("hello", as: chat)
        for p in 1...10 { try await server.send(p, as: price) }
        let reader = StreamRecorder(connection)
        let events = try await reader.waitForEvents(2)
        #expect(events.map(\.data) == ["hello", "10"])
        await reader.cancel()
    }

    @Test func suspendSenderWaitsForTheClientThenDisconnectsIt() async throws {
        var configuration = EventServer<Int>.Configuration()
        configuration.queueCapacity = 2
        configuration.overflowPolicy = .suspendSender(timeout: .milliseconds(50))
        let server = EventServer<Int>(configuration: configuration)
        let slow = try await server.connect(source: 1)
        let fast = StreamRecorder(try await server.connect(source: 2))
        for i in 0..<2 { try await server.send("\(i)", as: note) }
        // The queue is full: this send waits, then gives up on the slow client.
        try await server.send("2", as: note)
        #expect(slow.mailbox.endReason == .slowClient)
        #expect(await server.clientCount == 1)
        #expect(try await fast.waitForEvents(3).map(\.data) == ["0", "1", "2"])

        // A client that reads in time loses nothing.
        let keeping = try await server.connect(source: 3)
        let reader = Task {
            var parser = EventStreamParser()
            var data: [String] = []
            for await chunk in keeping.body {
                for case .event(let event) in try parser.parse(chunk) { data.append(event.data) }
                if data.count == 20 { break }
            }
            return data
        }
        for i in 0..<20 { try await server.send("k\(i)", as: note, to: .source(3)) }
        #expect(try await reader.value == (0..<20).map { "k\($0)" })
        await fast.cancel()
    }

    @Test func tenThousandConnectDisconnectCyclesLeaveNothingBehind() async throws {
        let server = EventServer<Int>()
        let gone = Counter()
        var sample: [WeakConnection] = []
        for cycle in 0..<10_000 {
            let connection = try await server.connect(source: cycle % 100, channels: cycle % 2 == 0 ? ["c\(cycle % 10)"] : [])
            switch cycle % 4 {
            case 0:  // the reader is cancelled
                let reader = Task { for await _ in connection.body {} }
                reader.cancel()
                await reader.value
            case 1:  // the server closes it
                await connection.close()
            case 2:  // the host drops the body's iterator early
                var iterator: EventConnection<Int>.Body.AsyncIterator? = connection.body.makeAsyncIterator()
                _ = iterator
                iterator = nil
            default:  // a sink write fails
                let sink = RecordingSink()
                sink.fail()
                await server.comment("x", to: .source(cycle % 100))
                _ = try await connection.run(writingTo: sink)
            }
            gone.increment()
            if cycle % 500 == 0 { sample.append(WeakConnection(connection)) }
        }
        try await waitUntil("the registry to empty") { await server.clientCount == 0 }
        #expect(await server.sources.isEmpty)
        #expect(await server.channels.isEmpty)
        // Nothing holds a connection any more: no reader task, no registry entry.
        try await waitUntil("connections to be released") { [sample] in sample.allSatisfy { $0.connection == nil } }
        #expect(sample.count == 20)
        #expect(gone.value.load(ordering: .relaxed) == 10_000)
    }
}
