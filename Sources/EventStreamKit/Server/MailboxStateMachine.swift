/// The pure state of one connection's queue: what is queued, who waits, and what each
/// operation must do next. No locks, no tasks: ``Mailbox`` runs it under a `Mutex` and
/// performs the actions it returns, and the tests drive it directly.
///
/// Bounded in frames and in bytes (Docs/Decisions/0007-byte-budgets-and-vectored-writes.md).
///
/// The queue has two limits, `capacity` frames and `byteLimit` bytes (blocked senders'
/// frames included); the overflow policy applies to whichever is hit first. A frame is
/// always accepted into an empty queue, however large, so that it can still be delivered:
/// the queue holds at most `byteLimit` bytes, or that one frame (so never more than
/// `byteLimit` plus one frame), plus blocked senders' frames. The last frame of a draining
/// ``finish(_:drain:last:)`` goes beyond both limits.
///
/// Frames from ``prepend(_:)`` (the retry field, a replay) are *owed*: held apart, ahead of
/// the queue, outside both limits (they are bounded by whoever replays them), and never
/// dropped by the overflow policy. Live frames that arrive behind a long replay obey the
/// limits on their own, so a client catching up on more events than its queue holds loses
/// none of them to the live events that keep coming meanwhile.
///
/// A third limit is shared by every connection of a hub (``EventServer/Configuration/totalQueueByteLimit``):
/// ``enqueue(_:sharedRoom:)`` is told how many bytes are left of it, and a frame that would
/// go over it into a non-empty queue overflows too. What the queue holds counts against it
/// until the reader has written it: ``heldBytes`` is the queue plus the batch last taken.
///
/// A waiting reader may let senders write for it (``allowImmediateWrites()``): a frame for an
/// idle stream then goes to the client from the sender's thread, without waking the reader
/// (``EnqueueAction/writeImmediately``). While a sender writes, the reader is not woken by
/// anything, so that it never writes beside the sender, nor sees the end and lets the socket
/// close while the sender still writes to it; the write's end (``immediateWriteEnded(_:batch:)``)
/// hands back to the reader whatever it must do next. What the kernel did not take goes
/// first, ahead of anything queued meanwhile: order is kept.
/// (Docs/Decisions/0012-immediate-writes.md)
///
/// `Consumer` and `Sender` are whatever the storage uses to wake the reader and a
/// suspended sender (continuations there, plain tokens in tests).
struct MailboxStateMachine<Consumer, Sender> {
    enum Phase: Equatable {
        case open
        /// Finishing once the reader has taken what is queued.
        case draining(DisconnectReason)
        case finished(DisconnectReason)
    }

    enum EnqueueAction {
        /// Queued; nobody to wake.
        case queued
        /// The reader is waiting and lets senders write for it: take the queue with
        /// ``takeImmediate()``, write it without waiting, and report with
        /// ``immediateWriteEnded(_:batch:)``. Until then the reader stays asleep.
        case writeImmediately
        /// Queued after dropping `dropped` older frames (``OverflowPolicy/dropOldest`` or
        /// ``OverflowPolicy/coalesce``).
        case queuedDropping(dropped: Int)
        /// The reader was waiting: wake it. It takes the queue when it runs, so the batch
        /// holds everything that arrived by then, not just this frame.
        case resume(Consumer)
        /// The queue is full and the policy makes the sender wait: call
        /// ``waitForSpace(ticket:sender:)`` with this ticket.
        case suspend(ticket: UInt64)
        /// Overflow under ``OverflowPolicy/disconnect``: the mailbox is finished, `dropped`
        /// frames were discarded; the reader, if waiting, must be woken with `nil`.
        case disconnected(dropped: Int, consumer: Consumer?)
        /// The mailbox is closing or closed; the frame was not queued.
        case rejected
    }

    enum TakeAction {
        /// The reader has this batch; wake these senders with `true` (their frames are in it).
        case batch(senders: [Sender])
        /// Nothing queued: the reader should ``register(_:)`` and wait.
        case empty
        /// The stream is over.
        case end(DisconnectReason)
    }

    enum WaitAction {
        /// The sender must wait to be woken.
        case wait
        /// Already decided: wake the sender with this result now.
        case resume(Bool)
    }

