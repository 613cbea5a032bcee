@testable import EventStreamKit
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A server that speaks just enough RESP to be hostile: each connection gets `answer` for
/// whatever it sends first, then is held open.
private final class FakeRedis: Sendable {
    let listener: Socket
    let poller: Poller
    let accepted = Counter()
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    var endpoint: RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: listener.localPort) }

    init(answer: [UInt8]) throws {
        listener = try Socket.listen(host: "127.0.0.1", port: 0)
        try listener.setNonBlocking()
        poller = try Poller()
        let (listener, poller, accepted) = (listener, poller, accepted)
        task.withLock {
            $0 = Task {
                await withDiscardingTaskGroup { group in
                    while !Task.isCancelled {
                        guard (try? await poller.waitReadable(listener.fd)) != nil else { return }
                        while let client = try? listener.accept() {
                            accepted.increment()
                            group.addTask {
                                try? client.setNonBlocking()
                                var chunk = [UInt8](repeating: 0, count: 4096)
                                while true {
                                    let read = try? chunk.withUnsafeMutableBytes { try client.read(into: $0) }
                                    if case .bytes? = read { break }
                                    if case .wouldBlock? = read, (try? await poller.waitReadable(client.fd)) != nil { continue }
                                    client.close()
                                    return
                                }
                                try? await client.writeAll(answer, poller: poller)
                                _ = try? await poller.waitReadable(client.fd)  // held until the client leaves
                                poller.forget(client.fd)
                                client.close()
                            }
                        }
                    }
                }
            }
        }
    }

    func stop() async {
        let task = self.task.withLock { $0 }
        poller.forget(listener.fd)
        task?.cancel()
        await task?.value
        listener.close()
        await poller.shutdown()
    }
}

@Suite("Redis client against hostile servers")
struct RedisHostileTests {
    @Test("one reply too many is refused, not handed to the next caller: the replies could be misaligned")
    func anExtraReplyBreaksTheConnection() async throws {
        let server = try FakeRedis(answer: Array("$3\r\nbob\r\n$5\r\nalice\r\n".utf8))
        let connection = try await RedisConnection.connect(to: server.endpoint, timeout: .seconds(2))
        await #expect(throws: RedisError.self) { try await connection.send([RESPValue.command(["GET", "token"])]) }
        #expect(!connection.isUsable)
        connection.close()
        await server.stop()
    }

    @Test("a connect that the server never answers times out at the deadline, not when the kernel gives up")
    func connectTimesOut() async throws {
        // A listener whose accept queue is full and never drained: further SYNs get no answer.
        let listener = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 0)
        let poller = try Poller()
        var fillers: [Socket] = []
        for _ in 0..<4 {
            if let filler = try? await withThrowingTaskGroup(of: Socket?.self, body: { group in
                group.addTask { try await Socket.connect(host: "127.0.0.1", port: listener.localPort, poller: poller) }
                group.addTask { try await Task.sleep(for: .milliseconds(200)); return nil }
                let first = try await group.next() ?? nil
                group.cancelAll()
                return first
            }) { fillers.append(filler) }
        }
        let start = ContinuousClock.now
        await #expect {
            _ = try await RedisConnection.connect(to: RedisEndpoint(host: "127.0.0.1", port: listener.localPort), timeout: .milliseconds(300))
        } throws: { ($0 as? RedisError)?.code == .timedOut }
        #expect(ContinuousClock.now - start < .seconds(5), "the deadline ended the connect")
        for filler in fillers { filler.close() }
        listener.close()
        await poller.shutdown()
    }

    @Test("a record numbered past what any node writes (2^64-1) is a clear error, not a crash", arguments: ["18446744073709551615-0", "0-1", "9223372036854775808-0"])
    func absurdSequences(id: String) {
        let stream = RedisEventStream(name: "hub", maxLength: 10)
        let entry = RESPValue.array([.bulkString(Array(id.utf8)), .array([.bulkString(Array("e".utf8)), .bulkString(Array("x".utf8)), .bulkString(Array("p".utf8)), .bulkString([1])])])
        #expect(throws: RedisError.self) { try stream.rangeResult(.array([entry])) }
        let state = RESPValue.array([.bulkString(Array("x".utf8)), .integer(-5)])
        #expect(throws: RedisError.self) { try stream.stateResult(state) }
    }

    @Test("a server that accepts connections and refuses every command: the tail backs off instead of reconnecting at full speed")
    func tailBacksOffWhileCommandsFail() async throws {
        let server = try FakeRedis(answer: Array("-LOADING Redis is loading the dataset in memory\r\n".utf8))
        let log = RedisEventLog(endpoint: server.endpoint, stream: RedisEventStream(name: "hub", maxLength: 10), timeout: .milliseconds(500))
        let events = Mutex<[RedisEventLog.TailEvent]>([])
        let tail = Task {
            await log.tail(from: .init(epoch: "e", sequence: 5), block: .milliseconds(100), maximumBackoff: .milliseconds(400)) { event in
                events.withLock { $0.append(event) }
            }
        }
        let disconnects: @Sendable () -> Int = { events.withLock { $0.filter { if case .disconnected = $0 { true } else { false } }.count } }
        try await waitUntil("the outage is reported") { disconnects() >= 1 }
        // From 50 ms doubling to 400 ms (jittered down to half): at most about 8 attempts in a
        // second and a half once it has backed off; reconnecting at once after each refusal
        // made about 25 a second. An upper bound: a loaded machine only makes fewer.
        try await Task.sleep(for: .milliseconds(800))
        let before = server.accepted.count
        try await Task.sleep(for: .milliseconds(1500))
        let attempts = server.accepted.count - before
        tail.cancel()
        await tail.value
        #expect(attempts <= 10, "\(attempts) connections in 1.5 s")
        #expect(disconnects() == 1, "one outage, reported once")
        #expect(events.withLock { $0.filter { $0 == .reconnected }.count } == 0, "never reported back: no command worked")
        await server.stop()
    }
}
