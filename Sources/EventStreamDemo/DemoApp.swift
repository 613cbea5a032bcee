import EventStreamKit
import EventStreamHTTP
import Foundation

/// The demo's routes over one hub keyed by user name.
///
/// | route | what |
/// |---|---|
/// | `GET /` | the page |
/// | `POST /signin` | `{"user": "alice"}` → `{"user": "alice", "token": "…"}`; 429 or 503 with `Retry-After` (see ``Accounts``) |
/// | `POST /ticket` | `Authorization: Bearer T` → `{"ticket": "…"}`: opens one stream of T's user within 30 s (see ``StreamTickets``); 429 or 503 with `Retry-After` past its bounds |
/// | `GET /events?ticket=K[&channels=news][&lastEventId=…]` | the stream of K's user, once (401 for a used, expired or unknown ticket); what the page opens |
/// | `GET /events?token=T[&channels=news]` | the signed-in user's stream (401 without a valid token); for scripts, never the page: a URL ends up in logs |
/// | `POST /notify` | `Authorization: Bearer T`, see ``NotifyRequest`` → 202 `{"id": "…"}`, sent from T's user; 429 with `Retry-After` past the user's rate (see ``Accounts``) |
/// | `POST /drop` | `Authorization: Bearer T`: ends that user's streams, so the browser reconnects |
/// | `GET /stats`, `GET /metrics` | counts, as JSON and in Prometheus text format |
/// | `GET /health` | `ok` |
///
/// The `POST` routes take no request from another site's page (see `requireSameOrigin`), and
/// those with a body only `Content-Type: application/json` (415 otherwise).
///
/// In a cluster (``init(benchMode:backlog:signInRate:notifyRate:cluster:)``) the hub is a node
/// of the cluster's hub, tokens are shared through Redis (``SharedTokens``), each stream starts
/// with a `node` event that names the node serving it, `/drop` ends the user's streams on
/// every node, and a ticket from one node opens a stream on any (``SharedTickets``). Rates stay per node: a user who sends through three nodes gets three budgets.
struct DemoApp: Sendable {
    /// What joins a demo to a cluster.
    struct ClusterSettings: Sendable {
        var redisURL: String
        /// The prefix of the cluster's keys in Redis.
        var name: String
        /// This node's name.
        var node: String
        /// About how many events the log keeps for replay.
        var logLength: Int
    }

    let hub: EventServer<String>
    /// What the hub's and the HTTP server's hooks report, for `/stats` and `/metrics`.
    let metrics: DemoMetrics
    let accounts: Accounts
    /// Bench mode: `/events` without a token is the anonymous source.
    let openEvents: Bool
    /// This node's name, in a cluster.
    let node: String?
    /// Tokens issued on other nodes, in a cluster.
    let sharedTokens: SharedTokens?
    /// Stream tickets: this node's, and its bounds in a cluster.
    let tickets: StreamTickets<String>
    /// Stream tickets redeemable on every node, in a cluster.
    let sharedTickets: SharedTickets?

    static let notification = try! EventType<Notification>("notification", marshal: .json(encoder: sortedKeys))
    static let news = try! EventType<News>("news", marshal: .json(encoder: sortedKeys))

