@testable import EventStreamKit
import Testing

private typealias Machine = MailboxStateMachine<String, String>

/// What a reader sees: a batch, a wait, or the end (take, then register if empty).
private enum ReaderStep {
    case batch([Delivery], senders: [String])
    case wait
    case end(DisconnectReason)
}

extension MailboxStateMachine where Consumer == String, Sender == String {
    fileprivate mutating func next(consumer: String) -> ReaderStep {
        var batch: [Delivery] = []
        switch take(into: &batch) {
        case .batch(let senders): return .batch(batch, senders: senders)
        case .end(let reason): return .end(reason)
        case .empty: return register(consumer) ? .wait : next(consumer: consumer)
        }
    }
}

private func delivery(_ text: String, name: String? = nil, id: String? = nil) -> Delivery {
    Delivery(frame: EventFrame(try! ServerSentEvent(id: id, event: name, data: text)), name: name, id: id)
}

private func texts(_ batch: [Delivery]) -> [String] {
    batch.map { String(decoding: $0.frame.bytes, as: UTF8.self).split(separator: "\n").last.map { String($0.dropFirst(6)) } ?? "" }
}

@Suite("Mailbox state machine")
struct MailboxStateMachineTests {
    @Test("dropOldest keeps the newest frames in order across many overflows, with the count exact", arguments: [1, 3, 4, 7, 40])
    func dropOldestAcrossCompactions(overflow: Int) {
        var machine = Machine(capacity: 4, policy: .dropOldest, clientLastEventID: nil)
        let total = 4 + overflow
        for index in 0..<total {
            _ = machine.enqueue(delivery("\(index)"))
            #expect(machine.queuedCount == min(index + 1, 4))
            // A heartbeat is only for an idle stream, however many frames were dropped.
            if case .queued = machine.enqueueIfIdle(delivery(": ping")) { Issue.record("a heartbeat joined a full queue") }
        }
        #expect(machine.droppedCount == overflow)
        guard case .batch(let batch, _) = machine.next(consumer: "reader") else { Issue.record("no batch"); return }
        #expect(texts(batch) == (total - 4..<total).map(String.init))
        guard case .wait = machine.next(consumer: "reader") else { Issue.record("frames left after the take"); return }
        guard case .resume = machine.enqueue(delivery("after")) else { Issue.record("the reader was not woken"); return }
        guard case .batch(let later, _) = machine.next(consumer: "reader") else { Issue.record("no batch"); return }
        #expect(texts(later) == ["after"])
    }

    @Test func aWokenReaderTakesEverythingThatArrivedBeforeItRan() {
        var machine = Machine(capacity: 4, policy: .dropOldest, clientLastEventID: nil)
        guard case .wait = machine.next(consumer: "reader") else { Issue.record("reader should wait"); return }
        guard case .resume("reader") = machine.enqueue(delivery("a")) else { Issue.record("reader not woken"); return }
        guard case .queued = machine.enqueue(delivery("b")) else { Issue.record("woken twice"); return }
        guard case .batch(let batch, _) = machine.next(consumer: "reader") else { Issue.record("no batch"); return }
        #expect(texts(batch) == ["a", "b"])
    }

    @Test func takingRecyclesTheReadersArrayAsTheQueue() {
        var machine = Machine(capacity: 4, policy: .dropOldest, clientLastEventID: nil)
        var batch: [Delivery] = []
        batch.reserveCapacity(64)
        _ = machine.enqueue(delivery("a"))
        guard case .batch = machine.take(into: &batch) else { Issue.record("no batch"); return }
        #expect(texts(batch) == ["a"])
        _ = machine.enqueue(delivery("b"))
        guard case .batch = machine.take(into: &batch) else { Issue.record("no batch"); return }
        #expect(texts(batch) == ["b"])  // the old contents were cleared, not appended to
    }

    @Test func aReaderTakesEverythingQueuedInOneBatch() {
        var machine = Machine(capacity: 8, policy: .dropOldest, clientLastEventID: nil)
        for text in ["a", "b", "c"] {
            guard case .queued = machine.enqueue(delivery(text)) else { Issue.record("not queued"); return }
        }
        guard case .batch(let batch, let senders) = machine.next(consumer: "reader") else { Issue.record("no batch"); return }
        #expect(texts(batch) == ["a", "b", "c"])
        #expect(senders.isEmpty)
        #expect(machine.queuedCount == 0)
    }