    struct FinishAction {
        /// Wake the reader: it finds the last frames, or the end.
        var consumer: Consumer?
        /// Wake these senders with `false`.
        var senders: [Sender] = []
        /// Frames discarded by this finish.
        var dropped = 0
    }

    /// How a sender's write for the waiting reader went.
    enum ImmediateOutcome {
        /// The client has every byte.
        case written
        /// The kernel's buffer filled: `remainder` is what is left of the first frame not
        /// written whole, and `unwritten` the frames after it; both still go to the client,
        /// remainder first, through the reader.
        case partial(remainder: Delivery, unwritten: ArraySlice<Delivery>)
        /// The write failed (the client is gone): `unwritten` frames did not reach it whole.
        case failed(unwritten: Int)
    }

    private struct BlockedSend {
        let ticket: UInt64
        let delivery: Delivery
        var sender: Sender?
    }

    let capacity: Int
    /// The most bytes queued before the policy applies (unless the queue is empty).
    let byteLimit: Int
    let policy: OverflowPolicy
    private(set) var phase = Phase.open
    /// The queued frames are `queue[head...]`: dropping the oldest advances `head` instead of
    /// shifting the array, so a full queue under `dropOldest` costs O(1) per frame, not
    /// O(capacity). The dropped prefix is cut off at the next take, or once it reaches the
    /// capacity: the array never holds more than twice the capacity. A dropped slot is
    /// overwritten with ``Delivery/vacated`` at once, so that it pins no frame meanwhile.
    private var queue: [Delivery] = []
    private var head = 0
    /// Frames from ``prepend(_:)``, handed to the reader before the queue.
    private var owed: [Delivery] = []
    private var consumer: Consumer?
    /// Whether the reader waits for frames (and so senders may write for it).
    var readerIsWaiting: Bool { consumer != nil }
    private var blocked: [BlockedSend] = []
    private var nextTicket: UInt64 = 0
    /// Frames accepted (queued or handed over) since the mailbox was made; comments excluded.
    private(set) var acceptedEvents = 0
    /// ``acceptedEvents`` when the last heartbeat round looked at this stream.
    private var acceptedAtLastRound = 0
    /// Frames accepted, comments included: the heartbeat timer's measure of activity.
    private(set) var acceptedFrames = 0
    /// Frames discarded by the overflow policy or by an undrained finish.
    private(set) var droppedCount = 0
    /// The `Last-Event-ID` the client connected with, until an event with an ID is queued.
    private(set) var clientLastEventID: String?
    /// The bytes of every live frame queued, blocked senders' included: what the byte limit
    /// applies to.
    private var liveBytes = 0
    /// The bytes of the owed frames.
    private var owedBytes = 0
    /// The bytes of every frame queued: owed, live and blocked senders'.
    var queuedBytes: Int { liveBytes + owedBytes }
    /// The bytes of the batch the reader took last: it is being written until the reader
    /// comes back for the next one (or the stream ends).
    private(set) var inFlightBytes = 0
    /// What this queue holds against the shared limit: queued and being written.
    var heldBytes: Int { queuedBytes + inFlightBytes }
    /// Room left of the shared limit for the enqueue in progress (`.max`: no shared limit).
    private var sharedRoom = Int.max
    /// The reader lets senders write for it while it waits.
    private(set) var immediateWritesAllowed = false
    /// A sender is writing for the waiting reader, which is not woken until it is done.
    private(set) var writingImmediately = false
    /// The queue's spare storage while a sender writes what it took: given back afterwards,
    /// so that writes for an idle stream allocate no array.
    private var spare: [Delivery] = []
    /// Writes senders made for the reader.
    private(set) var immediateWriteCount = 0
    /// The reader took a batch and has not come back for the next: it is writing it.
    private var readerHasBatch = false

    init(capacity: Int, byteLimit: Int = .max, policy: OverflowPolicy, clientLastEventID: String?) {
        precondition(capacity > 0, "a connection's queue capacity must be at least 1")
        precondition(byteLimit > 0, "a connection's queue byte limit must be at least 1")
        self.capacity = capacity
        self.byteLimit = byteLimit
        self.policy = policy
        self.clientLastEventID = clientLastEventID
        // No capacity reserved: an idle stream holds no queue storage at all, and after the
        // first wake-up the reader's recycled batch array becomes the queue.
    }

