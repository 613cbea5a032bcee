import Synchronization

/// One timer for the deadlines of every Redis command in the process, as the built-in server
/// has one sweep timer for its connections (Docs/Decisions/0003-one-sweep-timer.md).
///
/// A cluster node sends a command per append and a blocking read per batch it tails: hundreds
/// a second. Each used to race its reply against a `Task.sleep` in a task group of its own:
/// two tasks per command, and a sleep that, cancelled, still kept its timer until the deadline
/// and woke a thread then. Here a command adds its deadline to a ``DeadlineBook`` under a lock
/// and removes it when the reply is in; one task sleeps until the earliest deadline it knows,
/// and runs the actions of those that are due. While no command is in flight no task runs.
///
/// An action runs on the timer's task, outside the lock, and must be quick: a command's action
/// shuts its socket down, which ends the read that waits on it.
final class DeadlineSweeper<C: Clock>: Sendable where C.Duration == Duration {
    typealias Action = @Sendable () -> Void

    private let clock: C
    private let book = Mutex(DeadlineBook<C.Instant, Action>())
    private let timersStarted = Atomic<Int>(0)

    init(clock: C) {
        self.clock = clock
    }

    /// Runs `action` at `deadline` unless ``remove(_:)`` comes first.
    /// - Returns: The ticket for ``remove(_:)``.
    func add(_ deadline: C.Instant, action: @escaping Action) -> Int {
        let (ticket, next) = book.withLock { $0.add(deadline, action: action) }
        if case .setTimer(let wake, let generation) = next {
            timersStarted.add(1, ordering: .relaxed)
            // Ends when the book holds no deadline, or when a timer set for an earlier
            // deadline replaces it (the book's generation).
            Task { await self.runTimer(until: wake, generation: generation) }
        }
        return ticket
    }

    /// Removes a deadline.
    /// - Returns: `false` if it had come: its action has run or is running.
    func remove(_ ticket: Int) -> Bool {
        book.withLock { $0.remove(ticket) }
    }

    /// Deadlines not yet removed or come.
    var pendingCount: Int { book.withLock { $0.count } }

    /// How many timer tasks were started: one per earlier deadline, not one per deadline.
    var timersStartedCount: Int { timersStarted.load(ordering: .relaxed) }

    private func runTimer(until first: C.Instant, generation: Int) async {
        var wake = first
        while true {
            try? await clock.sleep(until: wake, tolerance: nil)
            switch book.withLock({ $0.timerFired(generation: generation, now: clock.now) }) {
            case .stop:
                return
            case .expire(let due, let next):
                for action in due { action() }
                guard let next else { return }
                wake = next
            }
        }
    }
}
