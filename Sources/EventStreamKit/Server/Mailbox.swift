import Synchronization

/// One connection's bounded queue, in frames and in bytes: senders enqueue frames without
/// awaiting (unless the policy is ``OverflowPolicy/suspendSender(timeout:)`` and the queue
/// is full), and the reader awaits ``next()``, which hands over *everything* queued in one
/// batch.
///
/// Why not `AsyncStream`: it suspends the reader once per element (about 1 µs each), and
/// its buffer policies cannot disconnect a client, suspend a sender or coalesce by name.
/// The logic lives in ``MailboxStateMachine``; this class only locks and wakes.
/// (Docs/Decisions/0001-mailbox-not-asyncstream.md)
package final class Mailbox: Sendable {
    typealias Machine = MailboxStateMachine<UnsafeContinuation<Void, Never>, UnsafeContinuation<Bool, Never>>

    /// What a send did, for the hub to count and report.
    enum EnqueueOutcome {
        case queued
        case dropped(Int)
        case disconnected(dropped: Int)
        case mustWait(ticket: UInt64)
        case rejected
    }

    private let state: Mutex<Machine>
    private let finishActions = Mutex<(isFinished: Bool, actions: [@Sendable () -> Void])>((false, []))
    /// The limit shared with the hub's other connections, if any.
    private let budget: QueueBudget?
    /// Where a sender writes for the idle reader, once the reader allowed it.
    private let immediateWriter = Mutex<ImmediateWriter?>(nil)
    /// The error of a sender's write that failed, for the reader to report.
    private let immediateFailure = Mutex<(error: any Error, unwritten: Int)?>(nil)

    /// - Parameters:
    ///   - capacity: The most frames queued before `policy` applies.
    ///   - byteLimit: The most bytes queued before `policy` applies; see ``MailboxStateMachine``.
    ///   - budget: A byte limit shared with other mailboxes: what this one holds (queued, or
    ///     taken and not yet written) counts against it, and past it a frame into a non-empty
    ///     queue overflows.
    init(capacity: Int, byteLimit: Int, policy: OverflowPolicy, clientLastEventID: String?, budget: QueueBudget? = nil) {
        state = Mutex(Machine(capacity: capacity, byteLimit: byteLimit, policy: policy, clientLastEventID: clientLastEventID))
        self.budget = budget
    }

    deinit {
        // Whatever it still held (a reader that stopped without coming back) is given back.
        if let budget { budget.add(-state.withLock { $0.heldBytes }) }
    }

    /// Runs `body` on the state under the lock, and tells the shared budget what it changed.
    private func withMachine<Result>(_ body: (inout sending Machine) -> sending Result) -> sending Result {
        state.withLock { machine in
            guard let budget else { return body(&machine) }
            let before = machine.heldBytes
            let result = body(&machine)
            let change = machine.heldBytes - before
            if change != 0 { budget.add(change) }
            return result
        }
    }

    /// Room left of the shared budget (`.max` without one).
    private var sharedRoom: Int { budget?.room ?? .max }

    var clientLastEventID: String? { state.withLock { $0.clientLastEventID } }
    var droppedCount: Int { state.withLock { $0.droppedCount } }
    package var queuedCount: Int { state.withLock { $0.queuedCount } }
    var queuedBytes: Int { state.withLock { $0.queuedBytes } }
    /// See ``MailboxStateMachine/quietSinceLastHeartbeatRound()``.
    func quietSinceLastHeartbeatRound() -> Bool { state.withLock { $0.quietSinceLastHeartbeatRound() } }
    /// Writes senders made for the reader (``allowImmediateWrites(_:)``).
    var immediateWriteCount: Int { state.withLock { $0.immediateWriteCount } }
    /// Whether the reader waits for frames.
    var readerIsWaiting: Bool { state.withLock { $0.readerIsWaiting } }

    func prepend(_ deliveries: [Delivery]) {
        withMachine { $0.prepend(deliveries) }
    }

    func enqueue(_ delivery: Delivery) -> EnqueueOutcome {
        let room = sharedRoom
        let (action, batch) = withMachine { machine -> (Machine.EnqueueAction, [Delivery]) in
            let action = machine.enqueue(delivery, sharedRoom: room)
            // Taken under the same lock: one lock less per write for an idle stream.
            guard case .writeImmediately = action else { return (action, []) }
            return (action, machine.takeImmediate())
        }
        if case .writeImmediately = action {
            write(batch)
            return .queued
        }
        return perform(action)
    }

    /// Queues several frames in order under one lock, waking the reader at most once: a
    /// burst costs the reader one wake-up and the sink one write.
    func enqueue(contentsOf deliveries: [Delivery]) -> EnqueueOutcome {
        var wake: UnsafeContinuation<Void, Never>?
        var writeNow = false
        let outcome = withMachine { machine -> EnqueueOutcome in
            var result = EnqueueOutcome.rejected
            var dropped = 0
            let startBytes = machine.heldBytes
            let room = sharedRoom
            for delivery in deliveries {
                // The burst's own frames use up the room as they go.
                let left = room == .max ? .max : room - (machine.heldBytes - startBytes)
                switch machine.enqueue(delivery, sharedRoom: left) {
                case .queued:
                    result = .queued
                case .queuedDropping(let count):
                    dropped += count
                    result = .queued
                case .resume(let consumer):
                    wake = consumer
                    result = .queued
                case .writeImmediately:
                    writeNow = true
                    result = .queued
                case .suspend(let ticket):
                    result = .mustWait(ticket: ticket)  // FIFO: once the last is taken, all are
                case .disconnected(let count, let consumer):
                    // Later frames of the batch are refused, as later sends would be.
                    wake = consumer
                    return .disconnected(dropped: dropped + count)
                case .rejected:
                    return result
                }
            }
            if case .queued = result, dropped > 0 { return .dropped(dropped) }
            return result
        }
        if case .disconnected = outcome { notifyIfFinished() }
        wake?.resume()
        if writeNow { write(withMachine { $0.takeImmediate() }) }
        return outcome
    }

    /// Queues `delivery` only if the queue is empty; see ``MailboxStateMachine/enqueueIfIdle(_:)``.
    func enqueueIfIdle(_ delivery: Delivery) -> EnqueueOutcome {
        perform(withMachine { $0.enqueueIfIdle(delivery) })
    }

    private func perform(_ action: Machine.EnqueueAction) -> EnqueueOutcome {
        switch action {
        case .queued:
            return .queued
        case .queuedDropping(let dropped):
            return .dropped(dropped)
        case .resume(let consumer):
            consumer.resume()
            return .queued
        case .writeImmediately:
            write(withMachine { $0.takeImmediate() })
            return .queued
        case .suspend(let ticket):
            return .mustWait(ticket: ticket)
        case .disconnected(let dropped, let consumer):
            notifyIfFinished()
            consumer?.resume()
            return .disconnected(dropped: dropped)
        case .rejected:
            return .rejected
        }
    }

    /// Waits until the frame behind `ticket` went to the reader (`true`), or until
    /// `timeout` passes, which disconnects the client (`false`).
    func waitForSpace(ticket: UInt64, timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool?.self) { group in
            group.addTask {
                await withUnsafeContinuation { continuation in
                    switch self.state.withLock({ $0.waitForSpace(ticket: ticket, sender: continuation) }) {
                    case .wait: break
                    case .resume(let result): continuation.resume(returning: result)
                    }
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            if let result = await group.next()!, result {
                group.cancelAll()
                return true
            }
            // Timed out (or the waiter was told no): disconnecting wakes the waiter with false.
            perform(withMachine { $0.senderTimedOut(ticket: ticket) })
            group.cancelAll()
            while await group.next() != nil {}
            return false
        }
    }

    /// The next batch, in the order sent, or `nil` once the stream is over. Cancelling the
    /// calling task ends the stream (``DisconnectReason/cancelled``).
    nonisolated(nonsending) func next() async -> [Delivery]? {
        var batch: [Delivery] = []
        let more = await withTaskCancellationHandler {
            await next(into: &batch)
        } onCancel: {
            finish(.cancelled, drain: false)
        }
        return more ? batch : nil
    }

    /// Replaces `batch` with everything queued, waiting if nothing is; returns `false` once
    /// the stream is over. `batch`'s old storage becomes the queue's, so a reader that keeps
    /// passing the same array allocates nothing per wake-up.
    ///
    /// For a reader that handles cancellation itself, once for its whole loop (installing a
    /// cancellation handler per wake-up costs more than the wake-up's own work).
    /// `nonisolated(nonsending)`: a reader on an actor does not hop off and back per wake-up.
    nonisolated(nonsending) func next(into batch: inout [Delivery]) async -> Bool {
        while true {
            let action = withMachine { $0.take(into: &batch) }
            switch action {
            case .batch(let senders):
                for sender in senders { sender.resume(returning: true) }
                return true
            case .end:
                notifyIfFinished()
                return false
            case .empty:
                await withUnsafeContinuation { continuation in
                    if !state.withLock({ $0.register(continuation) }) { continuation.resume() }
                }
            }
        }
    }

    /// Lets senders write straight to the client while the reader waits: a frame for an idle
    /// stream then costs no wake-up. `writer` must not wait; the reader calls this between
    /// its own writes (never during one) and once per stream.
    func allowImmediateWrites(_ writer: ImmediateWriter) {
        immediateWriter.withLock { $0 = writer }
        withMachine { $0.allowImmediateWrites() }
    }

    /// Forgets the writer, once the stream is over.
    func endImmediateWrites() {
        immediateWriter.withLock { $0 = nil }
    }

    /// The error of a sender's write that ended the stream, if one did, and how many frames
    /// it left unwritten; once.
    func takeImmediateFailure() -> (error: any Error, unwritten: Int)? {
        immediateFailure.withLock { failure in defer { failure = nil }; return failure }
    }

    /// Writes `batch`, what ``MailboxStateMachine/takeImmediate()`` took for the waiting
    /// reader after the state machine answered
    /// ``MailboxStateMachine/EnqueueAction/writeImmediately``, from this thread, without
    /// waiting; then wakes the reader if the kernel did not take it all, or the stream ended
    /// meanwhile.
    private func write(_ taken: consuming [Delivery]) {
        // Owned here alone, so that the state machine can keep its storage without a copy.
        var batch = taken
        let outcome: Machine.ImmediateOutcome
        if batch.isEmpty {
            outcome = .written  // the burst that asked for it overflowed and ended the stream
        } else if let writer = immediateWriter.withLock({ $0 }) {
            switch writer.write(batch) {
            case .written:
                outcome = .written
            case .partial(let framesWritten, let remainder):
                outcome = .partial(remainder: remainder, unwritten: batch[(framesWritten + 1)...])
            case .failed(let error, let framesWritten):
                outcome = .failed(unwritten: batch.count - framesWritten)
                immediateFailure.withLock { $0 = (error, batch.count - framesWritten) }
            }
        } else {
            outcome = .partial(remainder: batch[0], unwritten: batch[1...])  // not reached: allowed only with a writer; the reader writes it
        }
        let action = withMachine { $0.immediateWriteEnded(outcome, batch: &batch) }
        perform(action)
    }

    /// Why the stream ended, once it has.
    var endReason: DisconnectReason? {
        state.withLock { if case .finished(let reason) = $0.phase { reason } else { nil } }
    }

    /// Ends the stream; with `drain`, the reader still gets what is queued.
    /// - Returns: How many queued frames were dropped.
    @discardableResult
    func finish(_ reason: DisconnectReason, drain: Bool, last: Delivery? = nil) -> Int {
        let action = withMachine { $0.finish(reason, drain: drain, last: last) }
        perform(action)
        return action.dropped
    }

    /// Ends the stream, for the transport (the client went away).
    /// - Returns: How many queued frames were dropped.
    @discardableResult
    package func finish(_ reason: DisconnectReason, drain: Bool) -> Int {
        finish(reason, drain: drain, last: nil)
    }

    /// Counts frames the reader took but could not write as dropped (``droppedCount``).
    func noteUnwritten(_ count: Int) {
        guard count > 0 else { return }
        state.withLock { $0.noteUnwritten(count) }
    }

    /// Runs `action` once the stream is over (at once if it already is), before the reader
    /// sees the end. Costs no task: the transport uses it to unblock a write stuck on a
    /// client that stopped reading. It runs under a lock, so it must be quick and must not
    /// call this mailbox.
    package func onFinish(_ action: @escaping @Sendable () -> Void) {
        let now = finishActions.withLock { state -> Bool in
            if state.isFinished { return true }
            state.actions.append(action)
            return false
        }
        if now { action() }
    }

    private func notifyIfFinished() {
        guard endReason != nil else { return }
        // The actions run under the lock: the reader, which also comes here before it sees
        // the end, waits until they are done. Else it could end the stream, and the transport
        // close the socket, while another thread is still about to shut it down: by then its
        // descriptor number may belong to another connection.
        finishActions.withLock { state in
            guard !state.isFinished else { return }
            state.isFinished = true
            for action in state.actions { action() }
            state.actions.removeAll()
        }
    }

    private func perform(_ action: Machine.FinishAction) {
        notifyIfFinished()
        action.consumer?.resume()
        for sender in action.senders { sender.resume(returning: false) }
    }
}

/// Writes frames to a client without waiting, from a sender's thread; see
/// ``Mailbox/allowImmediateWrites(_:)``.
struct ImmediateWriter: Sendable {
    enum Result {
        /// Every byte went out.
        case written
        /// The kernel took `framesWritten` frames whole and part of the next: `remainder` is
        /// that frame, shared, with ``Delivery/skip`` past the bytes written.
        case partial(framesWritten: Int, remainder: Delivery)
        /// The write failed after `framesWritten` whole frames.
        case failed(any Error, framesWritten: Int)
    }

    /// Writes what the kernel takes now; never waits.
    let write: @Sendable ([Delivery]) -> Result
}

/// A byte limit shared by every mailbox of a hub (``EventServer/Configuration/totalQueueByteLimit``):
/// each adds what it holds and takes it back when it is written or dropped.
final class QueueBudget: Sendable {
    let limit: Int
    private let used = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// Bytes held now by every mailbox together.
    var usedBytes: Int { used.load(ordering: .relaxed) }

    /// Bytes left before the limit (negative when a frame into an empty queue went over it).
    var room: Int { limit == .max ? .max : limit - used.load(ordering: .relaxed) }

    func add(_ bytes: Int) {
        used.add(bytes, ordering: .relaxed)
    }
}
