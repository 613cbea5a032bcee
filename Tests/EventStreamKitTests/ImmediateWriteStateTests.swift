@testable import EventStreamKit
import Testing

private typealias Machine = MailboxStateMachine<String, String>

private func delivery(_ text: String) -> Delivery {
    Delivery(frame: EventFrame(try! ServerSentEvent(data: text)), name: nil, id: nil)
}

private func texts(_ batch: some Sequence<Delivery>) -> [String] {
    batch.map { String(decoding: $0.frame.bytes, as: UTF8.self) }
}

/// A machine whose reader waits and lets senders write for it.
private func idleMachine(capacity: Int = 4, policy: OverflowPolicy = .dropOldest) -> Machine {
    var machine = Machine(capacity: capacity, policy: policy, clientLastEventID: nil)
    machine.allowImmediateWrites()
    var batch: [Delivery] = []
    guard case .empty = machine.take(into: &batch), machine.register("reader") else {
        Issue.record("the reader could not wait")
        return machine
    }
    return machine
}

/// Senders writing for an idle reader (MailboxStateMachine's immediate writes): the reader is
/// never woken while a sender writes, order is kept across a partial write, and every frame is
/// written or counted as dropped.
@Suite("Immediate writes: state machine")
struct ImmediateWriteStateTests {
    @Test func aFrameForAnIdleReaderIsWrittenByTheSenderAndTheReaderSleepsOn() {
        var machine = idleMachine()
        guard case .writeImmediately = machine.enqueue(delivery("a")) else { Issue.record("not written by the sender"); return }
        var batch = machine.takeImmediate()
        #expect(texts(batch) == texts([delivery("a")]))
        #expect(machine.heldBytes == batch[0].frame.count, "what is being written counts against the shared limit")
        let action = machine.immediateWriteEnded(.written, batch: &batch)
        #expect(action.consumer == nil, "nothing to do: the reader sleeps on")
        #expect(machine.heldBytes == 0)
        // And the next frame goes the same way.
        guard case .writeImmediately = machine.enqueue(delivery("b")) else { Issue.record("second frame not written by the sender"); return }
        var second = machine.takeImmediate()
        _ = machine.immediateWriteEnded(.written, batch: &second)
        #expect(machine.acceptedEvents == 2)
    }

    @Test func withoutPermissionTheReaderIsWokenAsBefore() {
        var machine = Machine(capacity: 4, policy: .dropOldest, clientLastEventID: nil)
        var batch: [Delivery] = []
        _ = machine.take(into: &batch)
        _ = machine.register("reader")
        guard case .resume("reader") = machine.enqueue(delivery("a")) else { Issue.record("reader not woken"); return }
    }

    @Test func framesArrivingDuringTheWriteQueueAndWakeTheReaderAfterIt() {
        var machine = idleMachine()
        _ = machine.enqueue(delivery("a"))
        var batch = machine.takeImmediate()
        guard case .queued = machine.enqueue(delivery("b")) else { Issue.record("woke someone during the write"); return }
        guard case .queued = machine.enqueue(delivery("c")) else { Issue.record("woke someone during the write"); return }
        let action = machine.immediateWriteEnded(.written, batch: &batch)
        #expect(action.consumer == "reader")
        var taken: [Delivery] = []
        guard case .batch = machine.take(into: &taken) else { Issue.record("no batch"); return }
        #expect(texts(taken) == texts([delivery("b"), delivery("c")]))
    }

    @Test func whatTheKernelDidNotTakeGoesFirstThenWhatCameMeanwhile() {
        var machine = idleMachine(capacity: 8)
        _ = machine.enqueue(contentsOf: ["a", "b", "c"])
        var batch = machine.takeImmediate()
        #expect(batch.count == 3)
        _ = machine.enqueue(delivery("d"))
        // The kernel took "a" whole and part of "b".
        let rest = Delivery(frame: EventFrame(encodedBytes: Array(batch[1].frame.bytes.dropFirst(3))), name: nil, id: nil)
        let unwritten = batch[2...]
        let action = machine.immediateWriteEnded(.partial(remainder: rest, unwritten: unwritten), batch: &batch)
        #expect(batch.isEmpty, "the batch's storage went back to the mailbox")
        #expect(action.consumer == "reader")
        #expect(machine.heldBytes == rest.frame.count + unwritten.first!.frame.count + delivery("d").frame.count)
        var taken: [Delivery] = []
        guard case .batch = machine.take(into: &taken) else { Issue.record("no batch"); return }
        #expect(texts(taken) == [texts([rest])[0]] + texts([delivery("c"), delivery("d")]))
        #expect(machine.droppedCount == 0)
    }

    @Test func theEndDuringTheWriteWakesTheReaderOnlyAfterIt() {
        var machine = idleMachine()
        _ = machine.enqueue(delivery("a"))
        var batch = machine.takeImmediate()
        let finish = machine.finish(.clientGone, drain: false)
        #expect(finish.consumer == nil, "the reader must not see the end while the sender writes to its socket")
        let rest = Delivery(frame: EventFrame(encodedBytes: [UInt8](batch[0].frame.bytes.dropFirst(2))), name: nil, id: nil)
        let action = machine.immediateWriteEnded(.partial(remainder: rest, unwritten: []), batch: &batch)
        #expect(action.consumer == "reader")
        #expect(machine.droppedCount == 1, "a frame cut short by the end is lost, and counted")
        var taken: [Delivery] = []
        guard case .end(.clientGone) = machine.take(into: &taken) else { Issue.record("the reader did not see the end"); return }
    }

