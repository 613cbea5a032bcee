import EventStreamKit

/// The stream tickets of a cluster's nodes, kept in the cluster's Redis, so that a ticket
/// issued by one node (`POST /ticket`, through the load balancer) opens a stream once on
/// whichever node the `GET /events?ticket=…` lands on.
///
/// A ticket is `<cluster>:demo:ticket:<ticket>` → user name, written with `SET … EX` for the
/// ticket's lifetime, and redeemed with `GETDEL` (Redis 6.2 or later): one atomic command, so
/// two nodes that redeem the same ticket at once cannot both get the user. Redis expires what
/// is never redeemed. The issuing node also keeps the ticket in its own `StreamTickets`, for
/// its bounds only (a node issues at most `capacity` tickets a lifetime, `perSource` per user);
/// a ticket redeemed on that same node is released there at once, one redeemed elsewhere when
/// it expires.
///
/// Why not a store protocol in the library: a ticket store across processes is async and can
/// fail (Redis unreachable: 503), the in-process one is neither, and the library's Redis
/// client is not public API; what the library shares is the ticket (``StreamTicket``) and the
/// lifetime, and this type is the few lines that remain.
struct SharedTickets: Sendable {
    let redis: RedisClient
    /// `<cluster>:demo:ticket:`.
    let prefix: String
    let lifetime: Duration

    init(redis: RedisClient, clusterName: String, lifetime: Duration) {
        self.redis = redis
        prefix = "\(clusterName):demo:ticket:"
        self.lifetime = lifetime
    }

    /// Makes `ticket` redeemable for `user` on every node, for the ticket's lifetime.
    ///
    /// - Throws: `RedisError` when Redis cannot be reached: the ticket opens nothing.
    func remember(_ ticket: StreamTicket, of user: String) async throws(RedisError) {
        let seconds = max(1, Int((lifetime / .seconds(1)).rounded(.up)))
        _ = try await redis.call("SET", prefix + ticket.text, user, "EX", String(seconds))
    }

    /// Redeems `ticket`: the user it was issued to, once, on any node.
    ///
    /// - Throws: `RedisError` when Redis cannot be reached.
    func redeem(_ ticket: StreamTicket) async throws(RedisError) -> String? {
        try await redis.call("GETDEL", prefix + ticket.text).string
    }
}
