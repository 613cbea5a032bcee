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
        if let updated, now > updated {
            let (seconds, attoseconds) = (now - updated).components
            available = min(burst, available + (Double(seconds) + Double(attoseconds) / 1e18) * rate)
        }
        if updated.map({ now > $0 }) ?? true { updated = now }
        guard available >= 1 else { return false }
        available -= 1
        return true
    }
}
