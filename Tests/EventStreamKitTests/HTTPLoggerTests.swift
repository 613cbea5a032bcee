@testable import EventStreamKit
@testable import EventStreamHTTP
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

private typealias Machine = LogWriterStateMachine<Int>

/// Time that moves only when the test says so.
private final class ManualTime: Sendable {
    private let instant = Mutex(ContinuousClock.now)
    var now: ContinuousClock.Instant { instant.withLock { $0 } }
    func advance(by duration: Duration) { instant.withLock { $0 += duration } }
}

/// A pipe whose kernel buffer is full from the start and whose read end nobody reads until
/// ``drain(until:)``: a log destination that never drains.
private struct StuckPipe {
    let readEnd: Int32
    let writeEnd: Int32

    init() throws {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw SocketError("pipe") }
        readEnd = ends[0]
        writeEnd = ends[1]
        // Fill the buffer without blocking, then make the write end blocking again: the
        // writer's next write(2) blocks until somebody reads.
        let flags = fcntl(writeEnd, F_GETFL)
        _ = fcntl(writeEnd, F_SETFL, flags | O_NONBLOCK)
        let filler = [UInt8](repeating: UInt8(ascii: "."), count: 4096)
        while filler.withUnsafeBytes({ write(writeEnd, $0.baseAddress, $0.count) }) > 0 {}
        _ = fcntl(writeEnd, F_SETFL, flags)
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)
    }

    /// Stops `writer`, reads the pipe until the writer has written everything and ended,
    /// then closes both ends. Returns what the writer wrote (the filler left out).
    func drain(until writer: LogWriter) async throws -> String {
        writer.stop()
        let received = try await withDeadline(.seconds(30), "the writer to finish") { [readEnd] in
            var received: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let exited = writer.hasExited
                while case let count = chunk.withUnsafeMutableBytes({ read(readEnd, $0.baseAddress, $0.count) }), count > 0 {
                    received += chunk[..<count]
                }
                if exited { return received }
                try await Task.sleep(for: .milliseconds(1))  // not a spin: the pool has two threads
            }
        }
        close(readEnd)
        close(writeEnd)
        return String(decoding: received.drop { $0 == UInt8(ascii: ".") }, as: UTF8.self)
    }
}

@Suite("HTTPLogger: escaping")
struct HTTPLoggerEscapingTests {
    /// A message and how it must come out; named by the latter, so that the test's own
    /// report prints no raw control characters.
    struct Case: Sendable, CustomTestStringConvertible {
        let message: String
        let expected: String
        var testDescription: String { expected.isEmpty ? "(empty)" : expected }
    }

