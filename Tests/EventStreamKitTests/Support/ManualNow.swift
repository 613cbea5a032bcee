import Synchronization

/// A `now` for types that take one (`StreamTickets`): an instant that moves only when told.
final class ManualNow: Sendable {
    private let instant = Mutex(ContinuousClock.now)

    var now: ContinuousClock.Instant { instant.withLock { $0 } }

    /// The clock as a closure, for an initializer's `now:` parameter.
    var closure: @Sendable () -> ContinuousClock.Instant { { self.now } }

    func advance(by duration: Duration) { instant.withLock { $0 += duration } }
}
