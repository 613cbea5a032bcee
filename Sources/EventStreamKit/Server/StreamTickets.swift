import Synchronization

/// Short-lived, single-use tickets that open one event stream each: what a browser puts in
/// the URL of its `EventSource` instead of a long-lived token.
///
/// The page asks for a ticket with a `POST` that carries its real credentials (a bearer token,
/// a session cookie), then opens `GET /events?ticket=…` at once. The events route redeems the
/// ticket: it yields the source it was issued for, and only once. A URL kept by a proxy or an
/// access log opens nothing: its ticket was used within a second, or expired within
/// ``Limits/lifetime``. See `Docs/Authentication.md`.
///
/// ```swift
/// let tickets = StreamTickets<String>()
/// var router = HTTPRouter()
/// router.post("/ticket") { request in
///     // The app's own authentication: a bearer token, a session cookie.
///     guard let user = try await authenticate(request) else { throw HTTPError(.unauthorized) }
///     let ticket: StreamTicket
///     do {
///         ticket = try tickets.issue(for: user)
///     } catch {
///         throw HTTPError(.serviceUnavailable, "\(error)")
///     }
///     return HTTPResponse(text: #"{"ticket":"\#(ticket.text)"}"#, contentType: "application/json")
/// }
/// router.events("/events", from: hub) { request in
///     guard let ticket = request.query["ticket"], let grant = tickets.redeem(ticket) else {
///         throw HTTPError(.unauthorized, "ask POST /ticket for a ticket")
///     }
///     return grant.source
/// }
/// ```
///
/// Bounded: at most ``Limits/capacity`` tickets are held (10,000 by default; each is a
/// dictionary entry with its source ID and channels, and a slot in the sweep queue), at most
/// ``Limits/perSource`` per source; expired ones are swept at every issue.
/// Past a limit, ``issue(for:channels:)`` throws ``StreamTicketError`` with the time until the
/// oldest ticket in the way expires: it never evicts a ticket someone is about to redeem.
///
/// Tickets are held in this process. In a cluster, where the ticket a node issues may be
/// redeemed on another, keep them where every node can redeem them atomically, with
/// ``StreamTicket/random()`` and ``Limits/lifetime``: in Redis, `SET <key> <source> EX 30`
/// and `GETDEL <key>` (the demo's `SharedTickets` does this).
///
/// Thread-safe: a facade over a pure value (the policy) under a `Mutex`.
public final class StreamTickets<SourceID: Hashable & Sendable>: Sendable {
    /// The bounds of a ticket store.
    public struct Limits: Sendable {
        /// How long a ticket stays valid after it is issued. Default: 30 seconds, enough for a
        /// page to open its stream over a slow network, short enough that a logged URL is dead.
        public var lifetime: Duration = .seconds(30)
        /// The most tickets held at once, expired ones included until swept. Default: 10,000.
        public var capacity = 10_000
        /// The most tickets held for one source. Default: 16 (pages that open several streams
        /// at once, each with its own ticket).
        public var perSource = 16

        /// The default limits.
        public init() {}
    }

    /// What a redeemed ticket grants.
    public struct Grant: Hashable, Sendable {
        /// The source the ticket was issued for: the stream it opens.
        public let source: SourceID
        /// The channels it may join, if it was issued for some; `nil`: the route decides.
        public let channels: Set<String>?
    }

    /// The bounds this store keeps.
    public let limits: Limits
    private let book: Mutex<StreamTicketBook<SourceID>>
    private let now: @Sendable () -> ContinuousClock.Instant

    /// Creates an empty store.
    ///
    /// - Parameters:
    ///   - limits: Lifetime and bounds. Default: 30 s, 10,000 tickets, 16 per source.
    ///   - now: The clock; tests pass their own.
    public init(limits: Limits = Limits(), now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.limits = limits
        book = Mutex(StreamTicketBook(limits: limits))
        self.now = now
    }

    /// Issues a ticket that opens one stream for `source`, within ``Limits/lifetime``.
    ///
    /// Authenticate the request with the real credentials before calling this, and refuse a
    /// request from another site's page (check `Origin`; see `Docs/Authentication.md`).
    ///
    /// - Parameters:
    ///   - source: The source the ticket's stream is for.
    ///   - channels: The channels the stream may join, for a route that checks them; `nil`
    ///     (the default) leaves that to the route.
    /// - Returns: The ticket: send its ``StreamTicket/text`` to the client.
    /// - Throws: ``StreamTicketError`` when ``Limits/capacity`` tickets are held, or
    ///   ``Limits/perSource`` for `source`; its ``StreamTicketError/retryAfter`` says when
    ///   the oldest of them expires.
    public func issue(for source: SourceID, channels: Set<String>? = nil) throws(StreamTicketError) -> StreamTicket {
        let grant = Grant(source: source, channels: channels)
        let now = now()
        while true {
            let ticket = StreamTicket.random()
            switch book.withLock({ $0.issue(ticket, for: grant, at: now) }) {
            case .issued: return ticket
            case .selectorTaken: continue
            case .full(let retryAfter): throw .full(capacity: limits.capacity, retryAfter: retryAfter)
            case .sourceFull(let retryAfter): throw .sourceFull(perSource: limits.perSource, retryAfter: retryAfter)
            }
        }
    }

    /// Redeems `ticket`: what it grants, if it was issued here, is unexpired and unused.
    ///
    /// The ticket is used up by this call, whatever happens next: a stream that fails to open
    /// needs a fresh ticket.
    ///
    /// - Returns: `nil` for an unknown, expired or already redeemed ticket.
    public func redeem(_ ticket: StreamTicket) -> Grant? {
        let now = now()
        return book.withLock { $0.redeem(ticket, at: now) }
    }

    /// Redeems a ticket as the client sent it (say `request.query["ticket"]`).
    ///
    /// - Returns: `nil` for text that is not a ticket, and as `redeem(_:)` given a ``StreamTicket``.
    public func redeem(_ text: String) -> Grant? {
        StreamTicket(text).flatMap { redeem($0) }
    }

    /// Tickets held, expired ones included until the next issue sweeps them.
    public var count: Int { book.withLock { $0.count } }
}