    var queuedCount: Int { owed.count + liveCount + blocked.count }

    /// Frames in the queue, not counting blocked senders'.
    private var liveCount: Int { queue.count - head }

    /// Whether `delivery` can join the queue without overflow: within both limits and behind
    /// no blocked sender, or into an empty queue whatever its size.
    private func admits(_ delivery: Delivery) -> Bool {
        guard blocked.isEmpty else { return false }
        // Written as a subtraction: `liveBytes + count` could overflow with `byteLimit == .max`.
        return liveCount == 0 || (liveCount < capacity && delivery.frame.count <= byteLimit - liveBytes && delivery.frame.count <= sharedRoom)
    }

    /// Drops the oldest live frame in O(1): its slot is vacated, `head` moves past it.
    private mutating func dropHead() {
        let freed = queue[head].frame.count
        if sharedRoom != .max { sharedRoom += freed }
        liveBytes -= freed
        queue[head] = .vacated
        head += 1
        droppedCount += 1
    }

    /// Counts frames the reader took from the queue but could not write.
    mutating func noteUnwritten(_ count: Int) {
        droppedCount += count
    }

    /// Cuts off the dropped prefix.
    private mutating func compact() {
        guard head > 0 else { return }
        queue.removeFirst(head)
        head = 0
    }

    /// Owes the reader frames that come first, ahead of everything queued or owed so far
    /// (the retry field, replayed events): beyond both limits, as they are bounded by the
    /// replay's own bounds, and never dropped by the overflow policy. Their bytes count in
    /// ``heldBytes``. Only before the reader started.
    mutating func prepend(_ deliveries: [Delivery]) {
        guard case .open = phase, !deliveries.isEmpty else { return }
        owed.insert(contentsOf: deliveries, at: 0)
        for delivery in deliveries {
            owedBytes += delivery.frame.count
            noteAccepted(delivery)
        }
    }

    /// Queues `delivery`, or applies the overflow policy.
    ///
    /// - Parameter sharedRoom: Bytes left of the limit shared by every connection; a frame
    ///   over it overflows a non-empty queue. Frames this call drops give their bytes back.
    mutating func enqueue(_ delivery: Delivery, sharedRoom: Int = .max) -> EnqueueAction {
        self.sharedRoom = sharedRoom
        defer { self.sharedRoom = .max }
        return enqueueWithinRoom(delivery)
    }

    private mutating func enqueueWithinRoom(_ delivery: Delivery) -> EnqueueAction {
        guard case .open = phase else { return .rejected }
        if admits(delivery) {
            queue.append(delivery)
            liveBytes += delivery.frame.count
            noteAccepted(delivery)
            if let waiting = consumer, !writingImmediately {
                if immediateWritesAllowed {
                    writingImmediately = true
                    return .writeImmediately
                }
                consumer = nil
                return .resume(waiting)
            }
            return .queued
        }
        switch policy.kind {
        case .dropOldest:
            // As many as it takes for the new frame to fit, all of them if it is oversized.
            // Each frame is dropped at most once, so this is O(1) amortized per frame.
            var dropped = 0
            while !admits(delivery) {
                dropHead()
                dropped += 1
            }
            if head >= capacity { compact() }
            queue.append(delivery)
            liveBytes += delivery.frame.count
            noteAccepted(delivery)
            return .queuedDropping(dropped: dropped)
        case .coalesce:
            let dropped = coalesce(with: delivery)
            noteAccepted(delivery)
            return .queuedDropping(dropped: dropped)
        case .disconnect:
            let action = finish(.slowClient, drain: false)
            droppedCount += 1  // the frame that did not fit is lost to this client too
            return .disconnected(dropped: action.dropped + 1, consumer: action.consumer)
        case .suspendSender:
            nextTicket += 1
            blocked.append(BlockedSend(ticket: nextTicket, delivery: delivery, sender: nil))
            liveBytes += delivery.frame.count
            noteAccepted(delivery)
            return .suspend(ticket: nextTicket)
        }
    }

    /// Queues a heartbeat only if nothing is queued: a client with frames waiting is not
    /// idle, and a full queue must not make a heartbeat wait or drop an event.
    /// Whether no event was accepted since the last heartbeat round looked; notes the count
    /// for the next round. A stream that had an event since then needs no heartbeat now.
    mutating func quietSinceLastHeartbeatRound() -> Bool {
        defer { acceptedAtLastRound = acceptedEvents }
        return acceptedEvents == acceptedAtLastRound
    }

