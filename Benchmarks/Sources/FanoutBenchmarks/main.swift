import BenchmarkSupport
import EventStreamKit
import Synchronization

// In-process fan-out: deliveries per second (events x recipients / s) through the hub, to
// connections whose sinks only count bytes, next to a baseline in the same process: a plain
// loop that yields one shared frame into one AsyncStream per connection.
//
// Each round sends `burst` events and waits until every connection has received them; so
// "burst 1" is events one at a time, "burst 10" is bursts of ten.

/// Lets the producer wait until the consumers have received a number of frames in total.
final class Barrier: Sendable {
    private struct State {
        var received = 0
        var target = Int.max
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func add(_ count: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.received += count
            guard state.received >= state.target, let waiter = state.waiter else { return nil }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    func wait(until target: Int) async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.received >= target { return true }
                state.target = target
                state.waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }
}

/// Counts frames by bytes: every frame in this benchmark has the same size.
struct CountingSink: EventStreamSink {
    let frameSize: Int
    let barrier: Barrier

    nonisolated(nonsending) func write(_ chunk: [UInt8]) async throws {
        barrier.add(chunk.count / frameSize)
    }
}

let payload = String(repeating: "x", count: 100)

func hub(connections: Int, events: Int, burst: Int, batched: Bool = false) async -> Duration {
    var configuration = EventServer<Int>.Configuration()
    configuration.heartbeatInterval = nil
    configuration.idGenerator = EventIDGenerator { String(100_000_000 + $0) }  // fixed-size IDs
    let server = EventServer<Int>(configuration: configuration)
    let tick = try! EventType<String>("tick", marshal: .text)
    let frameSize = EventFrame(try! ServerSentEvent(id: "100000001", event: "tick", data: payload)).count
    let barrier = Barrier()
    return await withDiscardingTaskGroup { group in
        for source in 0..<connections {
            let connection = try! await server.connect(source: source)
            group.addTask { _ = try? await connection.run(writingTo: CountingSink(frameSize: frameSize, barrier: barrier)) }
        }
        let clock = ContinuousClock()
        let start = clock.now
        var sent = 0
        while sent < events {
            if batched {
                try! await server.send(contentsOf: repeatElement(payload, count: burst), as: tick)
            } else {
                for _ in 0..<burst { try! await server.send(payload, as: tick) }
            }
            sent += burst
            await barrier.wait(until: sent * connections)
        }
        let elapsed = clock.now - start
        await server.shutdown()
        return elapsed
    }
}

func baseline(connections: Int, events: Int, burst: Int) async -> Duration {
    let frame = EventFrame(try! ServerSentEvent(id: "100000001", event: "tick", data: payload))
    let barrier = Barrier()
    var continuations: [AsyncStream<EventFrame>.Continuation] = []
    return await withDiscardingTaskGroup { group in
        for _ in 0..<connections {
            let (stream, continuation) = AsyncStream<EventFrame>.makeStream(bufferingPolicy: .bufferingNewest(256))
            continuations.append(continuation)
            group.addTask {
                for await frame in stream { barrier.add(frame.count / frame.count) }
            }
        }
        let clock = ContinuousClock()
        let start = clock.now
        var sent = 0
        while sent < events {
            for _ in 0..<burst {
                for continuation in continuations { continuation.yield(frame) }
            }
            sent += burst
            await barrier.wait(until: sent * connections)
        }
        let elapsed = clock.now - start
        for continuation in continuations { continuation.finish() }
        return elapsed
    }
}

func median(_ runs: Int, _ body: () async -> Duration) async -> Duration {
    var durations: [Duration] = []
    for _ in 0..<runs { durations.append(await body()) }
    durations.sort()
    return durations[durations.count / 2]
}

func rate(_ deliveries: Int, _ duration: Duration) -> Double {
    let (s, atto) = duration.components
    return Double(deliveries) / (Double(s) + Double(atto) / 1e18)
}

func runAll() async {
    print("EventStreamKit fan-out benchmark (release build; medians of 5 runs)")
    print("deliveries/s = events x connections / s; sinks count bytes only")
    print()
    await runOverload()
    print()
    print("connections  burst             baseline (AsyncStream)   EventServer        ratio")
    for connections in [1, 100, 10_000] {
        for (burst, batched) in [(1, false), (10, false), (10, true)] {
            let events = connections == 10_000 ? 200 : (connections == 100 ? 2_000 : 20_000)
            let base = await median(5) { await baseline(connections: connections, events: events, burst: burst) }
            let ours = await median(5) { await hub(connections: connections, events: events, burst: burst, batched: batched) }
            let baseRate = rate(events * connections, base)
            let ourRate = rate(events * connections, ours)
            func m(_ x: Double) -> String { format2(x / 1e6) + " M/s" }
            let label: String = batched ? "10 contentsOf" : (burst > 1 ? "10 sends" : "1")
            let row: [String] = [String(connections).padding(13), label.padding(18), m(baseRate).padding(25), m(ourRate).padding(19)]
            print(row.joined() + format2(ourRate / baseRate) + "x")
        }
    }
}

/// Sends `events` events, cycling through `names` event names, to `connections` connections
/// that never read: after the first 256 every enqueue meets a full queue and its policy.
func overload(policy: OverflowPolicy, names: Int, connections: Int, events: Int) async -> Duration {
    var configuration = EventServer<Int>.Configuration()
    configuration.heartbeatInterval = nil
    configuration.overflowPolicy = policy
    let server = EventServer<Int>(configuration: configuration)
    let types = (0..<names).map { try! EventType<String>("name\($0)", marshal: .text) }
    var held: [EventConnection<Int>] = []
    for source in 0..<connections { held.append(try! await server.connect(source: source)) }
    let clock = ContinuousClock()
    let start = clock.now
    for index in 0..<events { try! await server.send(payload, as: types[index % names]) }
    let elapsed = clock.now - start
    await server.shutdown()
    withExtendedLifetime(held) {}
    return elapsed
}

func runOverload() async {
    print("Overload: 100 connections that never read (queues of 256), 5,000 events; time per run, medians of 5")
    print("policy       names   time         ratio to dropOldest")
    let connections = 100, events = 5_000
    let base = await median(5) { await overload(policy: .dropOldest, names: 1, connections: connections, events: events) }
    print("dropOldest   1       \(base)")
    for names in [1, 8, 1_000] {
        let time = await median(5) { await overload(policy: .coalesce, names: names, connections: connections, events: events) }
        print("coalesce     \(String(names).padding(8))\(time)   \(format2(time / base))x")
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}

import Foundation

if ProcessInfo.processInfo.environment["FANOUT_ONLY"] == "overload" {
    await runOverload()
} else if let only = ProcessInfo.processInfo.environment["FANOUT_ONLY"] {
    // Profiling aid: FANOUT_ONLY=hub|batched|baseline runs that side alone at 10,000
    // connections, bursts of 10.
    for _ in 0..<3 {
        switch only {
        case "hub": _ = await hub(connections: 10_000, events: 200, burst: 10)
        case "single": _ = await hub(connections: 10_000, events: 200, burst: 1)
        case "batched": _ = await hub(connections: 10_000, events: 200, burst: 10, batched: true)
        default: _ = await baseline(connections: 10_000, events: 200, burst: 10)
        }
    }
} else {
    await runAll()
}
