#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import EventStreamKit

/// A dependency-free HTTP/1.1 server for event streams and small JSON or HTML routes, over
/// non-blocking sockets with epoll (Linux) or kqueue (Darwin).
///
/// ```swift
/// let hub = EventServer<String>()
/// var router = HTTPRouter()
/// router.events("/events", from: hub) { request in
///     guard let user = request.query["user"] else { throw HTTPError(.unauthorized) }
///     return user
/// }
/// let server = try HTTPServer(router: router, configuration: .init(host: "127.0.0.1", port: 0))
/// print("listening on port", server.port)
/// await server.run()   // runs the hub too (heartbeats, a cluster's log), until cancelled or shutdown()
/// ```
///
/// Limits (``Configuration``): request head 8 KiB and 100 fields (431), body 1 MiB (413),
/// 10 s to send a head, 30 s for a body, 30 s for a blocked response write to make progress
/// (then closed), 10,000 connections (503 with `Retry-After`), and never the process's last
/// 64 file descriptors (503 at once; see ``Configuration/descriptorReserve``).
/// Malformed requests get 400, `Transfer-Encoding` 501, unknown paths 404, wrong methods 405
/// with `Allow`. Each refusal is logged, and the server goes on serving the others.
///
/// Fairness: a connection serves one request per turn of the cooperative thread pool, and
/// yields after every 64 KiB it reads without waiting, so a client that floods or pipelines
/// cannot hold a thread while others wait.
public final class HTTPServer: Sendable {
    /// Limits and settings; every one has a default.
    public struct Configuration: Sendable {
        /// The address to bind: an IPv4 or IPv6 literal. Default: `127.0.0.1`.
        public var host: String
        /// The port; 0 lets the kernel pick a free one (read it from ``HTTPServer/port``).
        /// Default: 8080.
        public var port: UInt16
        /// The largest request head, in bytes. Default: 8 KiB.
        public var maxHeadSize = 8 * 1024
        /// The most header fields in one request. Default: 100.
        public var maxHeaderCount = 100
        /// The largest request body, in bytes. Default: 1 MiB.
        public var maxBodySize = 1 << 20
        /// The most bytes of request bodies the server buffers at once, over all connections
        /// (the bytes received of bodies not yet complete). A request whose body's bytes would
        /// go over it is answered 503 and closed: without it, thousands of clients that each
        /// send most of a body and stall could hold `maxConnections` × `maxBodySize`. Only bytes
        /// that arrived count, so a head that announces a body and sends none costs nothing.
        /// Default: 64 MiB.
        public var maxBufferedBodyBytes = 64 << 20
        /// How long a client may take to send a request head, counted from the end of the
        /// previous response on a keep-alive connection; a slower one (slowloris), or an idle
        /// keep-alive connection, is closed. Default: 10 s.
        public var headTimeout: Duration = .seconds(10)
        /// How long a client may take to send a request body once its head has arrived; a
        /// slower one is closed. Default: 30 s.
        public var bodyTimeout: Duration = .seconds(30)
        /// How long a write may wait for the client to read: a response (or an event stream)
        /// that the client does not read for this long is closed, as nginx's `send_timeout`.
        /// The clock restarts whenever the client takes bytes. Default: 30 s.
        public var writeTimeout: Duration = .seconds(30)
        /// How long an events route's source resolver may take (a slow authentication
        /// backend, say); past it, the resolver is cancelled and the request answered 503.
        /// Default: 10 s.
        ///
        /// All timeouts are checked by one sweep timer for the whole server, every quarter
        /// of the shortest one, the 2 s of a lingering close included (so at most every
        /// 500 ms, at least every 10 ms): each acts up to that much late.
        public var sourceTimeout: Duration = .seconds(10)
        /// The kernel's send buffer for each connection (`SO_SNDBUF`; Linux doubles it for
        /// its bookkeeping), or `nil` for the kernel's automatic sizing, which grows a client's
        /// buffer to megabytes (`tcp_wmem`) when it stops reading. A bound here bounds the
        /// kernel memory a client that stops reading (an event stream, or pipelined requests)
        /// can pin until ``writeTimeout`` closes it: without it, a few hundred such clients
        /// push the whole machine's TCP memory into pressure. Default: 128 KiB.
        public var sendBufferSize: Int? = 128 * 1024
        /// The host names the server answers for, each with or without a port
        /// (`"localhost"`, `"127.0.0.1:8080"`, `"[::1]"`, `"example.com"`); a request whose
        /// `Host` (or absolute-form target, RFC 9112 §3.2.2) names another, or that has none,
        /// is answered 421 and closed. `nil`: any host.
        /// Default: `nil`.
        ///
        /// A server on localhost or a private network needs it against DNS rebinding: a page
        /// on another site points its own name at the server's address, and the browser then
        /// treats the server as that site's origin. Only the `Host` field tells them apart.
        public var allowedHosts: [String]?
        /// The most open connections; past it, a new one is answered 503 with
        /// `Retry-After` and closed. Default: 10,000.
        public var maxConnections = 10_000
        /// File descriptors the server leaves free for the rest of the process, below the
        /// soft `RLIMIT_NOFILE` read when the server is created: a connection accepted on
        /// one of the top `descriptorReserve` descriptors is answered 503 at once and closed.
        /// At most an eighth of the limit is reserved. Default: 64.
        ///
        /// A process that runs out of descriptors fails in places far from the server:
        /// libdispatch, which runs Swift's timers on Linux, opens `/proc` files and timerfds
        /// as it goes, and crashes the process or leaves a timer unarmed when it cannot.
        /// (Docs/Decisions/0004-descriptor-reserve.md)
        public var descriptorReserve = 64
        /// The addresses of reverse proxies whose `X-Forwarded-For` is believed: IPv4 or IPv6
        /// literals (`"127.0.0.1"`, `"::1"`, `"10.0.0.5"`; no ranges). A request whose peer is
        /// one of them gets its ``HTTPRequest/clientAddress`` from the header; from any other
        /// peer the header is ignored, since a client can send it too. An entry that is not an
        /// IP literal is logged when the server is created and ignored. Default: none, so
        /// ``HTTPRequest/clientAddress`` is always the peer's address.
        ///
        /// Set it to the proxy's address as the server sees it: for nginx on the same
        /// machine, `"127.0.0.1"` (and `"::1"` if it connects over IPv6).
        public var trustedProxies: [String] = []
        /// Where refusals and errors are reported. Default: standard error.
        public var logger = HTTPLogger.standardError()
        /// Receives refused requests and failed response writes, for metrics. Default: none,
        /// and then the server does no work for it beyond a `nil` check per refusal or failed
        /// write. Its methods run on the serving task and must be quick; see
        /// ``HTTPServerObserver``. Event streams report to their hub's
        /// ``/EventStreamKit/EventServer/Configuration/observer``.
        public var observer: (any HTTPServerObserver)?