    @Test func dropOldestKeepsTheNewestWithinCapacity() {
        var machine = Machine(capacity: 3, policy: .dropOldest, clientLastEventID: nil)
        for text in ["1", "2", "3", "4", "5"] { _ = machine.enqueue(delivery(text)) }
        #expect(machine.droppedCount == 2)
        guard case .batch(let batch, _) = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(texts(batch) == ["3", "4", "5"])
    }

    @Test func disconnectPolicyFinishesAndCountsEverythingQueued() {
        var machine = Machine(capacity: 2, policy: .disconnect, clientLastEventID: nil)
        _ = machine.enqueue(delivery("1"))
        _ = machine.enqueue(delivery("2"))
        guard case .disconnected(let dropped, nil) = machine.enqueue(delivery("3")) else { Issue.record("not disconnected"); return }
        #expect(dropped == 3)
        #expect(machine.droppedCount == 3)
        #expect(machine.phase == .finished(.slowClient))
        guard case .rejected = machine.enqueue(delivery("4")) else { Issue.record("accepted after finish"); return }
        guard case .end(.slowClient) = machine.next(consumer: "r") else { Issue.record("no end"); return }
    }

    @Test func coalesceKeepsTheNewestFramePerName() {
        var machine = Machine(capacity: 4, policy: .coalesce, clientLastEventID: nil)
        _ = machine.enqueue(delivery("p1", name: "price"))
        _ = machine.enqueue(delivery("chat1", name: "chat"))
        _ = machine.enqueue(delivery("p2", name: "price"))
        _ = machine.enqueue(delivery("presence1", name: "presence"))
        guard case .queuedDropping(let dropped) = machine.enqueue(delivery("p3", name: "price")) else {
            Issue.record("expected coalescing")
            return
        }
        #expect(dropped == 2)  // p1 and p2 give way to p3
        guard case .batch(let batch, _) = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(texts(batch) == ["chat1", "presence1", "p3"])
    }

    @Test func coalesceFallsBackToDropOldestWhenAllNamesDiffer() {
        var machine = Machine(capacity: 2, policy: .coalesce, clientLastEventID: nil)
        _ = machine.enqueue(delivery("a", name: "a"))
        _ = machine.enqueue(delivery("b", name: "b"))
        _ = machine.enqueue(delivery("c", name: "c"))
        guard case .batch(let batch, _) = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(texts(batch) == ["b", "c"])
        #expect(machine.droppedCount == 1)
    }

    /// Coalescing scans the whole queue, so a scan that frees little must free more: with
    /// every name different, each scan would free one slot and cost O(capacity) per frame (a
    /// 115x slowdown in `FANOUT_ONLY=overload`). It frees a quarter of the queue instead.
    @Test func coalesceFreesAQuarterOfTheQueueWhenNamesDiffer() {
        var machine = Machine(capacity: 8, policy: .coalesce, clientLastEventID: nil)
        for name in ["a", "b", "c", "d", "e", "f", "g", "h"] { _ = machine.enqueue(delivery(name, name: name)) }
        guard case .queuedDropping(2) = machine.enqueue(delivery("i", name: "i")) else { Issue.record("expected two dropped"); return }
        guard case .queued = machine.enqueue(delivery("j", name: "j")) else { Issue.record("expected room for one more"); return }
        guard case .queuedDropping(2) = machine.enqueue(delivery("k", name: "k")) else { Issue.record("expected two dropped"); return }
        guard case .batch(let batch, _) = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(texts(batch) == ["e", "f", "g", "h", "i", "j", "k"])
        #expect(machine.droppedCount == 4)
    }

    @Test func coalesceDropsNothingMoreWhenMergingFreedAQuarter() {
        var machine = Machine(capacity: 8, policy: .coalesce, clientLastEventID: nil)
        for index in 0..<8 { _ = machine.enqueue(delivery("t\(index)", name: index < 4 ? "tick" : "n\(index)")) }
        // t0...t3 are ticks, and the new tick supersedes all four: merging frees half the
        // queue, more than a quarter, so no other frame is dropped.
        guard case .queuedDropping(4) = machine.enqueue(delivery("t8", name: "tick")) else { Issue.record("expected four merged"); return }
        guard case .batch(let batch, _) = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(texts(batch) == ["t4", "t5", "t6", "t7", "t8"])
    }