    mutating func enqueueIfIdle(_ delivery: Delivery) -> EnqueueAction {
        guard case .open = phase, owed.isEmpty, liveCount == 0, blocked.isEmpty else { return .rejected }
        return enqueueWithinRoom(delivery)
    }

    /// Registers the sender for a ticket that ``enqueue(_:)`` answered with `.suspend`.
    mutating func waitForSpace(ticket: UInt64, sender: Sender) -> WaitAction {
        guard let index = blocked.firstIndex(where: { $0.ticket == ticket }) else {
            // Already moved to the reader (true) or discarded by a finish (false).
            if case .open = phase { return .resume(true) }
            if case .draining = phase { return .resume(true) }
            return .resume(false)
        }
        blocked[index].sender = sender
        return .wait
    }

    /// A suspended sender gave up waiting: the client is too slow, so it is disconnected.
    mutating func senderTimedOut(ticket: UInt64) -> FinishAction {
        guard blocked.contains(where: { $0.ticket == ticket }) else { return FinishAction() }
        return finish(.slowClient, drain: false)
    }

    /// Hands everything queued to the reader, in `batch`, whose old storage (emptied)
    /// becomes the queue's: in steady state no array is allocated per wake-up.
    mutating func take(into batch: inout [Delivery]) -> TakeAction {
        batch.removeAll(keepingCapacity: true)
        if !owed.isEmpty {
            // Once per stream at most: the owed frames, then what queued behind them.
            compact()
            batch = owed + queue
            queue.removeAll(keepingCapacity: true)
            owed = []
        }
        if !batch.isEmpty || liveCount > 0 || !blocked.isEmpty {
            if batch.isEmpty {
                compact()
                swap(&batch, &queue)
            }
            var senders: [Sender] = []
            for send in blocked {
                batch.append(send.delivery)
                if let sender = send.sender { senders.append(sender) }
            }
            blocked.removeAll()
            readerHasBatch = true
            inFlightBytes = queuedBytes
            liveBytes = 0
            owedBytes = 0
            return .batch(senders: senders)
        }
        // The reader came back: what it took before is written.
        inFlightBytes = 0
        readerHasBatch = false
        switch phase {
        case .open:
            return .empty
        case .draining(let reason):
            phase = .finished(reason)
            return .end(reason)
        case .finished(let reason):
            return .end(reason)
        }
    }

    /// Registers the reader to be woken by the next frame or the end. Returns `false` if
    /// there is something to take already: the reader must not wait then.
    mutating func register(_ waiting: Consumer) -> Bool {
        guard owed.isEmpty, liveCount == 0, blocked.isEmpty, case .open = phase else { return false }
        precondition(consumer == nil, "a mailbox has one reader")
        consumer = waiting
        return true
    }

    /// Ends the stream. With `drain`, what is queued is still handed to the reader first,
    /// followed by `last` (queued beyond the capacity), if given.
    mutating func finish(_ reason: DisconnectReason, drain: Bool, last: Delivery? = nil) -> FinishAction {
        switch phase {
        case .finished:
            return FinishAction()
        case .draining where drain:
            return FinishAction()
        case .open, .draining:
            break
        }
        if drain, let last {
            queue.append(last)
            liveBytes += last.frame.count
            noteAccepted(last)
        }
        // While a sender writes for the reader, the reader sleeps on: the write's end wakes it.
        let wake = writingImmediately ? nil : consumer
        if wake != nil { consumer = nil }
        // A drain also lets the batch being written finish, by the reader or by a sender:
        // ending now would shut the socket down under that write and cut a frame in half.
        if drain && (queuedCount > 0 || readerHasBatch || writingImmediately) {
            phase = .draining(reason)
            return FinishAction(consumer: wake)
        }
        var action = FinishAction(consumer: wake)
        action.dropped = queuedCount
        action.senders = blocked.compactMap(\.sender)
        droppedCount += action.dropped
        queue.removeAll()
        head = 0
        owed = []
        blocked.removeAll()
        liveBytes = 0
        owedBytes = 0
        phase = .finished(reason)
        return action
    }