    private static var sortedKeys: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    /// Now, in ISO 8601 with milliseconds: the page compares it with when it dropped its stream.
    static func timestamp() -> String {
        Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// A demo on its own.
    init(benchMode: Bool, backlog: Int = 256, signInRate: Double = Accounts.signInRate, notifyRate: Double = Accounts.notifyRate, overflowPolicy: OverflowPolicy = .dropOldest, queueCapacity: Int = 256) {
        accounts = Accounts(signInRate: signInRate, notifyRate: notifyRate)
        metrics = DemoMetrics()
        hub = EventServer(configuration: Self.configuration(backlog: backlog, overflowPolicy: overflowPolicy, queueCapacity: queueCapacity, observer: metrics))
        openEvents = benchMode
        node = nil
        sharedTokens = nil
        tickets = StreamTickets(limits: Self.ticketLimits)
        sharedTickets = nil
    }

    /// A demo that is one node of a cluster: every node started with the same Redis and
    /// cluster name shares the events, the replay window and the sign-in tokens.
    ///
    /// - Parameter backlog: The events this node keeps in memory for replay; older ones, up to
    ///   `cluster.logLength`, are read from Redis.
    /// - Throws: `EventServerError` for a malformed Redis URL.
    init(benchMode: Bool, backlog: Int = 256, signInRate: Double = Accounts.signInRate, notifyRate: Double = Accounts.notifyRate, overflowPolicy: OverflowPolicy = .dropOldest, queueCapacity: Int = 256, cluster: ClusterSettings) throws {
        accounts = Accounts(signInRate: signInRate, notifyRate: notifyRate)
        metrics = DemoMetrics()
        var configuration = Self.configuration(backlog: backlog, overflowPolicy: overflowPolicy, queueCapacity: queueCapacity, observer: metrics)
        // Bench mode's streams carry ticks only: the bench's generator reads every event.
        if !benchMode { configuration.welcomeEvent = try ServerSentEvent(event: "node", data: cluster.node) }
        hub = try EventServer(configuration: configuration, cluster: .init(redisURL: cluster.redisURL, name: cluster.name, logLength: cluster.logLength))
        openEvents = benchMode
        node = cluster.node
        let redis = RedisClient(endpoint: try RedisEndpoint(url: cluster.redisURL))
        sharedTokens = SharedTokens(redis: redis, clusterName: cluster.name)
        tickets = StreamTickets(limits: Self.ticketLimits)
        sharedTickets = SharedTickets(redis: redis, clusterName: cluster.name, lifetime: tickets.limits.lifetime)
    }

    /// The ticket store's bounds: the library's lifetime and `perSource` (16), and room for
    /// `perSource` outstanding tickets for every user the token store can hold at once
    /// (160,000). Every ticket's source is a user whose token was used within the ticket's
    /// lifetime, and the token store forgets only tokens unused for an hour, so signed-in users
    /// together can never fill the store: each meets their own `perSource` bound first (429,
    /// theirs alone). With the library's default capacity (10,000), 625 sign-ins (half a
    /// minute at the sign-in rate) minting 16 tickets each, again as they expired, kept
    /// `POST /ticket` at 503 for everyone else. Measured: 9,999 users minting 159,984 tickets
    /// in 45 s (most of them held at once) grew the release build's RSS by 26 MB; filling the
    /// store takes every token the token store holds, and a user signed in before still gets one.
    /// (In a cluster, users signed in on other nodes add sources; each node's store still
    /// bounds its memory.)
    static var ticketLimits: StreamTickets<String>.Limits {
        var limits = StreamTickets<String>.Limits()
        limits.capacity = limits.perSource * TokenStore.Limits().capacity
        return limits
    }

    private static func configuration(backlog: Int, overflowPolicy: OverflowPolicy, queueCapacity: Int, observer: DemoMetrics) -> EventServer<String>.Configuration {
        var configuration = EventServer<String>.Configuration()
        configuration.observer = observer
        configuration.overflowPolicy = overflowPolicy
        configuration.queueCapacity = queueCapacity
        // Long enough to watch the page say "reconnecting", short enough not to wait for.
        configuration.retry = .seconds(2)
        configuration.backlogCapacity = backlog
        // A client whose Last-Event-ID is older than the backlog is told, so it can reload.
        configuration.gapEvent = try! ServerSentEvent(event: "gap", data: "some events were too old to replay")
        return configuration
    }

    var router: HTTPRouter {
        var router = HTTPRouter()
        router.get("/") { _ in HTTPResponse(text: Page.html, contentType: "text/html; charset=utf-8") }
        router.get("/health") { _ in HTTPResponse(text: "ok\n") }
        // The routes' own refusals (429 and 503 with Retry-After, which HTTPError cannot carry)
        // are responses, not thrown errors, so the server's hook does not see them: counted here.
        router.post("/signin") { request in metrics.counted(try await signIn(request)) }
        router.post("/ticket") { request in metrics.counted(try await issueTicket(request)) }
        router.events("/events", from: hub, channels: { request in
            request.query["channels"]?.split(separator: ",").contains("news") == true ? ["news"] : []
        }) { request in
            let user = try await user(for: request)
            // The connect line that follows names the stream; this one, where it came from
            // (behind a trusted proxy, the client's address from X-Forwarded-For).
            if !openEvents { log("stream for \(user) from \(request.clientAddress ?? "an unknown address")") }
            return user
        }
        router.post("/notify") { request in metrics.counted(try await notify(request)) }
        router.post("/drop") { request in metrics.counted(try await drop(request)) }
        router.get("/stats") { _ in try await Stats.snapshot(of: hub, metrics: metrics, node: node).json }
        router.get("/metrics") { _ in await Stats.snapshot(of: hub, metrics: metrics, node: node).prometheus }
        return router
    }

    /// The source resolver: the user of the ticket the request carries (`?ticket=`, what the
    /// page sends), else of its token (`?token=` or `Authorization: Bearer`, for scripts).
    func user(for request: HTTPRequest) async throws -> String {
        if let ticket = request.query["ticket"] {
            guard let user = try await user(forTicket: ticket) else {
                throw HTTPError(.unauthorized, "the ticket is unknown, used or expired: POST /ticket for a fresh one")
            }
            return user
        }
        guard let token = request.query["token"] ?? Self.bearerToken(of: request) else {
            if openEvents { return "anonymous" }
            throw HTTPError(.unauthorized, "sign in first: POST /signin, then pass ?token=")
        }
        guard let user = try await user(forToken: token) else { throw HTTPError(.unauthorized, "unknown token") }
        return user
    }

    /// The user `token` was issued to: by this node, or in a cluster by any node.
    ///
    /// - Throws: `HTTPError` 503 when the token is not this node's and Redis cannot be asked.
    func user(forToken token: String) async throws(HTTPError) -> String? {
        if let user = accounts.user(forToken: token) { return user }
        guard let sharedTokens else { return nil }
        do {
            return try await sharedTokens.user(forToken: token)
        } catch {
            throw HTTPError(.serviceUnavailable, "cannot check the token: the cluster's Redis is unreachable")
        }
    }

    /// The largest `POST /signin` body: `{"user": "…"}` with a name of 32 characters, each
    /// escaped as `\uXXXX` (192 bytes), and room for whitespace.
    static let maxSignInBody = 1024

    private func signIn(_ request: HTTPRequest) async throws -> HTTPResponse {
        try Self.requireSameOrigin(request)
        try Self.requireJSON(request)
        // Before parsing: anyone may sign in, and parsing comes before the sign-in rate. 63 KB
        // of {"a":{}} took 37 ms of CPU to parse; four connections sending them (13 a second)
        // held /health at 72 ms and event delivery at 135 ms for everyone.
        guard request.body.count <= Self.maxSignInBody else {
            throw HTTPError(.payloadTooLarge, "the body must be {\"user\": \"name\"}, at most \(Self.maxSignInBody) bytes")
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any],
              object.count == 1, let user = object["user"] as? String
        else { throw HTTPError(.badRequest, "the body must be {\"user\": \"name\"}") }
        switch try accounts.signIn(user) {
        case .token(let token, let forgotten):
            if let sharedTokens {
                if let forgotten { await sharedTokens.forget(forgotten) }
                do {
                    try await sharedTokens.remember(token, of: user)
                } catch {
                    accounts.forget(token)
                    return Self.refusal(.serviceUnavailable, "cannot sign in: the cluster's Redis is unreachable; try again later", retryAfter: .seconds(5))
                }
            }
            return try Self.json(["user": user, "token": token])
        case .tooFrequent:
            return Self.refusal(.tooManyRequests, "too many sign-ins at once; try again in a second", retryAfter: .seconds(1))
        case .full(let retryAfter):
            return Self.refusal(.serviceUnavailable, "every sign-in slot is in use; try again later", retryAfter: retryAfter)
        case .userFull(let retryAfter):
            return Self.refusal(.tooManyRequests, "\(user) is signed in \(TokenStore.Limits().perUser) times already, each recently used; try again later", retryAfter: retryAfter)
        }
    }

    private func notify(_ request: HTTPRequest) async throws -> HTTPResponse {
        try Self.requireSameOrigin(request)
        let from = try await sender(of: request)
        // Before the body is parsed: a refused request costs the sender, not the server.
        if let wait = accounts.takeNotification(from: from) {
            return Self.refusal(.tooManyRequests, "too many notifications from \(from); try again later", retryAfter: wait)
        }
        try Self.requireJSON(request)
        let notify = try NotifyRequest(json: request.body)
        let sentAt = Self.timestamp()
        let id: String
        do {
            if notify.channel != nil {
                id = try await hub.send(News(headline: notify.title, sentAt: sentAt), as: Self.news, to: notify.recipients)
            } else {
                let value = Notification(title: notify.title, body: notify.body, from: from, sentAt: sentAt)
                id = try await hub.send(value, as: Self.notification, to: notify.recipients)
            }
        } catch let error as EventServerError where error.code == .logUnavailable {
            // The cluster's order lives in Redis, and a node never forks it. Most likely nothing
            // was sent; a failure after Redis received the event cannot tell.
            return Self.refusal(.serviceUnavailable, "the cluster's Redis did not confirm it: most likely not sent (a retry may deliver it twice)", retryAfter: .seconds(1))
        }
        var response = try Self.json(["id": id])
        response.status = .accepted
        return response
    }

    private func drop(_ request: HTTPRequest) async throws -> HTTPResponse {
        try Self.requireSameOrigin(request)
        let user = try await sender(of: request)
        guard sharedTokens != nil else {
            let count = await hub.clientCount(source: user)
            await hub.close(source: user)
            return try Self.json(["dropped": count])
        }
        // In a cluster the user's streams may be on any node: every node closes its own.
        do {
            let count = try await hub.clusterClientCount(source: user)
            try await hub.closeEverywhere(source: user)
            return try Self.json(["dropped": count])
        } catch {
            return Self.refusal(.serviceUnavailable, "not dropped: the cluster's Redis is unreachable; try again later", retryAfter: .seconds(1))
        }
    }

    /// Feeds the `news` channel every `interval`, until cancelled.
    func newsTicker(every interval: Duration) async {
        let headlines = [
            "Swift 6 makes data races a compile-time error",
            "Server-Sent Events: still the simplest push over HTTP",
            "One epoll thread holds ten thousand idle streams",
            "Browsers reconnect with Last-Event-ID, servers replay what was missed",
            "Backpressure is a policy, not an accident",
        ]
        var index = 0
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            _ = try? await hub.send(News(headline: headlines[index % headlines.count], sentAt: Self.timestamp()), as: Self.news, to: .channel("news"))
            index += 1
        }
    }