    @Test func suspendedSendersKeepOrderAndAreWokenWhenTheReaderTakesTheirFrames() {
        var machine = Machine(capacity: 1, policy: .suspendSender(timeout: .seconds(1)), clientLastEventID: nil)
        _ = machine.enqueue(delivery("1"))
        guard case .suspend(let first) = machine.enqueue(delivery("2")) else { Issue.record("should suspend"); return }
        guard case .wait = machine.waitForSpace(ticket: first, sender: "s2") else { Issue.record("should wait"); return }
        // A later send queues behind the suspended one, never ahead of it.
        guard case .suspend(let second) = machine.enqueue(delivery("3")) else { Issue.record("should suspend"); return }
        guard case .batch(let batch, let senders) = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(texts(batch) == ["1", "2", "3"])
        #expect(senders == ["s2"])
        // The second sender registers after its frame already went out: it is told at once.
        guard case .resume(true) = machine.waitForSpace(ticket: second, sender: "s3") else { Issue.record("should resume"); return }
        #expect(machine.droppedCount == 0)
    }

    @Test func aSenderTimeoutDisconnectsTheSlowClient() {
        var machine = Machine(capacity: 1, policy: .suspendSender(timeout: .seconds(1)), clientLastEventID: nil)
        _ = machine.enqueue(delivery("1"))
        guard case .suspend(let ticket) = machine.enqueue(delivery("2")) else { Issue.record("should suspend"); return }
        _ = machine.waitForSpace(ticket: ticket, sender: "s")
        let action = machine.senderTimedOut(ticket: ticket)
        #expect(action.senders == ["s"])
        #expect(action.dropped == 2)
        #expect(machine.phase == .finished(.slowClient))
    }

    @Test func drainingFinishHandsOverWhatIsQueuedThenEnds() {
        var machine = Machine(capacity: 4, policy: .dropOldest, clientLastEventID: nil)
        _ = machine.enqueue(delivery("a"))
        let action = machine.finish(.shutdown, drain: true)
        #expect(action.dropped == 0)
        guard case .rejected = machine.enqueue(delivery("late")) else { Issue.record("accepted while draining"); return }
        guard case .batch(let batch, _) = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(texts(batch) == ["a"])
        guard case .end(.shutdown) = machine.next(consumer: "r") else { Issue.record("no end"); return }
    }

    @Test func anUndrainedFinishWakesTheReaderAndCountsDrops() {
        var machine = Machine(capacity: 4, policy: .dropOldest, clientLastEventID: nil)
        guard case .wait = machine.next(consumer: "r") else { Issue.record("should wait"); return }
        let idle = machine.finish(.closedByServer, drain: false)
        #expect(idle.consumer == "r")
        #expect(idle.dropped == 0)

        var busy = Machine(capacity: 4, policy: .dropOldest, clientLastEventID: nil)
        _ = busy.enqueue(delivery("a"))
        _ = busy.enqueue(delivery("b"))
        #expect(busy.finish(.shutdown, drain: false).dropped == 2)
        #expect(busy.droppedCount == 2)
        #expect(busy.finish(.shutdown, drain: false).dropped == 0)  // finishing twice is harmless
    }

    @Test func prependedFramesComeFirstAndMayExceedCapacity() {
        var machine = Machine(capacity: 1, policy: .dropOldest, clientLastEventID: nil)
        _ = machine.enqueue(delivery("live"))
        machine.prepend([delivery("r1"), delivery("r2")])
        guard case .batch(let batch, _) = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(texts(batch) == ["r1", "r2", "live"])
    }

    @Test("a replay longer than the queue is owed whole: live frames behind it obey the limits on their own, and no policy drops a replayed frame", arguments: [
        OverflowPolicy.dropOldest, .coalesce, .disconnect,
    ])
    func aLongReplayIsNotDroppedByLiveFrames(policy: OverflowPolicy) {
        var machine = Machine(capacity: 4, byteLimit: 1_000, policy: policy, clientLastEventID: "e-0")
        let replay = (1...10).map { delivery("r\($0)", name: "n\($0)") }
        machine.prepend(replay)
        for index in 1...3 {
            guard case .queued = machine.enqueue(delivery("live\(index)", name: "l\(index)")) else {
                Issue.record("live frame \(index) overflowed behind a replay, under \(policy)"); return
            }
        }
        #expect(machine.queuedCount == 13)
        #expect(machine.droppedCount == 0)
        guard case .batch(let batch, _) = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(texts(batch) == (1...10).map { "r\($0)" } + ["live1", "live2", "live3"])
        #expect(machine.queuedBytes == 0)
    }

