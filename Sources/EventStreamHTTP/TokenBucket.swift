import EventStreamKit

/// A token bucket: holds up to `rate.burst` tokens, refilled at `rate.linesPerSecond`;
/// each line takes one. A pure value; time is passed in.
struct TokenBucket {
    let rate: LogRate
    private var tokens: Double
    private var refilledAt: ContinuousClock.Instant?

    /// A full bucket.
    init(rate: LogRate) {
        self.rate = rate
        tokens = rate.burst
    }

    /// Takes a token if there is one at `now`.
    ///
    /// - Returns: `false` when the bucket is empty: the line is over the rate.
    mutating func take(now: ContinuousClock.Instant) -> Bool {
        if let refilledAt {
            // A clock that goes backwards refills nothing, and the time it went back is not
            // counted twice.
            guard now > refilledAt else { return takeOne() }
            tokens = min(rate.burst, tokens + (now - refilledAt).inSeconds * rate.linesPerSecond)
        }
        refilledAt = now
        return takeOne()
    }

    private mutating func takeOne() -> Bool {
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
