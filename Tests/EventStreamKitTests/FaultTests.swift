import Foundation
import Synchronization
import Testing
@testable import EventStreamKit
@testable import EventStreamHTTP
#if canImport(Glibc)
import Glibc
#endif

private let blob = try! EventType<String>("blob", marshal: .text)

/// Faults on real loopback sockets: each test checks that the others keep being served and
/// that the resources come back.
@Suite("Faults: stalled, resetting and half-closing clients, descriptors, resolvers")
struct FaultTests {
    /// What the well-behaved clients received, by sequence number.
    final class Received: Sendable {
        let sequences = Mutex<[Int: [Int]]>([:])
        func add(_ client: Int, _ sequence: Int) { sequences.withLock { $0[client, default: []].append(sequence) } }
        func count(_ client: Int) -> Int { sequences.withLock { $0[client]?.count ?? 0 } }
        var all: [Int: [Int]] { sequences.withLock { $0 } }
    }

    @Test("a client that stops reading gets its policy; the others get everything, in order", arguments: [OverflowPolicy.dropOldest, .disconnect])
    func stalledReader(policy: OverflowPolicy) async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.queueCapacity = 64
        configuration.overflowPolicy = policy
        let server = try TestServer.start(hub: EventServer(configuration: configuration))
        let hub = server.hub
        let stalled = try server.client()
        var small: Int32 = 4096
        _ = setsockopt(stalled.socket.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        try await stalled.send("GET /events?user=stalled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        _ = try await stalled.read { $0.contains("\r\n\r\n") }  // then it never reads again

        let good = 4
        let received = Received()
        let sources = try (0..<good).map { try EventSource(url: "http://127.0.0.1:\(server.port)/events?user=good\($0)") }
        let readers = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, source) in sources.enumerated() {
                    group.addTask {
                        for try await event in source { received.add(index, Int(event.data.prefix { $0 != " " })!) }
                    }
                }
                try await group.waitForAll()
            }
        }
        try await waitUntil("everyone connected") { await hub.clientCount == good + 1 }

        // 1,600 events of 8 KiB (13 MB) outgrow the stalled socket's kernel buffers many times
        // over. Batches of 40, each awaited by the good clients: a stalled client that held up
        // the sender or the others would stop this loop.
        let padding = String(repeating: "x", count: 8 * 1024)
        let total = 1_600
        for batch in stride(from: 0, to: total, by: 40) {
            for sequence in batch..<(batch + 40) { _ = try await hub.send("\(sequence) \(padding)", as: blob) }
            try await waitUntil("batch \(batch) delivered", timeout: .seconds(10)) {
                (0..<good).allSatisfy { received.count($0) == batch + 40 }
            }
        }
        for (client, sequences) in received.all {
            #expect(sequences == Array(0..<total), "client \(client) lost or reordered events")
        }
        let stalledConnections = await hub.connections(source: "stalled")
        if policy == .disconnect {
            #expect(stalledConnections.isEmpty, "the stalled client was not disconnected")
        } else {
            #expect(stalledConnections.count == 1)
            #expect((stalledConnections.first?.mailbox.queuedCount ?? .max) <= 64, "the stalled queue outgrew its bound")
            #expect(await hub.droppedFrames > 0)
        }
        for source in sources { source.close() }
        _ = try? await readers.value
        stalled.close()
        try await waitUntil("the hub to empty") { await hub.clientCount == 0 }
        try await waitUntil("the sockets released") { server.server.connectionCount == 0 }
        await server.stop()
    }

    @Test("a client that half-closes (FIN after its request) ends its stream; the others go on")
    func halfClose() async throws {
        let server = try TestServer.start()
        let hub = server.hub
        let other = try server.client()
        try await other.send("GET /events?user=other HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let halfClosing = try server.client()
        try await halfClosing.send("GET /events?user=half HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        _ = try await halfClosing.read { $0.contains("\r\n\r\n") }
        try await waitUntil("both connected") { await hub.clientCount == 2 }
        halfClosing.socket.shutdownWrite()
        try await waitUntil("the half-closed stream to end", timeout: .seconds(1)) { await hub.clientCount(source: "half") == 0 }
        _ = try await halfClosing.readToEnd(timeout: .seconds(2))  // the server closed its side too
        _ = try await hub.send("still here", as: blob, to: .source("other"))
        #expect(try await other.read { $0.contains("data: still here") }.contains("data: still here"))
        halfClosing.close()
        other.close()
        try await waitUntil("the sockets released") { server.server.connectionCount == 0 }
        await server.stop()
    }

    @Test("near the descriptor limit: connections past the reserve get 503 at once, the process keeps headroom and stays up, and serving resumes")
    func descriptorsExhausted() async throws {
        // 40 descriptors: the reserve is 40 / 8 = 5, so the server holds connections on
        // descriptors below 35 and answers the rest 503 at once. Without the reserve the
        // server would use the last descriptor, and libdispatch, which opens /proc files and
        // timerfds as it goes, would crash the process ("workq: registered worker exited
        // prematurely") or leave a timer unarmed.
        let demo = try DemoProcess(["serve", "--port", "0", "--news-interval", "0"], launcher: ["/usr/bin/prlimit", "--nofile=40:40"])
        defer { demo.terminate() }
        try await waitUntil("the demo to listen") { demo.stdoutLines.first?.contains("serving http://") == true }
        let port = try #require(demo.stdoutLines.first?.split(separator: ":").last?.split(separator: "/").first.flatMap { UInt16($0) })
        let poller = try Poller()
        // More keep-alive clients than the server has descriptors.
        var clients: [LoopbackClient] = []
        var answers: [String] = []
        for _ in 0..<60 {
            let client = try LoopbackClient(port: port, poller: poller)
            clients.append(client)
            try? await client.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            // An answer for everyone, none left hanging: 200 (kept alive), or 503 and closed.
            let answer = (try? await client.read(until: { $0.contains("\r\n\r\n") }, timeout: .seconds(3))) ?? "no answer"
            answers.append(String(answer.prefix(12)))
        }
        let served = answers.filter { $0 == "HTTP/1.1 200" }.count
        let refused = answers.filter { $0 == "HTTP/1.1 503" }.count
        #expect(served >= 20, "\(answers)")
        #expect(refused >= 20, "\(answers)")
        #expect(answers.allSatisfy { $0 == "HTTP/1.1 200" || $0 == "HTTP/1.1 503" || $0.isEmpty }, "\(answers)")

        // Hold every connection for 2.5 s (libdispatch's monitor looks every second) and
        // check that the server neither spins nor dies.
        let before = try cpuTicks(of: demo.processIdentifier)
        let start = ContinuousClock.now
        try await expire(after: .milliseconds(2_500))
        #expect(demo.isRunning, "the demo died near the descriptor limit: \(demo.stderrText)")
        let used = try cpuTicks(of: demo.processIdentifier) - before
        let share = Double(used) / Double(sysconf(Int32(_SC_CLK_TCK))) / start.duration(to: .now).inSeconds
        #expect(share < 0.3, "the server used \(Int(share * 100))% of a core near the descriptor limit")
        #expect(!demo.stderrText.contains("accept failed"), "the server ran out of descriptors: \(demo.stderrText)")
        #expect(demo.stderrText.components(separatedBy: "refusing new connections").count == 2, "the episode was not logged exactly once: \(demo.stderrText)")

        for client in clients { client.close() }
        let health = try await withDeadline(.seconds(5)) {
            while true {
                let client = try LoopbackClient(port: port, poller: poller)
                defer { client.close() }
                try await client.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                let response = try await client.readToEnd(timeout: .seconds(3))
                if response.hasPrefix("HTTP/1.1 200") { return response }
            }
        }
        #expect(health.hasSuffix("ok\n"))
        try await waitUntil("the recovery to be logged") { demo.stderrText.contains("accepting connections again") }
        demo.terminate()
        try await waitUntil("the demo to stop") { !demo.isRunning }
        #expect(demo.status == 0, "\(demo.stderrText)")
        await poller.shutdown()
    }

    @Test("a slow source resolver holds only its own request, and times out with 503; a failing one answers 500")
    func slowAndFailingResolvers() async throws {
        let server = try TestServer.start(configure: { $0.sourceTimeout = .milliseconds(300) }) { router, hub in
            router.events("/slow", from: hub) { request in
                // Slower than the timeout, and it notices cancellation.
                try await expire(after: .seconds(30))
                return "slow"
            }
            router.events("/broken", from: hub) { _ in
                struct DatabaseDown: Error {}
                throw DatabaseDown()
            }
        }
        let slow = try server.client()
        try await slow.send("GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        // Meanwhile everything else is served at once.
        #expect(try await server.exchange("GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").hasPrefix("HTTP/1.1 200 "))
        #expect(try await server.exchange("GET /broken HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").hasPrefix("HTTP/1.1 500 "))
        let started = ContinuousClock.now
        let answer = try await slow.readToEnd(timeout: .seconds(5))
        #expect(answer.hasPrefix("HTTP/1.1 503 "))
        #expect(started.duration(to: .now) < .seconds(2))
        #expect(await server.hub.clientCount == 0)
        #expect(server.log.all.contains { $0.contains("source resolver failed") })
        slow.close()
        await server.stop()
    }

    @Test("shutdown with 1,000 streams open and events queued: every stream ends, every event is written or counted as dropped")
    func shutdownUnderLoad() async throws {
        var configuration = EventServer<String>.Configuration()
        configuration.queueCapacity = 16
        configuration.shutdownGracePeriod = .milliseconds(300)
        // The server runs the hub: on a loaded machine this test outlasts a heartbeat
        // interval, and heartbeats would count as deliveries below.
        configuration.heartbeatInterval = nil
        let server = try TestServer.start(hub: EventServer(configuration: configuration))
        let hub = server.hub
        // The clients read after the server stopped, so they need a poller of their own.
        let poller = try Poller()
        var clients: [LoopbackClient] = []
        for index in 0..<1_000 {
            let client = try LoopbackClient(port: server.port, poller: poller)
            try await client.send("GET /events?user=u\(index) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            clients.append(client)
        }
        try await waitUntil("every stream open", timeout: .seconds(20)) { await hub.clientCount == 1_000 }
        // Nobody reads until the server has stopped. Everyone gets 20 small events; ten clients
        // also get 1.6 MB each, more than the kernel buffers between them and the server hold,
        // so their queues overflow now and are still full when the grace period ends.
        let small = String(repeating: "y", count: 2048)
        for sequence in 0..<20 { _ = try await hub.send("\(sequence) \(small)", as: blob) }
        let large = String(repeating: "z", count: 4096)
        let slow = Set((0..<10).map { "u\($0 * 100)" })
        for sequence in 0..<400 { _ = try await hub.send("\(sequence) \(large)", as: blob, to: .only(slow)) }
        let deliveries = await hub.deliveries
        #expect(deliveries == 20_000 + 4_000)
        await server.stop()  // returns when every connection has ended
        #expect(server.server.connectionCount == 0)
        #expect(await hub.clientCount == 0)
        var written = 0
        var retriesLost = 0
        for (index, client) in clients.enumerated() {
            let text: String
            do {
                text = try await client.readToEnd(timeout: .seconds(5))
            } catch {
                Issue.record("client \(index): \(error)")
                throw error
            }
            // Whole frames only: the last one may have been cut off by the end of the grace
            // period, and then it counts as dropped.
            let frames = text.components(separatedBy: "\n\n").dropLast()
            written += frames.count { $0.contains("event: blob\n") }
            // Shutdown queues a `retry` frame after each stream's events; one that did not go
            // out in the grace period is counted as dropped too.
            if !frames.contains(where: { $0.hasPrefix("retry: ") || $0.contains("\nretry: ") }) { retriesLost += 1 }
            client.close()
        }
        let dropped = await hub.droppedFrames
        #expect(written + dropped == deliveries + retriesLost, "written \(written) + dropped \(dropped) != queued \(deliveries) + lost retry frames \(retriesLost)")
        #expect(dropped > 0, "the test meant some clients to be too slow for the grace period")
        await poller.shutdown()
    }
}

/// Utime + stime of a process, in clock ticks.
private func cpuTicks(of pid: Int32) throws -> Int {
    let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
    return Int(fields[11])! + Int(fields[12])!
}