    @Test("past the live capacity behind a replay, the policy drops live frames, never replayed ones")
    func liveOverflowBehindAReplayDropsLiveFrames() {
        var machine = Machine(capacity: 2, policy: .dropOldest, clientLastEventID: "e-0")
        machine.prepend((1...5).map { delivery("r\($0)") })
        for index in 1...4 { _ = machine.enqueue(delivery("live\(index)")) }
        #expect(machine.droppedCount == 2)
        guard case .batch(let batch, _) = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(texts(batch) == (1...5).map { "r\($0)" } + ["live3", "live4"])
    }

    @Test func theClientsLastEventIDLastsUntilANewerEventIsQueued() {
        var machine = Machine(capacity: 4, policy: .dropOldest, clientLastEventID: "e-5")
        _ = machine.enqueue(Delivery(frame: EventFrame(comment: "hb"), name: nil, id: nil, isControl: true))
        _ = machine.enqueue(delivery("no id"))
        #expect(machine.clientLastEventID == "e-5")
        _ = machine.enqueue(delivery("with id", id: "e-6"))
        #expect(machine.clientLastEventID == nil)
        #expect(machine.acceptedEvents == 2)
        #expect(machine.acceptedFrames == 3)
    }
}

@Suite("Mailbox state machine: shutdown")
struct MailboxStateMachineShutdownTests {
    @Test func aFinalFrameGoesBeyondCapacityAndWakesAnIdleReader() {
        var machine = Machine(capacity: 1, policy: .dropOldest, clientLastEventID: nil)
        guard case .wait = machine.next(consumer: "r") else { Issue.record("should wait"); return }
        let action = machine.finish(.shutdown, drain: true, last: delivery("retry"))
        #expect(action.consumer == "r")
        guard case .batch(let batch, _) = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(texts(batch) == ["retry"])
        guard case .end(.shutdown) = machine.next(consumer: "r") else { Issue.record("no end"); return }
    }

    @Test func aFinalFrameFollowsWhatIsQueued() {
        var machine = Machine(capacity: 1, policy: .dropOldest, clientLastEventID: nil)
        _ = machine.enqueue(delivery("queued"))
        _ = machine.finish(.shutdown, drain: true, last: delivery("retry"))
        guard case .batch(let batch, _) = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(texts(batch) == ["queued", "retry"])
    }
}

@Suite("Mailbox state machine: heartbeats")
struct MailboxStateMachineHeartbeatTests {
    @Test func aHeartbeatGoesOnlyToAnEmptyQueue() {
        let heartbeat = Delivery(frame: EventFrame(comment: ""), name: nil, id: nil, isControl: true)
        var machine = Machine(capacity: 1, policy: .suspendSender(timeout: .seconds(1)), clientLastEventID: nil)
        guard case .queued = machine.enqueueIfIdle(heartbeat) else { Issue.record("idle queue refused"); return }
        guard case .rejected = machine.enqueueIfIdle(heartbeat) else { Issue.record("busy queue accepted"); return }
        #expect(machine.queuedCount == 1)
        #expect(machine.droppedCount == 0)
        #expect(machine.acceptedEvents == 0)  // a heartbeat is not activity
    }

    @Test("a round finds a stream quiet only if no event was accepted since the round before looked")
    func quietSinceTheLastRound() {
        let heartbeat = Delivery(frame: EventFrame(comment: ""), name: nil, id: nil, isControl: true)
        var machine = Machine(capacity: 8, policy: .dropOldest, clientLastEventID: nil)
        var looks: [Bool] = []
        looks.append(machine.quietSinceLastHeartbeatRound())  // a new stream: quiet
        _ = machine.enqueue(delivery("a"))
        looks.append(machine.quietSinceLastHeartbeatRound())  // an event since the last round
        looks.append(machine.quietSinceLastHeartbeatRound())  // none since this round looked
        _ = machine.enqueueIfIdle(heartbeat)
        looks.append(machine.quietSinceLastHeartbeatRound())  // a heartbeat is not activity
        _ = machine.enqueue(delivery("b"))
        _ = machine.enqueue(delivery("c"))
        looks.append(machine.quietSinceLastHeartbeatRound())
        looks.append(machine.quietSinceLastHeartbeatRound())
        #expect(looks == [true, false, true, true, false, true])
    }
}