    /// Logs one line per connect and disconnect (unless `perConnection` is false: bench mode),
    /// and one per cluster event, until the hub shuts down.
    func logConnections(perConnection: Bool = true) async {
        for await event in await hub.lifecycleEvents() {
            if !perConnection {
                guard case .cluster = event else { continue }
            }
            switch event {
            case .connected(let source, let connection):
                log("connect \(source) \(connection)")
            case .reconnected(let source, let connection, let lastEventID):
                log("reconnect \(source) \(connection) Last-Event-ID \(lastEventID)")
            case .replayGap(let source, let connection, let lastEventID):
                log("replay gap \(source) \(connection): \(lastEventID) is older than the backlog")
            case .droppedEvents(let source, let connection, let count):
                log("dropped \(count) events for slow client \(source) \(connection)")
            case .disconnected(let source, let connection, let reason):
                log("disconnect \(source) \(connection) (\(reason))")
            case .cluster(let event):
                log(Self.describe(event))
                if case .epochChanged = event, let sharedTokens {
                    // Redis lost its data, the shared tokens with it: share this node's again.
                    let tokens = accounts.allTokens
                    await sharedTokens.rememberAll(tokens)
                    log("cluster: shared this node's \(tokens.count) sign-in tokens again")
                }
            }
        }
    }

    /// A cluster event as a log line.
    static func describe(_ event: ClusterEvent) -> String {
        switch event {
        case .logUnavailable(let reason): "cluster: Redis is unreachable, sending refused until it is back: \(reason)"
        case .logRestored(let after): "cluster: Redis is reachable again after \(after)"
        case .epochChanged(let from, let to): "cluster: the log's epoch changed from \(from ?? "none") to \(to) (Redis lost its data or rolled back): streams restart, each client gets one gap"
        case .gap(let after, let next, let missed): "cluster: \(missed) events after \(after) were trimmed before this node read them (next \(next)): streams restart"
        case .malformedRecord(let id): "cluster: record \(id) could not be read; skipped"
        }
    }

    static func json(_ object: [String: Any]) throws -> HTTPResponse {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return HTTPResponse(headers: ["Content-Type": "application/json"], body: Array(data) + [10])
    }
}

/// One line on standard output, `line` and a newline, through the library's writer: never
/// blocks serving, whatever reads the output (control characters come out escaped; past 100
/// lines a second, lines are counted instead). Queued lines are written at exit.
func log(_ line: String) {
    standardOutput(.info, line)
}

private let standardOutput = HTTPLogger.standardOutput(format: .bare)
