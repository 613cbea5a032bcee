/// The deadlines of the Redis commands in flight, and when the one timer that watches them must
/// wake: the pure state of ``DeadlineSweeper``, tested without a clock or a task.
///
/// A command adds its deadline before it writes and removes it when its reply is in; almost
/// every deadline is removed long before it is due. So the timer is not rescheduled on every
/// change: it wakes at the earliest deadline it knew of when it was set, expires what is due,
/// and sets itself for the earliest left. Only a deadline earlier than the timer's wake (a
/// command with a shorter timeout) asks for a new timer.
struct DeadlineBook<Instant: Comparable & Sendable, Action> {
    private var entries: [Int: (deadline: Instant, action: Action)] = [:]
    private var lastTicket = 0
    /// When the timer wakes; `nil` while no timer is set.
    private(set) var wake: Instant?
    /// Counts the timers set, so that a timer that was replaced can tell and stop.
    private(set) var generation = 0

    /// The deadlines not yet removed or expired.
    var count: Int { entries.count }

    /// What ``add(_:action:)`` asks of the caller.
    enum AddAction: Equatable {
        /// The timer that is set wakes early enough.
        case none
        /// Set a new timer for this instant, for this generation; a timer of an older
        /// generation stops when it wakes.
        case setTimer(Instant, generation: Int)
    }

    /// Adds a deadline.
    /// - Returns: The ticket that removes it, and whether a timer must be set.
    mutating func add(_ deadline: Instant, action: Action) -> (ticket: Int, action: AddAction) {
        lastTicket += 1
        entries[lastTicket] = (deadline, action)
        if let wake, wake <= deadline { return (lastTicket, .none) }
        wake = deadline
        generation += 1
        return (lastTicket, .setTimer(deadline, generation: generation))
    }

    /// Removes a deadline before it is due.
    /// - Returns: `false` if it had expired already (its action has run or is running).
    mutating func remove(_ ticket: Int) -> Bool {
        entries.removeValue(forKey: ticket) != nil
    }

    /// What the timer of `generation` does when it wakes at `now`.
    enum WakeAction {
        /// Run these actions (deadlines due), then sleep until the instant, or stop if `nil`.
        case expire([Action], next: Instant?)
        /// A newer timer replaced this one.
        case stop
    }

    /// Takes out the deadlines due at `now` and says when the timer wakes next.
    mutating func timerFired(generation: Int, now: Instant) -> WakeAction {
        guard generation == self.generation else { return .stop }
        var due: [Action] = []
        var next: Instant?
        for (ticket, entry) in entries {
            if entry.deadline <= now {
                due.append(entry.action)
                entries[ticket] = nil
            } else if next.map({ entry.deadline < $0 }) ?? true {
                next = entry.deadline
            }
        }
        wake = next
        return .expire(due, next: next)
    }
}
