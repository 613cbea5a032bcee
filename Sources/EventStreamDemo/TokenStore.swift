/// The demo's sign-in tokens and the policy that keeps them bounded: a pure value, with no
/// clock and no randomness of its own. ``Accounts`` locks it, draws the tokens and reads the
/// clock, so its tests need neither.
///
/// The bounds are chosen so that signing in, however often and under whatever names, cannot
/// sign anyone else out:
/// - at most ``Limits/perUser`` tokens per user name: one more forgets that user's least
///   recently used token only if it went unused for ``Limits/idleEviction``, and is refused
///   otherwise (``Issue/userFull(retryAfter:)``): signing in under someone's name, however
///   often, never signs them out;
/// - at most ``Limits/capacity`` tokens in all: when full, a token unused for longer than
///   ``Limits/idleEviction`` is forgotten (the least recently used first); if none is, the new
///   token is refused (``Issue/full(retryAfter:)``), and a flood fills the store, not the
///   logout page.
///
/// A token is used when it is issued and whenever ``user(forToken:at:)`` finds it. Issuing
/// and looking up are O(1): recency is a doubly linked list threaded through the entries.
struct TokenStore: Sendable {
    struct Limits: Sendable {
        /// Tokens kept per user name (sessions in several browsers, scripts).
        var perUser = 8
        /// Tokens kept in all.
        var capacity = 10_000
        /// How long a token must have gone unused before a full store forgets it for a newcomer.
        var idleEviction: Duration = .seconds(3600)
    }

    /// What ``issue(_:to:at:)`` did.
    enum Issue: Equatable, Sendable {
        /// The token is kept; `forgotten` is the one that made room for it, if any.
        case issued(forgotten: String?)
        /// The store is full of tokens used recently; the least recently used one becomes
        /// evictable after `retryAfter`.
        case full(retryAfter: Duration)
        /// The user has ``Limits/perUser`` tokens, all used recently; the least recently used
        /// becomes evictable after `retryAfter`.
        case userFull(retryAfter: Duration)
    }

    private struct Entry {
        var user: String
        var lastUsed: ContinuousClock.Instant
        /// Neighbours in recency order, toward the least and the most recently used.
        var older: String?
        var newer: String?
    }

    let limits: Limits
    private var entries: [String: Entry] = [:]
    /// Each user's tokens, oldest issued first (at most ``Limits/perUser``).
    private var issuedByUser: [String: [String]] = [:]
    private var leastRecent: String?
    private var mostRecent: String?

    init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Tokens kept.
    var count: Int { entries.count }

    /// `user`'s tokens, oldest issued first.
    func tokens(of user: String) -> [String] {
        issuedByUser[user] ?? []
    }

    /// Every token and its user, in no particular order.
    var all: [(token: String, user: String)] {
        entries.map { ($0.key, $0.value.user) }
    }

    /// Every token, least recently used first.
    var tokensByRecency: [String] {
        var result: [String] = []
        var next = leastRecent
        while let token = next {
            result.append(token)
            next = entries[token]?.newer
        }
        return result
    }

    /// Keeps `token` for `user`, making room as the type's discussion says, or refuses it.
    mutating func issue(_ token: String, to user: String, at now: ContinuousClock.Instant) -> Issue {
        forget(token)  // a repeated 128-bit random token: never, but the lists must stay consistent
        var forgotten: String?
        if let own = issuedByUser[user], own.count >= limits.perUser {
            let lastUses = own.compactMap { token in entries[token].map { (token, $0.lastUsed) } }
            guard let (idlest, lastUsed) = lastUses.min(by: { $0.1 < $1.1 }) else { return .userFull(retryAfter: limits.idleEviction) }
            let idle = now - lastUsed
            guard idle > limits.idleEviction else { return .userFull(retryAfter: limits.idleEviction - idle) }
            forgotten = idlest
        } else if entries.count >= limits.capacity {
            guard let candidate = leastRecent, let entry = entries[candidate] else {
                return .full(retryAfter: limits.idleEviction)
            }
            let idle = now - entry.lastUsed
            guard idle > limits.idleEviction else { return .full(retryAfter: limits.idleEviction - idle) }
            forgotten = candidate
        }
        if let forgotten { forget(forgotten) }
        append(token, Entry(user: user, lastUsed: now))
        issuedByUser[user, default: []].append(token)
        return .issued(forgotten: forgotten)
    }

    /// The user `token` was issued to, if it is kept; marks it used at `now`.
    mutating func user(forToken token: String, at now: ContinuousClock.Instant) -> String? {
        guard var entry = unlink(token) else { return nil }
        entry.lastUsed = now
        append(token, entry)
        return entry.user
    }

    /// Forgets `token`, if it is kept.
    mutating func forget(_ token: String) {
        guard let entry = unlink(token) else { return }
        issuedByUser[entry.user]?.removeAll { $0 == token }
        if issuedByUser[entry.user]?.isEmpty == true { issuedByUser[entry.user] = nil }
    }

    /// Adds `entry` as the most recently used.
    private mutating func append(_ token: String, _ entry: Entry) {
        var entry = entry
        entry.older = mostRecent
        entry.newer = nil
        if let previous = mostRecent { entries[previous]?.newer = token } else { leastRecent = token }
        mostRecent = token
        entries[token] = entry
    }

    /// Removes `token`'s entry from the entries and the recency list, not from its user's list.
    private mutating func unlink(_ token: String) -> Entry? {
        guard let entry = entries.removeValue(forKey: token) else { return nil }
        if let older = entry.older { entries[older]?.newer = entry.newer } else { leastRecent = entry.newer }
        if let newer = entry.newer { entries[newer]?.older = entry.older } else { mostRecent = entry.older }
        return entry
    }
}