/// A frame of exactly `size` bytes on the wire, named `name`.
private func sized(_ size: Int, name: String? = nil, tag: UInt8 = UInt8(ascii: "x")) -> Delivery {
    Delivery(frame: EventFrame(encodedBytes: Array(repeating: tag, count: size)), name: name, id: nil)
}

@Suite("Mailbox state machine: byte budget")
struct MailboxStateMachineByteTests {
    @Test("each policy applies when the byte budget is hit before the frame count")
    func everyPolicyAppliesAtTheByteBudget() {
        for policy in [OverflowPolicy.dropOldest, .coalesce, .disconnect, .suspendSender(timeout: .seconds(1))] {
            var machine = Machine(capacity: 100, byteLimit: 100, policy: policy, clientLastEventID: nil)
            guard case .queued = machine.enqueue(sized(60, name: "a")) else { Issue.record("\(policy): first frame refused"); continue }
            guard case .queued = machine.enqueue(sized(40, name: "b")) else { Issue.record("\(policy): a frame within budget overflowed"); continue }
            #expect(machine.queuedBytes == 100)
            switch (policy.kind, machine.enqueue(sized(1, name: "c"))) {
            case (.dropOldest, .queuedDropping(1)), (.coalesce, .queuedDropping(1)):
                #expect(machine.queuedBytes == 41, "\(policy)")
                #expect(machine.queuedCount == 2, "\(policy)")
            case (.disconnect, .disconnected(let dropped, _)):
                #expect(dropped == 3)
                #expect(machine.queuedBytes == 0)
                #expect(machine.phase == .finished(.slowClient))
            case (.suspendSender, .suspend):
                #expect(machine.queuedBytes == 101)  // a blocked sender's frame is held too
                #expect(machine.queuedCount == 3)
            case (_, let action):
                Issue.record("\(policy): unexpected \(action)")
            }
        }
    }

    @Test("a frame larger than the budget is still delivered when the queue is empty")
    func anOversizedFrameGoesThroughAnEmptyQueue() {
        for policy in [OverflowPolicy.dropOldest, .coalesce, .disconnect, .suspendSender(timeout: .seconds(1))] {
            var machine = Machine(capacity: 4, byteLimit: 10, policy: policy, clientLastEventID: nil)
            guard case .queued = machine.enqueue(sized(1_000)) else { Issue.record("\(policy): oversized frame refused"); continue }
            #expect(machine.queuedBytes == 1_000)
            guard case .batch(let batch, _) = machine.next(consumer: "r") else { Issue.record("\(policy): no batch"); continue }
            #expect(batch.map(\.frame.count) == [1_000])
            #expect(machine.queuedBytes == 0)
        }
    }

    @Test func dropOldestReplacesAQueueWithAnOversizedFrame() {
        var machine = Machine(capacity: 4, byteLimit: 10, policy: .dropOldest, clientLastEventID: nil)
        _ = machine.enqueue(sized(5))
        _ = machine.enqueue(sized(5))
        guard case .queuedDropping(2) = machine.enqueue(sized(50)) else { Issue.record("expected both small frames dropped"); return }
        #expect(machine.queuedBytes == 50)
        #expect(machine.droppedCount == 2)
    }

    @Test func dropOldestDropsSeveralSmallFramesForOneBigOne() {
        var machine = Machine(capacity: 100, byteLimit: 100, policy: .dropOldest, clientLastEventID: nil)
        for index in 0..<10 { _ = machine.enqueue(sized(10, tag: UInt8(ascii: "0") + UInt8(index))) }
        #expect(machine.queuedBytes == 100)
        guard case .queuedDropping(let dropped) = machine.enqueue(sized(35, tag: UInt8(ascii: "B"))) else { Issue.record("expected drops"); return }
        #expect(dropped == 4)
        #expect(machine.droppedCount == 4)
        #expect(machine.queuedBytes == 95)
        guard case .batch(let batch, _) = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(batch.map { $0.frame.bytes.first! } == Array("456789B".utf8))
    }

