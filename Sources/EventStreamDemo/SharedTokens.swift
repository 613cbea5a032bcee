import EventStreamKit

/// The sign-in tokens of a cluster's nodes, shared through the cluster's Redis, so that a
/// token issued by one node opens streams and sends notifications on every node.
///
/// The node that issues a token keeps it in its own ``TokenStore`` too, with the store's
/// bounds, and writes it to Redis as `<cluster>:demo:token:<token>` → user name, for
/// ``lifetime``. A token the store forgets to make room is deleted from Redis as well. Another
/// node looks a token up in Redis when its own store does not hold it: one `GET`, on a
/// connection shared by all requests (see `RedisClient`).
///
/// Redis bounds what it holds: each node keeps at most `TokenStore.Limits.capacity` tokens, and
/// a token that one node forgot while Redis was unreachable expires after ``lifetime``.
struct SharedTokens: Sendable {
    /// How long a token lasts in Redis after it is issued.
    static let lifetime: Duration = .seconds(86_400)

    let redis: RedisClient
    /// `<cluster>:demo:token:`.
    let prefix: String

    init(redis: RedisClient, clusterName: String) {
        self.redis = redis
        prefix = "\(clusterName):demo:token:"
    }

    /// Shares `token` of `user` with the other nodes.
    ///
    /// - Throws: `RedisError` when Redis cannot be reached: the token works on no other node.
    func remember(_ token: String, of user: String) async throws(RedisError) {
        _ = try await redis.call("SET", prefix + token, user, "EX", String(Int(Self.lifetime / .seconds(1))))
    }

    /// Shares every token this node issued again, at once: after Redis lost its data (the
    /// log's epoch changed), so that a node's users can still reconnect through any node.
    /// Best effort: on failure they work on their own node only, until signed in again.
    func rememberAll(_ tokens: [(token: String, user: String)]) async {
        guard !tokens.isEmpty else { return }
        let lifetime = String(Int(Self.lifetime / .seconds(1)))
        _ = try? await redis.send(tokens.map { ["SET", prefix + $0.token, $0.user, "EX", lifetime] })
    }

    /// Stops sharing `token` (best effort: if Redis cannot be reached, it expires instead).
    func forget(_ token: String) async {
        _ = try? await redis.call("DEL", prefix + token)
    }

    /// The user a node of the cluster issued `token` to, if it is shared.
    ///
    /// - Throws: `RedisError` when Redis cannot be reached.
    func user(forToken token: String) async throws(RedisError) -> String? {
        // Only the shape of a token the demo issues: anything else costs no round trip.
        guard Self.isWellFormed(token) else { return nil }
        return try await redis.call("GET", prefix + token).string
    }

    /// 32 lowercase hexadecimal digits, as ``Accounts/signIn(_:)`` makes them.
    static func isWellFormed(_ token: String) -> Bool {
        token.utf8.count == 32 && token.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
