/// A token bucket: up to `burst` requests at once, then `rate` a second on average. A pure
/// value; the caller passes the time.
struct TokenBucket: Sendable {
    /// Tokens added per second.
    let rate: Double
    /// Tokens the bucket holds when full.
    let burst: Double
    private var available: Double
    private var updated: ContinuousClock.Instant?

    /// A full bucket.
    init(rate: Double, burst: Int) {
        self.rate = rate
        self.burst = Double(burst)
        available = Double(burst)
    }

    /// Takes one token if one is available at `now`.
    ///
    /// - Returns: `false` if the bucket is empty: the request is over the rate.
    mutating func take(at now: ContinuousClock.Instant) -> Bool {
        available = tokens(at: now)
        if updated.map({ now > $0 }) ?? true { updated = now }
        guard available >= 1 else { return false }
        available -= 1
        return true
    }

    /// The tokens held at `now`. A time before the last update (another thread's clock read)
    /// adds nothing and takes nothing back.
    func tokens(at now: ContinuousClock.Instant) -> Double {
        guard let updated, now > updated else { return available }
        let (seconds, attoseconds) = (now - updated).components
        return min(burst, available + (Double(seconds) + Double(attoseconds) / 1e18) * rate)
    }

    /// How long after `now` a token is available: zero if one is.
    func wait(at now: ContinuousClock.Instant) -> Duration {
        let missing = 1 - tokens(at: now)
        return missing > 0 ? .seconds(missing / rate) : .zero
    }

    /// Whether the bucket is full at `now`: then it is no different from a new one.
    func isFull(at now: ContinuousClock.Instant) -> Bool {
        tokens(at: now) >= burst
    }
}