    @Test("dropOldest stays exact across many byte overflows and compactions", arguments: [1, 5, 17, 300])
    func dropOldestByBytesAcrossCompactions(overflow: Int) {
        var machine = Machine(capacity: 8, byteLimit: 30, policy: .dropOldest, clientLastEventID: nil)
        var sent: [Int] = []
        for index in 0..<(3 + overflow) {
            let size = 7 + index % 5  // 7...11 bytes: three or four frames fit
            _ = machine.enqueue(sized(size))
            sent.append(size)
            // The queue is always the longest suffix of what was sent that fits the budget.
            var kept = 0, bytes = 0
            for size in sent.reversed() {
                guard kept < 8, bytes + size <= 30 else { break }
                bytes += size
                kept += 1
            }
            #expect(machine.queuedCount == kept)
            #expect(machine.queuedBytes == bytes)
        }
        guard case .batch(let batch, _) = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        let delivered = batch.map(\.frame.count)
        #expect(delivered == Array(sent.suffix(delivered.count)))
        #expect(machine.droppedCount == sent.count - delivered.count)
        #expect(machine.queuedBytes == 0)
    }

    @Test func coalesceFreesAQuarterOfTheByteBudget() {
        var machine = Machine(capacity: 100, byteLimit: 100, policy: .coalesce, clientLastEventID: nil)
        for (name, size) in [("a", 20), ("b", 20), ("c", 30), ("d", 20), ("e", 10)] { _ = machine.enqueue(sized(size, name: name)) }
        #expect(machine.queuedBytes == 100)
        // Nothing merges: the oldest go until the new frame fits with a quarter free.
        guard case .queuedDropping(2) = machine.enqueue(sized(10, name: "f")) else { Issue.record("expected two dropped"); return }
        #expect(machine.queuedBytes == 70)
        // Merging by name frees bytes as it frees slots: the old "c" makes room for the new.
        guard case .queuedDropping(1) = machine.enqueue(sized(35, name: "c")) else { Issue.record("expected one merged"); return }
        #expect(machine.queuedBytes == 75)
        guard case .batch(let batch, _) = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(batch.map(\.name) == ["d", "e", "f", "c"])
    }

    @Test func suspendedSendersWaitOnBytesAndTheTakeReleasesThem() {
        var machine = Machine(capacity: 100, byteLimit: 10, policy: .suspendSender(timeout: .seconds(1)), clientLastEventID: nil)
        _ = machine.enqueue(sized(8))
        guard case .suspend(let ticket) = machine.enqueue(sized(8)) else { Issue.record("should suspend"); return }
        guard case .wait = machine.waitForSpace(ticket: ticket, sender: "s") else { Issue.record("should wait"); return }
        #expect(machine.queuedBytes == 16)
        guard case .batch(let batch, let senders) = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(batch.count == 2)
        #expect(senders == ["s"])
        #expect(machine.queuedBytes == 0)
        guard case .queued = machine.enqueue(sized(8)) else { Issue.record("no room after the take"); return }
    }

    @Test func byteAccountingReturnsToZero() {
        var machine = Machine(capacity: 4, byteLimit: 1_000, policy: .dropOldest, clientLastEventID: nil)
        machine.prepend([sized(300), sized(300)])  // replay: beyond the limits, but counted
        _ = machine.enqueue(sized(100))
        #expect(machine.queuedBytes == 700)
        guard case .batch = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(machine.queuedBytes == 0)

        _ = machine.enqueue(sized(100))
        _ = machine.enqueue(sized(200))
        #expect(machine.finish(.shutdown, drain: true, last: sized(5)).dropped == 0)
        #expect(machine.queuedBytes == 305)
        guard case .batch = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(machine.queuedBytes == 0)

        var undrained = Machine(capacity: 4, byteLimit: 1_000, policy: .suspendSender(timeout: .seconds(1)), clientLastEventID: nil)
        _ = undrained.enqueue(sized(999))
        _ = undrained.enqueue(sized(999))  // blocked
        #expect(undrained.queuedBytes == 1_998)
        #expect(undrained.finish(.closedByServer, drain: false).dropped == 2)
        #expect(undrained.queuedBytes == 0)
    }
}

