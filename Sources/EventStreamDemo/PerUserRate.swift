/// A rate per user: one ``TokenBucket`` each, in at most `capacity` buckets. A pure value; the
/// caller passes the time and says which users are still signed in.
///
/// The buckets stay bounded without losing what matters: a full bucket is no different from a
/// new one, and a signed-out user cannot send, so both are forgotten when a new user needs room.
/// With a capacity of at least the users who can be signed in at once, that always makes room;
/// otherwise the fullest bucket goes, the one whose user is furthest from the limit.
struct PerUserRate: Sendable {
    let rate: Double
    let burst: Int
    let capacity: Int
    private var buckets: [String: TokenBucket] = [:]

    init(rate: Double, burst: Int, capacity: Int) {
        self.rate = rate
        self.burst = burst
        self.capacity = max(1, capacity)
    }

    /// Buckets kept.
    var bucketCount: Int { buckets.count }

    /// Takes one of `user`'s tokens at `now`.
    ///
    /// - Parameter isSignedIn: Whether a user may still send; those who may not lose their bucket
    ///   when room is needed.
    /// - Returns: `nil` if the request is within the rate; otherwise how long until it would be.
    mutating func take(for user: String, at now: ContinuousClock.Instant, isSignedIn: (String) -> Bool) -> Duration? {
        if buckets[user] == nil { makeRoom(at: now, isSignedIn: isSignedIn) }
        var bucket = buckets[user] ?? TokenBucket(rate: rate, burst: burst)
        let allowed = bucket.take(at: now)
        buckets[user] = bucket
        return allowed ? nil : bucket.wait(at: now)
    }

    /// O(buckets), but only when a user without a bucket finds them all taken, and then it
    /// frees every bucket that can go: 10,000 lookups at most, in the demo.
    private mutating func makeRoom(at now: ContinuousClock.Instant, isSignedIn: (String) -> Bool) {
        guard buckets.count >= capacity else { return }
        buckets = buckets.filter { user, bucket in !bucket.isFull(at: now) && isSignedIn(user) }
        if buckets.count >= capacity, let fullest = buckets.max(by: { $0.value.tokens(at: now) < $1.value.tokens(at: now) }) {
            buckets[fullest.key] = nil
        }
    }
}
