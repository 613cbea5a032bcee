@testable import EventStreamKit
import Synchronization
import Testing

private typealias Machine = LogWriterStateMachine<Int>

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
        Case(message: "café – naïve → 日本語 🎉 \u{A0}§ \u{2027}\u{202A}", expected: "café – naïve → 日本語 🎉 \u{A0}§ \u{2027}\u{202A}"),
        Case(message: "", expected: ""),
    ])
    func escapes(_ example: Case) {
        #expect(HTTPLogger.escapingControlCharacters(example.message) == example.expected)
    }

    @Test("a custom closure gets the escaped message")
    func customClosuresGetEscapedMessages() {
        let received = Mutex<[String]>([])
        let logger = HTTPLogger { _, message in received.withLock { $0.append(message) } }
        logger(.info, "404 GET /x\r\nHost: forged")
        #expect(received.withLock { $0 } == [#"404 GET /x\r\nHost: forged"#])
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
