import EventStreamKit
import EventStreamHTTP
import Synchronization

/// The demo's sign-in, standing in for real authentication: a user name gets a fresh random
/// token, and only the token opens that user's stream or sends as that user. A real app
/// resolves its own session or bearer token at the same place (`DemoApp.user(for:)`).
///
/// Tokens are 128 random bits from the system's secure generator, so they cannot be guessed;
/// each names one user, so one user's token cannot open another's stream. They are kept in a
/// ``TokenStore`` (its discussion gives the bounds: 8 per user, 10,000 in all, and a full store
/// forgets only tokens unused for an hour), and sign-ins are limited to ``signInRate`` a
/// second after a burst of ``signInBurst``, so a flood of anonymous sign-ins can neither push
/// other users' tokens out nor fill the store in an instant.
///
/// Each signed-in user may send ``notifyRate`` notifications a second after a burst of
/// ``notifyBurst`` (``takeNotification(from:)``): the replay backlog is shared by everyone, and
/// one user's flood would otherwise push everyone's events out of it at once.
///
/// A facade: the policy is in ``TokenStore``, ``TokenBucket`` and ``PerUserRate``, pure values
/// under one lock.
final class Accounts: Sendable {
    static let signInRate = 20.0
    static let signInBurst = 100
    static let notifyRate = 5.0
    static let notifyBurst = 20

    /// What a sign-in with a valid name came to.
    enum SignIn: Equatable, Sendable {
        /// Issued; `forgotten` is the token forgotten to make room for it, if any.
        case token(String, forgotten: String?)
        /// Over the sign-in rate: 429, try again in a second.
        case tooFrequent
        /// The store is full of recently used tokens: 503, try again after `retryAfter`.
        case full(retryAfter: Duration)
        /// This user has the most tokens a user may have, all used recently: 429, try again
        /// after `retryAfter`.
        case userFull(retryAfter: Duration)
    }

    private struct State {
        var store: TokenStore
        var signIns: TokenBucket
        var notifications: PerUserRate
    }

    private let state: Mutex<State>
    private let now: @Sendable () -> ContinuousClock.Instant

    /// - Parameters:
    ///   - limits: The token store's bounds.
    ///   - signInRate: Sign-ins a second, on average, for everyone together.
    ///   - signInBurst: Sign-ins allowed at once.
    ///   - notifyRate: Notifications a second, on average, for each user.
    ///   - now: The clock; tests pass their own.
    init(
        limits: TokenStore.Limits = TokenStore.Limits(),
        signInRate: Double = Accounts.signInRate,
        signInBurst: Int = Accounts.signInBurst,
        notifyRate: Double = Accounts.notifyRate,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        state = Mutex(State(
            store: TokenStore(limits: limits),
            signIns: TokenBucket(rate: signInRate, burst: signInBurst),
            // Only a signed-in user sends, and each has a token: the store's capacity bounds
            // the users who need a bucket at once.
            notifications: PerUserRate(rate: notifyRate, burst: Self.notifyBurst, capacity: limits.capacity)
        ))
        self.now = now
    }

    /// Issues a token for `user`, unless sign-ins are over their rate or the store is full.
    ///
    /// - Throws: `HTTPError` 400 for a name that is not 1–32 letters, digits, `.`, `_` or `-`.
    func signIn(_ user: String) throws(HTTPError) -> SignIn {
        guard Self.isValidName(user) else {
            throw HTTPError(.badRequest, "a user name is 1-32 letters, digits, '.', '_' or '-'")
        }
        var generator = SystemRandomNumberGenerator()
        let token = (0..<2).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
        let now = now()
        return state.withLock { state in
            guard state.signIns.take(at: now) else { return .tooFrequent }
            switch state.store.issue(token, to: user, at: now) {
            case .issued(let forgotten): return .token(token, forgotten: forgotten)
            case .full(let retryAfter): return .full(retryAfter: retryAfter)
            case .userFull(let retryAfter): return .userFull(retryAfter: retryAfter)
            }
        }
    }

    /// The user a token was issued to, if it is kept; counts as a use of the token.
    func user(forToken token: String) -> String? {
        let now = now()
        return state.withLock { $0.store.user(forToken: token, at: now) }
    }

    /// Every token kept, with its user.
    var allTokens: [(token: String, user: String)] { state.withLock { $0.store.all } }

    /// Forgets `token` (a sign-in that could not be completed).
    func forget(_ token: String) {
        state.withLock { $0.store.forget(token) }
    }

    /// Takes one of `user`'s notifications: per user, not per token, so signing in again
    /// gives no new budget.
    ///
    /// - Returns: `nil` if it may be sent; otherwise how long until the next one may (429).
    func takeNotification(from user: String) -> Duration? {
        let now = now()
        return state.withLock { state in
            let store = state.store
            return state.notifications.take(for: user, at: now) { !store.tokens(of: $0).isEmpty }
        }
    }

    /// Users with a notification bucket (for the tests of its bound).
    var notificationBucketCount: Int { state.withLock { $0.notifications.bucketCount } }

    static func isValidName(_ name: String) -> Bool {
        (1...32).contains(name.utf8.count) && name.utf8.allSatisfy { byte in
            switch byte {
            case 48...57, 65...90, 97...122, 45, 46, 95: true
            default: false
            }
        }
    }
}