/// The byte limit shared by every connection of a hub (`totalQueueByteLimit`).
@Suite("MailboxStateMachine: the shared byte limit")
struct MailboxStateMachineSharedLimitTests {
    @Test("an empty queue takes a frame whatever is left of the shared limit; a waiting one overflows past it")
    func emptyQueuesAlwaysTakeOneFrame() {
        for policy in [OverflowPolicy.dropOldest, .disconnect] {
            var machine = Machine(capacity: 100, byteLimit: 10_000, policy: policy, clientLastEventID: nil)
            guard case .queued = machine.enqueue(sized(300), sharedRoom: -5_000) else { Issue.record("\(policy): refused into an empty queue"); continue }
            switch (policy.kind, machine.enqueue(sized(300), sharedRoom: 299)) {
            case (.dropOldest, .queuedDropping(1)):
                #expect(machine.queuedBytes == 300, "the oldest frame made room for the new one")
            case (.disconnect, .disconnected(let dropped, _)):
                #expect(dropped == 2)
            case (_, let action):
                Issue.record("\(policy): unexpected \(action)")
            }
        }
    }

    @Test("dropOldest gives the bytes it drops back to the room: it drops only what the new frame needs")
    func droppedBytesCountAsRoom() {
        var machine = Machine(capacity: 100, byteLimit: 10_000, policy: .dropOldest, clientLastEventID: nil)
        for _ in 0..<4 { _ = machine.enqueue(sized(100)) }
        guard case .queuedDropping(let dropped) = machine.enqueue(sized(250), sharedRoom: 50) else { Issue.record("not dropped"); return }
        #expect(dropped == 2, "50 + 2 x 100 >= 250")
        #expect(machine.queuedBytes == 450)
        guard case .queued = machine.enqueue(sized(100), sharedRoom: 100) else { Issue.record("a frame within the room overflowed"); return }
    }

    @Test("what the reader took counts until it comes back for more: held bytes are queue plus batch in flight")
    func heldBytesIncludeTheBatchBeingWritten() {
        var machine = Machine(capacity: 100, byteLimit: 10_000, policy: .dropOldest, clientLastEventID: nil)
        _ = machine.enqueue(sized(100))
        _ = machine.enqueue(sized(200))
        #expect(machine.heldBytes == 300)
        guard case .batch = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(machine.queuedBytes == 0 && machine.heldBytes == 300, "the batch is being written")
        _ = machine.enqueue(sized(50))
        #expect(machine.heldBytes == 350)
        guard case .batch = machine.next(consumer: "r") else { Issue.record("no batch"); return }
        #expect(machine.heldBytes == 50, "the first batch is written: only the second is held")
        guard case .wait = machine.next(consumer: "r") else { Issue.record("not waiting"); return }
        #expect(machine.heldBytes == 0)
    }
}

@Suite("Mailbox: the shared byte limit across mailboxes")
struct MailboxSharedLimitTests {
    @Test("stalled mailboxes sharing a limit hold at most the limit plus one frame each, and give every byte back")
    func stalledMailboxesStayWithinTheLimit() async {
        let budget = QueueBudget(limit: 1_000)
        var mailboxes: [Mailbox] = (0..<5).map { _ in Mailbox(capacity: 100, byteLimit: 100_000, policy: .dropOldest, clientLastEventID: nil, budget: budget) }
        for _ in 0..<20 {
            for mailbox in mailboxes { _ = mailbox.enqueue(sized(300)) }
            #expect(budget.usedBytes <= 1_000 + 5 * 300)
        }
        #expect(mailboxes.allSatisfy { $0.queuedCount >= 1 }, "every connection still gets the newest frame")
        var batch: [Delivery] = []
        _ = await mailboxes[0].next(into: &batch)
        let held = budget.usedBytes
        #expect(held > 0, "the batch being written still counts")
        mailboxes[0].finish(.clientGone, drain: false)
        #expect(await mailboxes[0].next(into: &batch) == false)
        #expect(budget.usedBytes < held, "the reader came back: its batch is written")
        mailboxes.removeAll()
        #expect(budget.usedBytes == 0, "every byte given back when the mailboxes are gone")
    }
}