        /// Creates a configuration.
        public init(host: String = "127.0.0.1", port: UInt16 = 8080) {
            self.host = host
            self.port = port
        }
    }

    typealias Table = ConnectionTable<@Sendable () -> Void>
    typealias Handle = Table.Handle

    struct State {
        /// Open connections and their deadlines. One sweep timer checks them all.
        var table: Table
        /// Failed accepts in a row (EMFILE), so that an episode is logged once.
        /// Request body bytes being received now (see ``Configuration/maxBufferedBodyBytes``).
        var bufferedBodyBytes = 0
        var acceptFailures = 0
        /// Connections refused over ``Configuration/maxConnections`` since the last one
        /// admitted, so that an episode is logged once.
        var refusedConnections = 0
        /// Connections shed since the last one admitted (on a reserved descriptor), so that
        /// an episode is logged once.
        var shedConnections = 0
    }

    /// The configuration the server was created with.
    public let configuration: Configuration
    /// The port the server is bound to (the kernel's choice when the configuration said 0).
    public let port: UInt16

    let router: HTTPRouter
    let listener: Socket
    /// Accepted descriptors from this number on are in the reserve (see
    /// ``Configuration/descriptorReserve``), and the soft limit they are counted from.
    let descriptorCeiling: Int32
    let descriptorLimit: Int
    let poller: Poller
    let state: Mutex<State>
    let stopSignal: AsyncStream<Void>
    let stopContinuation: AsyncStream<Void>.Continuation
    /// Event streams handed from the task that served their request to a fresh one.
    let handoffs = StreamHandoffs()
    /// ``Configuration/trustedProxies``, canonical (``IPAddress/canonical(_:)``).
    let trustedProxies: Set<String>