    /// Lets senders write for the reader while it waits (see ``EnqueueAction/writeImmediately``).
    mutating func allowImmediateWrites() {
        immediateWritesAllowed = true
    }

    /// What a sender told ``EnqueueAction/writeImmediately`` writes: everything queued,
    /// handed over as the reader's ``take(into:)`` would. Blocked senders' frames stay queued
    /// for the reader, behind it.
    mutating func takeImmediate() -> [Delivery] {
        precondition(writingImmediately, "takeImmediate() without .writeImmediately")
        compact()
        let batch = queue
        queue = spare
        spare = []
        inFlightBytes = liveBytes
        liveBytes = 0
        return batch
    }

    /// The sender's write is done: what it did not write goes first, ahead of what was queued
    /// meanwhile (or counts as dropped, if the stream ended without a drain meanwhile); a
    /// failed write ends the stream (``DisconnectReason/clientGone``). Returns the reader to
    /// wake, if it now has something to take or the stream is over, with the senders to wake
    /// with `false` and the frames dropped if the stream ended here.
    ///
    /// - Parameter batch: What ``takeImmediate()`` returned; emptied, its storage is kept for
    ///   the next (without a copy if `batch` is its only owner).
    mutating func immediateWriteEnded(_ outcome: ImmediateOutcome, batch: inout [Delivery]) -> FinishAction {
        precondition(writingImmediately, "immediateWriteEnded without a write")
        writingImmediately = false
        immediateWriteCount += 1
        inFlightBytes = 0
        batch.removeAll(keepingCapacity: true)
        swap(&spare, &batch)
        var action = FinishAction()
        switch outcome {
        case .written:
            break
        case .partial(let remainder, let unwritten):
            switch phase {
            case .open, .draining:
                owed.insert(contentsOf: CollectionOfOne(remainder) + unwritten, at: 0)
                owedBytes += unwritten.reduce(remainder.frame.count) { $0 + $1.frame.count }
            case .finished:
                droppedCount += 1 + unwritten.count
            }
        case .failed(let unwritten):
            droppedCount += unwritten
            action = finish(.clientGone, drain: false)
        }
        if let waiting = consumer, !owed.isEmpty || liveCount > 0 || !blocked.isEmpty || phase != .open {
            consumer = nil
            action.consumer = waiting
        }
        return action
    }

    private mutating func noteAccepted(_ delivery: Delivery) {
        acceptedFrames += 1
        if delivery.isControl { return }
        acceptedEvents += 1
        if delivery.id != nil { clientLastEventID = nil }
    }

    /// Removes every queued event that a newer one with the same name supersedes (the
    /// new `delivery` included); then, if less than a quarter of the capacity, or of the
    /// byte limit once `delivery` is in, is free, the oldest frames until a quarter of both
    /// is (or the queue is empty); appends `delivery`. Returns how many frames were removed.
    ///
    /// The scan is O(capacity), and the quarter keeps it to one scan per capacity/4 frames
    /// (or per byteLimit/4 bytes): freeing one slot per scan made a full queue of distinct
    /// names cost O(capacity) per frame (115x `dropOldest`'s time in `FANOUT_ONLY=overload`).
    private mutating func coalesce(with delivery: Delivery) -> Int {
        compact()
        let before = queue.count
        var newestByName: [String?: Int] = [delivery.name: queue.count]
        for index in queue.indices.reversed() where !queue[index].isControl && newestByName[queue[index].name] == nil {
            newestByName[queue[index].name] = index
        }
        var kept: [Delivery] = []
        kept.reserveCapacity(queue.count)
        for (index, queued) in queue.enumerated() where queued.isControl || newestByName[queued.name] == index {
            kept.append(queued)
        }
        queue = kept
        let room = max(1, capacity / 4)
        let byteTarget = byteLimit - byteLimit / 4
        var excess = max(0, queue.count - (capacity - room))
        var bytes = queue[excess...].reduce(0) { $0 + $1.frame.count }
        while excess < queue.count && delivery.frame.count > byteTarget - bytes {
            bytes -= queue[excess].frame.count
            excess += 1
        }
        queue.removeFirst(excess)
        queue.append(delivery)
        liveBytes = bytes + delivery.frame.count
        let dropped = before + 1 - queue.count
        droppedCount += dropped
        return dropped
    }
}