    @Test func aDrainingEndStillWritesTheRemainderAndTheQueue() {
        var machine = idleMachine()
        _ = machine.enqueue(delivery("a"))
        var batch = machine.takeImmediate()
        _ = machine.enqueue(delivery("b"))
        #expect(machine.finish(.closedByServer, drain: true).consumer == nil)
        let first = batch[0]
        let action = machine.immediateWriteEnded(.partial(remainder: first, unwritten: []), batch: &batch)
        #expect(action.consumer == "reader")
        var taken: [Delivery] = []
        guard case .batch = machine.take(into: &taken) else { Issue.record("no batch"); return }
        #expect(texts(taken) == texts([delivery("a"), delivery("b")]))
        guard case .end(.closedByServer) = machine.take(into: &taken) else { Issue.record("no end after the drain"); return }
    }

    @Test func aFailedWriteEndsTheStreamAndCountsWhatWasLost() {
        var machine = idleMachine()
        _ = machine.enqueue(contentsOf: ["a", "b"])
        var batch = machine.takeImmediate()
        _ = machine.enqueue(delivery("c"))
        let action = machine.immediateWriteEnded(.failed(unwritten: 1), batch: &batch)
        #expect(action.consumer == "reader")
        #expect(action.dropped == 1, "the frame queued meanwhile")
        #expect(machine.droppedCount == 2)
        #expect(machine.heldBytes == 0)
        var taken: [Delivery] = []
        guard case .end(.clientGone) = machine.take(into: &taken) else { Issue.record("the stream did not end"); return }
        guard case .rejected = machine.enqueue(delivery("d")) else { Issue.record("a closed stream took a frame"); return }
    }

    @Test func anOverflowDuringTheWriteDisconnectsWithoutWakingTheReader() {
        var machine = idleMachine(capacity: 1, policy: .disconnect)
        _ = machine.enqueue(delivery("a"))
        var batch = machine.takeImmediate()
        _ = machine.enqueue(delivery("b"))
        guard case .disconnected(let dropped, let consumer) = machine.enqueue(delivery("c")) else { Issue.record("no disconnect"); return }
        #expect(dropped == 2)
        #expect(consumer == nil)
        let action = machine.immediateWriteEnded(.written, batch: &batch)
        #expect(action.consumer == "reader")
        var taken: [Delivery] = []
        guard case .end(.slowClient) = machine.take(into: &taken) else { Issue.record("the stream did not end"); return }
    }

    @Test func aDrainingEndWaitsForTheBatchTheReaderIsWriting() {
        var machine = Machine(capacity: 4, policy: .dropOldest, clientLastEventID: nil)
        _ = machine.enqueue(delivery("a"))
        var batch: [Delivery] = []
        guard case .batch = machine.take(into: &batch) else { Issue.record("no batch"); return }
        // The reader is writing "a" when the server closes the stream, with a drain.
        _ = machine.finish(.closedByServer, drain: true)
        #expect(machine.phase == .draining(.closedByServer), "finished at once: the transport would cut the write in flight")
        guard case .end(.closedByServer) = machine.take(into: &batch) else { Issue.record("no end once the write is done"); return }
        #expect(machine.droppedCount == 0)
    }

    @Test func aDrainingEndWaitsForTheSendersWrite() {
        var machine = idleMachine()
        _ = machine.enqueue(delivery("a"))
        var batch = machine.takeImmediate()
        #expect(machine.finish(.closedByServer, drain: true).consumer == nil)
        #expect(machine.phase == .draining(.closedByServer))
        #expect(machine.immediateWriteEnded(.written, batch: &batch).consumer == "reader")
        var taken: [Delivery] = []
        guard case .end(.closedByServer) = machine.take(into: &taken) else { Issue.record("no end"); return }
    }

    @Test func anUndrainedEndDoesNotWait() {
        var machine = Machine(capacity: 4, policy: .dropOldest, clientLastEventID: nil)
        _ = machine.enqueue(delivery("a"))
        var batch: [Delivery] = []
        _ = machine.take(into: &batch)
        _ = machine.finish(.clientGone, drain: false)
        #expect(machine.phase == .finished(.clientGone))
    }

    @Test func aHeartbeatDuringTheWriteWaitsForTheReader() {
        var machine = idleMachine()
        _ = machine.enqueue(delivery("a"))
        var batch = machine.takeImmediate()
        guard case .queued = machine.enqueueIfIdle(Delivery(frame: EventFrame(comment: ""), name: nil, id: nil, isControl: true)) else {
            Issue.record("the heartbeat was not queued"); return
        }
        #expect(machine.immediateWriteEnded(.written, batch: &batch).consumer == "reader")
    }
}

extension MailboxStateMachine where Consumer == String, Sender == String {
    fileprivate mutating func enqueue(contentsOf texts: [String]) -> [EnqueueAction] {
        texts.map { enqueue(delivery($0)) }
    }
}