    /// Binds the listening socket, so that ``port`` is known before ``run()``.
    ///
    /// - Throws: ``/EventStreamKit/SocketError`` if the address cannot be bound.
    public init(router: HTTPRouter, configuration: Configuration = Configuration()) throws {
        self.router = router
        self.configuration = configuration
        state = Mutex(State(table: Table(maxConnections: configuration.maxConnections)))
        descriptorLimit = Self.descriptorLimit()
        descriptorCeiling = Int32(clamping: descriptorLimit - min(max(configuration.descriptorReserve, 0), descriptorLimit / 8))
        var trusted: Set<String> = []
        for entry in configuration.trustedProxies {
            if let address = IPAddress.canonical(entry) {
                trusted.insert(address)
            } else {
                configuration.logger(.warning, "trustedProxies: \(entry.debugDescription) is not an IP address literal; ignored")
            }
        }
        trustedProxies = trusted
        listener = try Socket.listen(host: configuration.host, port: configuration.port)
        do {
            poller = try Poller()
        } catch {
            listener.close()
            throw error
        }
        port = listener.localPort
        (stopSignal, stopContinuation) = AsyncStream.makeStream()
    }

    /// Serves until ``shutdown()`` is called or the calling task is cancelled, then shuts
    /// down gracefully: stops accepting, lets every hub behind an event route close its
    /// streams with a final flush, closes idle connections, and returns when every
    /// connection has ended.
    ///
    /// It also runs every hub behind an event route
    /// (``/EventStreamKit/EventServer/run()``: heartbeats, and a cluster's log), so that they
    /// cannot be forgotten. A hub that is already running, or that another ``run()`` call
    /// starts too, runs once.
    public func run() async {
        await withDiscardingTaskGroup { streams in
            for hub in router.eventServers { streams.addTask { await hub.run() } }
            streams.addTask {
                await self.acceptAndServe()
                self.handoffs.close()  // every connection task has ended: no more hand-offs
            }
            // Each event stream runs in a task of its own, started here: its stack never held
            // the request's frames (parsing, routing, resolving), whose memory a task keeps
            // until it ends. That was 3 KiB of each idle stream's 7.
            while true {
                let ready = await handoffs.next()
                if ready.isEmpty { break }
                for handoff in ready { streams.addTask { await self.stream(handoff) } }
            }
        }
        await poller.shutdown()
        configuration.logger(.info, "stopped")
    }

