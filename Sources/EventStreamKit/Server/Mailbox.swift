import Synchronization

/// One connection's bounded queue: senders enqueue frames without awaiting (unless the
/// policy is ``OverflowPolicy/suspendSender(timeout:)`` and the queue is full), and the
/// reader awaits ``next()``, which hands over *everything* queued in one batch.
///
/// Why not `AsyncStream`: it suspends the reader once per element (about 1 µs each), and
/// its buffer policies cannot disconnect a client, suspend a sender or coalesce by name.
/// The logic lives in ``MailboxStateMachine``; this class only locks and wakes.
final class Mailbox: Sendable {
    typealias Machine = MailboxStateMachine<UnsafeContinuation<[Delivery]?, Never>, UnsafeContinuation<Bool, Never>>

    /// What a send did, for the hub to count and report.
    enum EnqueueOutcome {
        case queued
        case dropped(Int)
        case disconnected(dropped: Int)
        case mustWait(ticket: UInt64)
        case rejected
    }

    private let state: Mutex<Machine>

    init(capacity: Int, policy: OverflowPolicy, clientLastEventID: String?) {
        state = Mutex(Machine(capacity: capacity, policy: policy, clientLastEventID: clientLastEventID))
    }

    var clientLastEventID: String? { state.withLock { $0.clientLastEventID } }
    var droppedCount: Int { state.withLock { $0.droppedCount } }
    var queuedCount: Int { state.withLock { $0.queuedCount } }
    var acceptedEvents: Int { state.withLock { $0.acceptedEvents } }
    var isFinished: Bool {
        state.withLock { if case .finished = $0.phase { true } else { false } }
    }

    func prepend(_ deliveries: [Delivery]) {
        state.withLock { $0.prepend(deliveries) }
    }

    func enqueue(_ delivery: Delivery) -> EnqueueOutcome {
        perform(state.withLock { $0.enqueue(delivery) })
    }

    /// Queues `delivery` only if the queue is empty; see ``MailboxStateMachine/enqueueIfIdle(_:)``.
    func enqueueIfIdle(_ delivery: Delivery) -> EnqueueOutcome {
        perform(state.withLock { $0.enqueueIfIdle(delivery) })
    }

    private func perform(_ action: Machine.EnqueueAction) -> EnqueueOutcome {
        switch action {
        case .queued:
            return .queued
        case .queuedDropping(let dropped):
            return .dropped(dropped)
        case .resume(let consumer, let batch):
            consumer.resume(returning: batch)
            return .queued
        case .suspend(let ticket):
            return .mustWait(ticket: ticket)
        case .disconnected(let dropped, let consumer):
            consumer?.resume(returning: nil)
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
            perform(state.withLock { $0.senderTimedOut(ticket: ticket) })
            group.cancelAll()
            while await group.next() != nil {}
            return false
        }
    }

    /// The next batch, in the order sent, or `nil` once the stream is over. Cancelling the
    /// calling task ends the stream (``DisconnectReason/cancelled``).
    func next() async -> [Delivery]? {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { continuation in
                switch state.withLock({ $0.next(consumer: continuation) }) {
                case .batch(let batch, let senders):
                    for sender in senders { sender.resume(returning: true) }
                    continuation.resume(returning: batch)
                case .wait:
                    break
                case .end:
                    continuation.resume(returning: nil)
                }
            }
        } onCancel: {
            finish(.cancelled, drain: false)
        }
    }

    /// Why the stream ended, once it has.
    var endReason: DisconnectReason? {
        state.withLock { if case .finished(let reason) = $0.phase { reason } else { nil } }
    }

    /// Ends the stream; with `drain`, the reader still gets what is queued.
    /// - Returns: How many queued frames were dropped.
    @discardableResult
    func finish(_ reason: DisconnectReason, drain: Bool, last: Delivery? = nil) -> Int {
        let action = state.withLock { $0.finish(reason, drain: drain, last: last) }
        perform(action)
        return action.dropped
    }

    private func perform(_ action: Machine.FinishAction) {
        action.consumer?.resume(returning: nil)
        if let (consumer, batch) = action.resume { consumer.resume(returning: batch) }
        for sender in action.senders { sender.resume(returning: false) }
    }
}
