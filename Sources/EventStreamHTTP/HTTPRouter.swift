import Synchronization
public import EventStreamKit

/// Maps a method and a path to a handler: a plain response, or an event stream served by an
/// ``/EventStreamKit/EventServer``.
///
/// ```swift
/// var router = HTTPRouter()
/// router.get("/health") { _ in HTTPResponse(text: "ok") }
/// router.events("/events", from: hub) { request in
///     guard let user = request.query["user"] else { throw HTTPError(.unauthorized) }
///     return user
/// }
/// ```
///
/// An unknown path is answered 404; a known path with another method 405 with `Allow`;
/// `OPTIONS` on a known path is a CORS preflight, answered 204 (see ``cors``).
public struct HTTPRouter: Sendable {
    /// A handler for ordinary requests.
    public typealias Handler = @Sendable (HTTPRequest) async throws -> HTTPResponse

    enum Route: Sendable {
        case plain(Handler)
        case events(EventRoute)
    }

    private(set) var routes: [String: [String: Route]] = [:]

    /// Headers added to every response, and to the answer to a CORS preflight (say
    /// `Access-Control-Allow-Origin: *` for a public, credential-free API). Default: none.
    ///
    /// The same for every request: for pages on some origins only, or with cookies, set
    /// ``cors`` instead.
    public var corsHeaders: [(name: String, value: String)] = []

    /// Cross-origin access decided per request: an origin allow-list echoed exactly, with
    /// `Vary: Origin`, credentials if allowed, and preflights answered. Default: `nil`, no
    /// `Access-Control-*` header beyond ``corsHeaders``, and a preflight's
    /// `Access-Control-Allow-Headers` echoes what it asked for.
    public var cors: CORS?

    /// Creates an empty router.
    public init() {}

    /// Routes `method` requests for `path` to `handler`.
    public mutating func on(_ method: String, _ path: String, handler: @escaping Handler) {
        routes[path, default: [:]][method] = .plain(handler)
    }

    /// Routes `GET` requests for `path` to `handler`.
    public mutating func get(_ path: String, handler: @escaping Handler) { on("GET", path, handler: handler) }

    /// Routes `POST` requests for `path` to `handler`.
    public mutating func post(_ path: String, handler: @escaping Handler) { on("POST", path, handler: handler) }

    /// Serves event streams on `GET path` from `hub`.
    ///
    /// - Parameters:
    ///   - path: The route.
    ///   - hub: The hub whose streams this route opens. ``HTTPServer/run()`` runs its
    ///     ``/EventStreamKit/EventServer/run()`` (heartbeats) and shuts it down with the server.
    ///   - channels: Picks the channels a request subscribes to. Default: none.
    ///   - source: Authenticates the request and names its source. Throw ``HTTPError``
    ///     (401, 403) to refuse it: no stream opens. Any other error answers 500. If it
    ///     takes longer than ``HTTPServer/Configuration/sourceTimeout``, it is cancelled and
    ///     the request answered 503.
    public mutating func events<SourceID: Hashable & Sendable>(
        _ path: String,
        from hub: EventServer<SourceID>,
        channels: @escaping @Sendable (HTTPRequest) -> Set<String> = { _ in [] },
        source: @escaping @Sendable (HTTPRequest) async throws -> SourceID
    ) {
        routes[path, default: [:]]["GET"] = .events(EventRoute(hub: hub, channels: channels, source: source))
    }

    enum Match {
        case route(Route)
        case preflight(allowed: [String])
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    func match(method: String, path: String) -> Match {
        guard let methods = routes[path] else { return .notFound }
        if let route = methods[method] { return .route(route) }
        if method == "HEAD", let route = methods["GET"] { return .route(route) }  // RFC 9110 §9.3.2
        let allowed = (methods.keys + ["OPTIONS"]).sorted()
        return method == "OPTIONS" ? .preflight(allowed: allowed) : .methodNotAllowed(allowed: allowed)
    }

    /// The hubs behind event routes, for a graceful shutdown.
    /// The hubs behind event routes, each once.
    var eventServers: [any EventStreamHub] {
        var seen: Set<ObjectIdentifier> = []
        return routes.values.flatMap(\.values).compactMap { route -> (any EventStreamHub)? in
            guard case .events(let route) = route, seen.insert(ObjectIdentifier(route.hub)).inserted else { return nil }
            return route.hub
        }
    }
}

/// What the HTTP server needs from an event route, with the source ID type erased.
struct EventRoute: Sendable {
    let hub: any EventStreamHub
    /// Resolves the source, through `resolve` (which bounds its time), and connects it.
    let open: @Sendable (HTTPRequest, _ resolve: SourceResolution) async throws -> any EventStreamConnection
    /// Resolves the source only, for `HEAD`: throws as `open` would refuse.
    let check: @Sendable (HTTPRequest, _ resolve: SourceResolution) async throws -> Void

    init<SourceID: Hashable & Sendable>(
        hub server: EventServer<SourceID>,
        channels: @escaping @Sendable (HTTPRequest) -> Set<String>,
        source: @escaping @Sendable (HTTPRequest) async throws -> SourceID
    ) {
        hub = server
        open = { request, resolution in
            let id = try await resolution.run { try await source(request) }
            return try await server.connect(source: id, channels: channels(request), lastEventID: request.lastEventID)
        }
        check = { request, resolution in
            _ = try await resolution.run { try await source(request) }
        }
    }
}

/// How the server runs a source resolver for the connection on `fd`: cancelled by the sweep
/// timer past ``HTTPServer/Configuration/sourceTimeout``, then it throws 503. No timer of its
/// own: a cancelled `Task.sleep` keeps its timer (and ~0.7 KiB) until it would have fired.
///
/// As with any cancellation, a resolver that ignores it still holds this request until it
/// returns; its answer is discarded then.
struct SourceResolution: Sendable {
    let server: HTTPServer
    let handle: HTTPServer.Handle

    func run<T: Sendable>(_ resolver: @escaping @Sendable () async throws -> T) async throws -> T {
        let resolving = Task { try await resolver() }
        let timeout = server.configuration.sourceTimeout
        let deadline = HTTPServer.Table.Deadline(phase: .resolver, instant: .now + timeout, cancel: { resolving.cancel() })
        server.state.withLock { _ = $0.table.setDeadline(deadline, for: handle) }
        let result = await withTaskCancellationHandler { await resolving.result } onCancel: { resolving.cancel() }
        // The sweep removes the deadline when it fires: if it is gone, the time was up.
        let expired = !server.state.withLock { $0.table.clearDeadline(.resolver, for: handle) }
        if expired { throw HTTPError(.serviceUnavailable, "the source resolver did not answer within \(timeout)") }
        return try result.get()
    }
}

/// A hub, seen by the HTTP server without its source ID type.
protocol EventStreamHub: AnyObject, Sendable {
    var responseHeaders: [(name: String, value: String)] { get }
    func run() async
    func shutdown() async
    /// How long a client refused by a hub that is shutting down should wait.
    func refusalDelay() async -> Duration
}

extension EventServer: EventStreamHub {}

/// A connection, seen by the HTTP server without its source ID type.
protocol EventStreamConnection: Sendable {
    var mailbox: Mailbox { get }
    func run(writingTo sink: some EventStreamSink) async throws -> DisconnectReason
}

extension EventConnection: EventStreamConnection {}