    /// Accepts and serves connections until stopped, then shuts down gracefully.
    private func acceptAndServe() async {
        let logger = configuration.logger
        logger(.info, "listening on \(configuration.host):\(port)")
        await withDiscardingTaskGroup { group in
            group.addTask { await self.sweepSlowClients() }
            group.addTask {
                for await _ in self.stopSignal {}
                // Stopping (or cancelled): wake the accept loop below.
                self.poller.forget(self.listener.fd)
            }
            while !state.withLock({ $0.table.isStopping }) && !Task.isCancelled {
                do {
                    try await poller.waitReadable(listener.fd)
                } catch {
                    break
                }
                if !acceptPending(into: &group) {
                    // Out of descriptors (EMFILE) or memory: the pending connection keeps the
                    // listener readable, so waiting again at once would spin. Back off instead.
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
            state.withLock { $0.table.beginStopping() }
            listener.close()
            // A fresh task: this one may be cancelled, and the hubs' grace period must run.
            await Task { await self.closeEverything() }.value
            stopContinuation.finish()
            group.cancelAll()
        }
    }

    /// Stops the server gracefully; ``run()`` returns when it is done.
    public func shutdown() {
        state.withLock { $0.table.beginStopping() }
        stopContinuation.finish()
    }

    /// The number of open client connections.
    public var connectionCount: Int { state.withLock { $0.table.count } }

    /// Accepts every pending connection. Returns `false` if accepting failed (EMFILE, say).
    private func acceptPending(into group: inout DiscardingTaskGroup) -> Bool {
        while true {
            let client: Socket?
            do {
                client = try listener.accept()
            } catch {
                let first = state.withLock { state in
                    defer { state.acceptFailures += 1 }
                    return state.acceptFailures == 0
                }
                if first { configuration.logger(.error, "accept: \(error); retrying every 100 ms until it succeeds") }
                return false
            }
            guard let client else { return true }
            if client.fd >= descriptorCeiling {
                configuration.observer?.requestRefused(status: .serviceUnavailable, reason: "descriptor reserve", request: nil)
                shed(client)
                continue
            }
            // One lock per accepted connection: admission, and the end of an episode.
            let (admission, failed, shed, refused) = state.withLock { state -> (Table.Admission, Int, Int, Int) in
                let episodes = (state.acceptFailures, state.shedConnections, state.refusedConnections)
                state.acceptFailures = 0
                state.shedConnections = 0
                let admission = state.table.admit(client.fd)
                if case .admitted = admission { state.refusedConnections = 0 } else { state.refusedConnections += 1 }
                return (admission, episodes.0, episodes.1, episodes.2)
            }
            if failed > 0 { configuration.logger(.info, "accepting connections again after \(failed) failed attempts") }
            if shed > 0 { configuration.logger(.info, "accepting connections again: descriptors are free; \(shed) were refused") }
            guard case .admitted(let handle) = admission else {
                // Logged once per episode: a flood of connections must not become a flood of lines.
                if refused == 0 { configuration.logger(.warning, "refusing connections (503): \(configuration.maxConnections) connections open, or stopping") }
                configuration.observer?.requestRefused(status: .serviceUnavailable, reason: "too many connections", request: nil)
                group.addTask { await self.refuse(client) }
                continue
            }
            if refused > 0 { configuration.logger(.info, "accepting connections again: \(refused) were refused over the limit") }
            group.addTask { await self.serve(client, handle: handle) }
        }
    }

    /// Answers 503 and closes at once, for a connection on a reserved descriptor: no task, no
    /// waiting, so that the reserve stays free. What the client already sent is read first,
    /// so that closing sends a FIN, not an RST that would destroy the answer.
    private func shed(_ client: Socket) {
        defer { client.close() }
        let first = state.withLock { state in
            defer { state.shedConnections += 1 }
            return state.shedConnections == 0
        }
        if first {
            configuration.logger(.error, "refusing new connections (503): descriptor \(client.fd) is among the last \(Int32(clamping: descriptorLimit) - descriptorCeiling) of the limit \(descriptorLimit), which are kept for the rest of the process; raise the limit (ulimit -n) or lower maxConnections")
        }
        withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 1) { scratch in
            for _ in 0..<16 {
                guard case .bytes = try? client.read(into: scratch) else { break }
            }
        }
        Self.tooManyConnections.withUnsafeBytes { _ = try? client.write($0) }  // fits any socket buffer
    }

    /// The 503 for connections over ``Configuration/maxConnections`` or on a reserved descriptor.
    private static let tooManyConnections = statusResponse(.serviceUnavailable, extra: [("Retry-After", "1")], message: "too many connections")

    /// The soft limit on open descriptors, or `Int32.max` if there is none.
    private static func descriptorLimit() -> Int {
        var limit = rlimit()
        #if canImport(Glibc)
        let result = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        #else
        let result = getrlimit(RLIMIT_NOFILE, &limit)
        #endif
        guard result == 0 else { return Int(Int32.max) }
        return Int(min(limit.rlim_cur, rlim_t(Int32.max)))  // RLIM_INFINITY is the largest rlim_t
    }

    /// Answers 503 and closes. The client's request is read and discarded first (for at most
    /// a second): closing with unread bytes would send an RST that can destroy the answer.
    private func refuse(_ client: Socket) async {
        defer {
            poller.forget(client.fd)
            client.close()
        }
        guard (try? await client.writeAll(Self.tooManyConnections, poller: poller)) != nil else { return }
        _ = try? await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var scratch = [UInt8](repeating: 0, count: 4096)
                var drained = 0
                while drained < 64 * 1024 {
                    switch try scratch.withUnsafeMutableBytes({ try client.read(into: $0) }) {
                    case .bytes(let count): drained += count
                    case .endOfFile: return
                    case .wouldBlock:
                        // The answer is out: half-close, so that the client sees it ended.
                        client.shutdownWrite()
                        try await self.poller.waitReadable(client.fd)
                    }
                }
            }
            group.addTask { try await Task.sleep(for: .seconds(1)) }
            try await group.next()
            group.cancelAll()
        }
    }

    private func closeEverything() async {
        await withDiscardingTaskGroup { group in
            for hub in router.eventServers { group.addTask { await hub.shutdown() } }
        }
        // Connections between requests end now; those mid-request finish their response.
        // Under the lock: a handle in the table is still open, its descriptor not reused.
        state.withLock { state in
            for handle in state.table.stop() { Socket(fd: handle.fd).shutdown() }
        }
    }

    /// Closes connections that passed a deadline (``Configuration/headTimeout``,
    /// ``Configuration/bodyTimeout``, ``Configuration/writeTimeout``, a lingering close), and
    /// cancels source resolvers that passed ``Configuration/sourceTimeout``: one timer for the
    /// whole server, not one per connection. It looks every quarter of the shortest timeout
    /// (the 2 s lingering close included, so at most every 500 ms; at least every 10 ms), so
    /// a timeout acts up to that much late. (Docs/Decisions/0003-one-sweep-timer.md)
    private func sweepSlowClients() async {
        let shortest = [configuration.headTimeout, configuration.bodyTimeout, configuration.writeTimeout, configuration.sourceTimeout, Self.lingerTimeout].min()!
        // At least 10 ms, so that a zero timeout cannot make this spin.
        let period = max(min(shortest / 4, .seconds(1)), .milliseconds(10))
        while (try? await Task.sleep(for: period)) != nil {
            let (closed, cancels) = sweep(now: .now)
            for cancel in cancels { cancel() }
            for (phase, count) in closed where phase != .linger {
                configuration.logger(.warning, "closed \(count) connection\(count == 1 ? "" : "s") past the \(phase) timeout")
            }
        }
    }

    /// Performs what passing deadlines asks: shutdowns under the lock (so that no descriptor
    /// can have been closed and reused meanwhile), cancellations returned to run outside it.
    func sweep(now: ContinuousClock.Instant) -> (closed: [Table.Phase: Int], cancels: [@Sendable () -> Void]) {
        state.withLock { state in
            var closed: [Table.Phase: Int] = [:]
            var cancels: [@Sendable () -> Void] = []
            for expiry in state.table.expire(now: now) {
                switch expiry {
                case .shutDown(let handle, let phase):
                    Socket(fd: handle.fd).shutdown()
                    closed[phase, default: 0] += 1
                case .cancel(_, let cancel):
                    cancels.append(cancel)
                }
            }
            return (closed, cancels)
        }
    }

    /// How long a lingering close waits for the client to finish sending.
    static let lingerTimeout: Duration = .seconds(2)

    /// A prebuilt plain-text answer, with `nosniff` as ``HTTPResponse/generated(_:_:)``'s.
    static func statusResponse(_ status: HTTPStatus, extra: [(String, String)] = [], message: String? = nil, keepAlive: Bool = false) -> [UInt8] {
        let body = Array(((message ?? status.reason) + "\n").utf8)
        var head = "HTTP/1.1 \(status.code) \(status.reason)\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in extra { head += "\(name): \(value)\r\n" }
        head += keepAlive ? "\r\n" : "Connection: close\r\n\r\n"
        return Array(head.utf8) + body
    }
}
