@testable import EventStreamKit
import Synchronization
import Testing

@Suite("RedisEndpoint")
struct RedisEndpointTests {
    @Test("redis:// URLs as redis-cli reads them", arguments: [
        ("redis://127.0.0.1", RedisEndpoint(host: "127.0.0.1")),
        ("redis://localhost:6380/2", RedisEndpoint(host: "localhost", port: 6380, database: 2)),
        ("redis://:secret@10.0.0.1:7000", RedisEndpoint(host: "10.0.0.1", port: 7000, password: "secret")),
        ("redis://app:s%40cret@h/0", RedisEndpoint(host: "h", username: "app", password: "s@cret")),
        ("REDIS://h:1", RedisEndpoint(host: "h", port: 1)),
    ])
    func parses(text: String, expected: RedisEndpoint) throws {
        #expect(try RedisEndpoint(url: text) == expected)
    }

    @Test("other schemes, no host, bad ports and databases are refused, and the password never shows", arguments: [
        "http://h", "redis://", "redis://h:0", "redis://h:65536", "redis://h/x", "redis://h/-1", "h:6379",
    ])
    func refuses(text: String) {
        #expect(throws: RedisError.self) { try RedisEndpoint(url: text) }
    }

    @Test func descriptionHasNoCredentials() throws {
        let endpoint = try RedisEndpoint(url: "redis://user:hunter2@db.internal:6380/3")
        #expect(endpoint.description == "redis://db.internal:6380/3")
        do {
            _ = try RedisEndpoint(url: "redis://user:hunter2@/3")
        } catch {
            #expect(!error.description.contains("hunter2"))
        }
    }
}

@Suite("RedisConnection against a real redis-server", .enabled(if: RedisProcess.shouldRun, "needs redis-server"))
struct RedisConnectionTests {
    @Test("pipelined commands get their replies in order; an error reply leaves the connection usable")
    func pipeline() async throws {
        let redis = try await RedisProcess()
        let connection = try await RedisConnection.connect(to: redis.endpoint)
        let replies = try await connection.send([
            RESPValue.command(["PING"]),
            RESPValue.command(["SET", "k", "a\r\nb"]),
            RESPValue.command(["GET", "k"]),
            RESPValue.command(["INCR", "n"]),
            RESPValue.command(["GET", "missing"]),
            RESPValue.command(["NOSUCHCOMMAND"]),
            RESPValue.command(["XADD", "s", "5-0", "f", "v"]),
            RESPValue.command(["XRANGE", "s", "-", "+"]),
        ])
        #expect(replies.count == 8)
        #expect(replies[0] == .simpleString("PONG"))
        #expect(replies[1] == .simpleString("OK"))
        #expect(replies[2] == .bulkString(Array("a\r\nb".utf8)))
        #expect(replies[3] == .integer(1))
        #expect(replies[4] == .bulkString(nil))
        if case .error(let message) = replies[5] { #expect(message.hasPrefix("ERR")) } else { Issue.record("\(replies[5])") }
        #expect(replies[6].string == "5-0")
        #expect(replies[7] == .array([.array([.bulkString(Array("5-0".utf8)), .array([.bulkString(Array("f".utf8)), .bulkString(Array("v".utf8))])])]))
        #expect(try await connection.send([RESPValue.command(["GET", "k"])]).first?.string == "a\r\nb")
        connection.close()
    }

    @Test("a second call while one is pending is refused, not interleaved")
    func oneCallAtATime() async throws {
        let redis = try await RedisProcess()
        let connection = try await RedisConnection.connect(to: redis.endpoint)
        let blocked = Task { try await connection.send([RESPValue.command(["BLPOP", "never", "1"])], timeout: .seconds(5)) }
        try await redis.waitUntilBlocked()
        await #expect {
            _ = try await connection.send([RESPValue.command(["PING"])])
        } throws: { ($0 as? RedisError)?.code == .busy }
        #expect(try await blocked.value == [.array(nil)], "BLPOP timed out on the server: a null array")
        #expect(try await connection.send([RESPValue.command(["PING"])]) == [.simpleString("PONG")])
    }

    @Test("a reply that does not come in time: timedOut at the deadline, and the connection is dropped")
    func timeout() async throws {
        let redis = try await RedisProcess()
        let connection = try await RedisConnection.connect(to: redis.endpoint)
        let started = ContinuousClock.now
        await #expect {
            _ = try await connection.send([RESPValue.command(["BLPOP", "never", "0"])], timeout: .milliseconds(200))
        } throws: { ($0 as? RedisError)?.code == .timedOut }
        #expect(started.duration(to: .now) < .seconds(3))
        await #expect(throws: RedisError.self, "a late reply could be taken for the next one's") {
            _ = try await connection.send([RESPValue.command(["PING"])])
        }
    }

    @Test("the server killed during a blocking call: the call fails at once; a new connection is refused")
    func serverKilled() async throws {
        let redis = try await RedisProcess()
        let connection = try await RedisConnection.connect(to: redis.endpoint)
        let blocked = Task { try await connection.send([RESPValue.command(["XREAD", "BLOCK", "0", "STREAMS", "s", "$"])], timeout: nil) }
        try await redis.waitUntilBlocked()
        let killedAt = ContinuousClock.now
        redis.kill()
        await #expect {
            _ = try await withDeadline(.seconds(5)) { try await blocked.value }
        } throws: { ($0 as? RedisError)?.code == .connectionFailed }
        #expect(killedAt.duration(to: .now) < .seconds(3))
        try await waitUntil("the process is gone") { !redis.isRunning }
        await #expect {
            _ = try await RedisConnection.connect(to: redis.endpoint, timeout: .seconds(2))
        } throws: { ($0 as? RedisError)?.code == .connectionFailed }
    }

    @Test("close() ends a blocking call at once")
    func closeEndsACall() async throws {
        let redis = try await RedisProcess()
        let connection = try await RedisConnection.connect(to: redis.endpoint)
        let blocked = Task { try await connection.send([RESPValue.command(["BLPOP", "never", "0"])], timeout: nil) }
        try await redis.waitUntilBlocked()
        connection.close()
        await #expect(throws: RedisError.self) { _ = try await withDeadline(.seconds(3)) { try await blocked.value } }
    }

    @Test("a password: the right one authenticates, a wrong one fails with the server's refusal")
    func authentication() async throws {
        let redis = try await RedisProcess(extraArguments: ["--requirepass", "s3cret"])
        var endpoint = redis.endpoint
        endpoint.password = "s3cret"
        endpoint.database = 1
        let connection = try await RedisConnection.connect(to: endpoint)
        #expect(try await connection.send([RESPValue.command(["PING"])]) == [.simpleString("PONG")])
        endpoint.password = "wrong"
        await #expect {
            _ = try await RedisConnection.connect(to: endpoint)
        } throws: { ($0 as? RedisError)?.code == .commandFailed }
        var noPassword = redis.endpoint
        noPassword.database = 0
        let anonymous = try await RedisConnection.connect(to: noPassword)
        if case .error(let message) = try await anonymous.send([RESPValue.command(["GET", "x"])]).first {
            #expect(message.hasPrefix("NOAUTH"))
        } else {
            Issue.record("a command without AUTH was answered")
        }
    }
}