    @Test("control characters become visible escapes, everything else is untouched", arguments: [
        Case(message: "GET /a\r\n[EventStreamKit] error: forged", expected: #"GET /a\r\n[EventStreamKit] error: forged"#),
        Case(message: "line\nfeed", expected: #"line\nfeed"#),
        Case(message: "nul\u{0}byte", expected: #"nul\x00byte"#),
        Case(message: "\u{1B}[31mred\u{1B}[0m", expected: #"\x1B[31mred\x1B[0m"#),
        Case(message: "tab\there, delete\u{7F}", expected: #"tab\there, delete\x7F"#),
        Case(message: "separator\u{2028}paragraph\u{2029}", expected: #"separator\u{2028}paragraph\u{2029}"#),
        Case(message: "C1 next line\u{85} and \u{9B}", expected: #"C1 next line\u{85} and \u{9B}"#),
        Case(message: "café – naïve → 日本語 🎉 \u{A0}§ \u{2027}\u{2030}\u{2065}", expected: "café – naïve → 日本語 🎉 \u{A0}§ \u{2027}\u{2030}\u{2065}"),
        Case(message: "user\u{202E}gnp.exe\u{202C} \u{2066}isolate\u{2069}", expected: #"user\u{202E}gnp.exe\u{202C} \u{2066}isolate\u{2069}"#),
        Case(message: "", expected: ""),
    ])
    func escapes(_ example: Case) {
        #expect(HTTPLogger.escapingControlCharacters(example.message) == example.expected)
    }

    @Test("a message over 2 KiB is cut at a character boundary, saying how much was cut")
    func longMessagesAreCut() {
        let received = Mutex<[String]>([])
        let logger = HTTPLogger { _, message in received.withLock { $0.append(message) } }
        logger(.info, "404 GET /" + String(repeating: "é", count: 5000))
        let message = received.withLock { $0[0] }
        // 2,047 bytes kept: the next two-byte é would cross the limit.
        #expect(message.hasSuffix("... (\(9 + 10_000 - 2047) more bytes)"))
        #expect(message.utf8.count < HTTPLogger.maxMessageBytes + 40)
        logger(.info, "short")
        #expect(received.withLock { $0[1] } == "short")
    }

    @Test("a custom closure gets the escaped message, and a level below the minimum is not even built")
    func customClosuresGetEscapedMessages() {
        let received = Mutex<[String]>([])
        let logger = HTTPLogger { _, message in received.withLock { $0.append(message) } }
        logger(.info, "404 GET /x\r\nHost: forged")
        #expect(received.withLock { $0 } == [#"404 GET /x\r\nHost: forged"#])

        let built = Counter()
        let quiet = HTTPLogger.writing(to: .standardError, minimum: .error)
        quiet(.info, { built.increment(); return "never built" }())
        #expect(built.count == 0)
    }
}

@Suite("HTTPLogger: the writer's state machine")
struct LogWriterStateMachineTests {
    @Test("a burst over a level's bucket is suppressed, counted and reported once the interval has passed; other levels are not affected")
    func burstIsSuppressedAndSummarised() throws {
        let start = ContinuousClock.now
        var machine = Machine(limits: LogLimits(rate: LogRate(linesPerSecond: 100, burst: 200)))
        let outcomes = (0..<500).map { machine.enqueue("line \($0)\n", level: .info, now: start).outcome }
        #expect(outcomes.filter { $0 == .queued }.count == 200)
        #expect(outcomes.filter { $0 == .suppressed }.count == 300)
        #expect(machine.enqueue("an error\n", level: .error, now: start).outcome == .queued)
        #expect(machine.counters.suppressed == 300)

        guard case .write(let batch) = machine.nextAction(now: start) else { Issue.record("no batch"); return }
        #expect(String(decoding: batch, as: UTF8.self).split(separator: "\n").count == 201)
        #expect(machine.finishedWrite(succeeded: true).isEmpty)
        guard case .sleep(until: let due?) = machine.nextAction(now: start) else { Issue.record("no alarm for the report"); return }
        #expect(due == start + .seconds(1))
        guard case .write(let report) = machine.nextAction(now: due) else { Issue.record("no report"); return }
        #expect(String(decoding: report, as: UTF8.self) == "[EventStreamKit] warning: 300 log lines suppressed (over 100 a second at one level, bursts of 200)\n")
        _ = machine.finishedWrite(succeeded: true)

        // A second later the bucket has 100 tokens again, not 200.
        let later = start + .seconds(1)
        let refilled = (0..<150).map { machine.enqueue("more \($0)\n", level: .info, now: later).outcome }
        #expect(refilled.filter { $0 == .queued }.count == 100)
        #expect(machine.counters.suppressed == 350)
    }

    @Test("a line that does not fit is dropped, the batch in flight counts against the bound, and the drop is reported once the writer has caught up")
    func overflowIsDroppedAndReported() {
        let now = ContinuousClock.now
        var machine = Machine(limits: LogLimits(byteLimit: 100, rate: nil))
        let line = String(repeating: "x", count: 29) + "\n"
        #expect((0..<4).map { _ in machine.enqueue(line, level: .info, now: now).outcome } == [.queued, .queued, .queued, .dropped])
        guard case .write(let batch) = machine.nextAction(now: now) else { Issue.record("no batch"); return }
        #expect(batch.count == 90)
        // While the batch is written its bytes still count: the queue has room for none.
        #expect(machine.enqueue(line, level: .info, now: now).outcome == .dropped)
        #expect(machine.counters.queuedBytes == 90)
        _ = machine.finishedWrite(succeeded: true)
        #expect(machine.counters.queuedBytes == 0)
        #expect(machine.counters.peakQueuedBytes == 90)
        guard case .write(let report) = machine.nextAction(now: now) else { Issue.record("no report"); return }
        #expect(String(decoding: report, as: UTF8.self).hasPrefix("[EventStreamKit] warning: 2 log lines dropped:"))
        _ = machine.finishedWrite(succeeded: true)
        #expect(machine.nextAction(now: now) == .sleep(until: nil))
        #expect(machine.counters.dropped == 2)
    }

    @Test("the writer is woken only from sleep, and a flood of suppressed lines wakes it once")
    func wakeUps() {
        let now = ContinuousClock.now
        var machine = Machine(limits: LogLimits(rate: LogRate(linesPerSecond: 1, burst: 1)))
        #expect(machine.nextAction(now: now) == .sleep(until: nil))
        #expect(machine.enqueue("a\n", level: .info, now: now) == .init(outcome: .queued, wakeWriter: true))
        #expect(machine.enqueue("b\n", level: .warning, now: now) == .init(outcome: .queued, wakeWriter: false))
        guard case .write = machine.nextAction(now: now) else { Issue.record("no batch"); return }
        _ = machine.finishedWrite(succeeded: true)
        #expect(machine.nextAction(now: now) == .sleep(until: nil))
        #expect(machine.enqueue("c\n", level: .info, now: now) == .init(outcome: .suppressed, wakeWriter: true))
        #expect(machine.nextAction(now: now) == .sleep(until: now + .seconds(1)))
        #expect(machine.enqueue("d\n", level: .info, now: now) == .init(outcome: .suppressed, wakeWriter: false))
    }

    @Test("a flush completes when everything queued before it is written; stopping writes the rest, then exits")
    func flushAndStop() {
        let now = ContinuousClock.now
        var machine = Machine(limits: LogLimits(rate: nil))
        #expect(machine.flush(1) == nil)
        _ = machine.enqueue("a\n", level: .info, now: now)
        let ticket = machine.flush(1)
        #expect(ticket != nil)
        _ = machine.enqueue("b\n", level: .info, now: now)
        let cancelled = machine.flush(2)
        #expect(machine.flush(3) != nil)
        machine.cancelFlush(cancelled!)
        #expect(machine.stop() == false)
        guard case .write(let batch) = machine.nextAction(now: now) else { Issue.record("no batch"); return }
        #expect(batch == Array("a\nb\n".utf8))
        #expect(machine.finishedWrite(succeeded: true) == [1, 3])
        #expect(machine.nextAction(now: now) == .exit)
        #expect(machine.enqueue("late\n", level: .info, now: now).outcome == .dropped)
        #expect(machine.flush(4) == nil)
    }
}

@Suite("HTTPLogger: logging never blocks")
struct HTTPLoggerNonBlockingTests {
    @Test("100,000 lines from eight tasks to a destination that never drains: every call returns, lines are dropped and counted, the queue stays within its bound")
    func neverDrainingDestination() async throws {
        let pipe = try StuckPipe()
        let writer = LogWriter(descriptor: pipe.writeEnd, limits: LogLimits(rate: nil))
        let logger = HTTPLogger.writing(to: writer)
        try await withDeadline(.seconds(60), "100,000 log calls") {
            await withDiscardingTaskGroup { group in
                for task in 0..<8 {
                    group.addTask {
                        for index in 0..<12_500 { logger(.info, "404 GET /missing/\(task)/\(index)") }
                    }
                }
            }
        }
        let counters = writer.counters
        #expect(counters.dropped > 0)
        #expect(counters.peakQueuedBytes <= writer.limits.byteLimit)
        #expect(counters.peakQueuedBytes > writer.limits.byteLimit - 100)

        let written = try await pipe.drain(until: writer)
        let lines = written.split(separator: "\n")
        #expect(lines.last?.contains("\(counters.dropped) log lines dropped") == true, "\(lines.suffix(2))")
        #expect(lines.count - 1 + counters.dropped == 100_000)
        #expect(lines.first?.hasPrefix("[EventStreamKit] info: 404 GET /missing/") == true)
    }

    @Test("with an injected clock: a burst over the bucket is suppressed and counted, and the next second lets more through")
    func rateLimitWithInjectedClock() async throws {
        let pipe = try StuckPipe()
        let time = ManualTime()
        let writer = LogWriter(descriptor: pipe.writeEnd, limits: LogLimits(rate: .standard), now: { time.now })
        let logger = HTTPLogger.writing(to: writer, minimum: .debug)
        for index in 0..<500 { logger(.debug, "refused \(index)") }
        #expect(writer.counters.suppressed == 300)
        logger(.error, "an error still gets through")
        #expect(writer.counters.suppressed == 300)
        time.advance(by: .seconds(1))
        for index in 0..<150 { logger(.debug, "refused again \(index)") }
        #expect(writer.counters.suppressed == 350)
        #expect(writer.counters.dropped == 0)

        time.advance(by: .seconds(1))
        let written = try await pipe.drain(until: writer)
        // 200 in the first burst, the error, 100 the next second, and the reports: one, or
        // two if the writer ran between the two seconds; together they count all 350.
        let lines = written.split(separator: "\n")
        let reports = lines.filter { $0.hasSuffix("log lines suppressed") || $0.contains(" log lines suppressed") }
        #expect(lines.count - reports.count == 301)
        #expect((1...2).contains(reports.count))
        let reported = reports.compactMap { line in
            line.split(separator: " ").firstIndex(of: "log").flatMap { index in Int(line.split(separator: " ")[index - 1]) }
        }
        #expect(reported.reduce(0, +) == 350, "\(reports)")
    }

    /// A destination whose reader went away raises SIGPIPE at the next write(2), whose
    /// default action ends the process: any client could kill the server with a request that
    /// logs. The writer's thread blocks it: the lines are lost and counted, nothing else.
    @Test("a destination whose reader is gone loses lines, never the process (SIGPIPE)")
    func brokenPipe() async throws {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw SocketError("pipe") }
        close(ends[0])  // the reader is gone
        // The test runner may ignore SIGPIPE; the server's process does not. Restore the
        // default for the test, so that it fails if the writer raises it.
        var previous = sigaction()
        var fallback = sigaction()
        fallback.__sigaction_handler.sa_handler = SIG_DFL
        sigaction(SIGPIPE, &fallback, &previous)
        defer { sigaction(SIGPIPE, &previous, nil) }
        let writer = LogWriter(descriptor: ends[1])
        let logger = HTTPLogger.writing(to: writer, minimum: .debug)
        for index in 0..<10 { logger(.warning, "refused request \(index)") }
        #expect(writer.flush(timeout: .seconds(10)))
        #expect(writer.counters.dropped == 10)
        writer.stop()
        close(ends[1])
    }

    @Test("the standard streams' writers are shared, and a flush returns once the line is out")
    func standardStreams() {
        #expect(LogWriter.standardError === LogWriter.standardError)
        HTTPLogger.standardError(minimum: .debug)(.debug, "HTTPLoggerTests: a line to standard error")
        #expect(HTTPLogger.flushStandardStreams(timeout: .seconds(10)))
    }

    @Test("a server whose log never drains answers 5,000 unknown paths (each logged) and then /health")
    func serverWithAStuckLog() async throws {
        let pipe = try StuckPipe()
        let writer = LogWriter(descriptor: pipe.writeEnd, limits: LogLimits(byteLimit: 16 * 1024, rate: nil))
        let server = try TestServer.start { configuration in
            configuration.logger = .writing(to: writer)
        } routes: { router, _ in
            router.get("/health") { _ in HTTPResponse(text: "ok\n") }
        }
        let notFound = Counter()
        try await withDeadline(.seconds(120), "5,000 requests and /health") {
            try await withThrowingDiscardingTaskGroup { group in
                for task in 0..<8 {
                    group.addTask {
                        for index in stride(from: task, to: 5_000, by: 8) {
                            let response = try await server.exchange("GET /missing/\(index) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                            if response.hasPrefix("HTTP/1.1 404 ") { notFound.increment() }
                        }
                    }
                }
            }
            let health = try await server.exchange("GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            #expect(health.hasPrefix("HTTP/1.1 200 "))
            #expect(health.hasSuffix("ok\n"))
        }
        #expect(notFound.count == 5_000)
        #expect(writer.counters.dropped > 0)
        #expect(writer.counters.peakQueuedBytes <= 16 * 1024)
        await server.stop()
        _ = try await pipe.drain(until: writer)
    }
}
