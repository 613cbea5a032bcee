#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A dependency-free HTTP/1.1 server for event streams and small JSON or HTML routes, over
/// non-blocking sockets with epoll (Linux) or kqueue (Darwin).
///
/// ```swift
/// let hub = EventServer<String>()
/// var router = HTTPRouter()
/// router.events("/events", server: hub) { request in
///     guard let user = request.query["user"] else { throw HTTPError(.unauthorized) }
///     return user
/// }
/// let server = try HTTPServer(router: router, configuration: .init(host: "127.0.0.1", port: 0))
/// print("listening on port", server.port)
/// try await server.run()   // until cancelled or shutdown()
/// ```
///
/// Limits (``Configuration``): request head 8 KiB and 100 fields (431), body 1 MiB (413),
/// 10 s to send a head (then closed), 10,000 connections (503 with `Retry-After`), and
/// never the process's last 64 file descriptors (503 at once; see
/// ``Configuration/descriptorReserve``).
/// Malformed requests get 400, `Transfer-Encoding` 501, unknown paths 404, wrong methods 405
/// with `Allow`. Each refusal is logged, and the server goes on serving the others.
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
        /// How long a client may take to send a request head (and body); a slower one
        /// (slowloris) is closed. Default: 10 s.
        public var headTimeout: Duration = .seconds(10)
        /// How long an events route's source resolver may take (a slow authentication
        /// backend, say); past it, the resolver is cancelled and the request answered 503.
        /// Default: 10 s.
        ///
        /// Both timeouts are checked by one sweep timer for the whole server, every quarter
        /// of the shorter one (at most every second): each acts up to that much late.
        public var sourceTimeout: Duration = .seconds(10)
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
        public var descriptorReserve = 64
        /// Where refusals and errors are reported. Default: standard error.
        public var logger = HTTPLogger.standardError()

        /// Creates a configuration.
        public init(host: String = "127.0.0.1", port: UInt16 = 8080) {
            self.host = host
            self.port = port
        }
    }

    enum Deadline {
        /// The request head (and body) must have arrived: past it, the socket is shut down.
        case head(ContinuousClock.Instant)
        /// The source resolver must have answered: past it, it is cancelled (and the request
        /// answered 503).
        case resolver(ContinuousClock.Instant, cancel: @Sendable () -> Void)

        var instant: ContinuousClock.Instant {
            switch self {
            case .head(let instant), .resolver(let instant, _): instant
            }
        }
    }

    struct State {
        var openConnections = 0
        /// Per connection: when its request head is due, or when its source resolver must
        /// have answered. One sweep timer checks them all.
        var deadlines: [Int32: Deadline] = [:]
        var idle: Set<Int32> = []
        var isStopping = false
        /// Failed accepts in a row (EMFILE), so that an episode is logged once.
        var acceptFailures = 0
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
    let state = Mutex(State())
    let stopSignal: AsyncStream<Void>
    let stopContinuation: AsyncStream<Void>.Continuation
    /// Event streams handed from the task that served their request to a fresh one.
    let handoffs = StreamHandoffs()

    /// Binds the listening socket, so that ``port`` is known before ``run()``.
    ///
    /// - Throws: ``SocketError`` if the address cannot be bound.
    public init(router: HTTPRouter, configuration: Configuration = Configuration()) throws {
        self.router = router
        self.configuration = configuration
        descriptorLimit = Self.descriptorLimit()
        descriptorCeiling = Int32(clamping: descriptorLimit - min(max(configuration.descriptorReserve, 0), descriptorLimit / 8))
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
    public func run() async {
        await withDiscardingTaskGroup { streams in
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
            while !state.withLock({ $0.isStopping }) && !Task.isCancelled {
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
            state.withLock { $0.isStopping = true }
            listener.close()
            // A fresh task: this one may be cancelled, and the hubs' grace period must run.
            await Task { await self.closeEverything() }.value
            stopContinuation.finish()
            group.cancelAll()
        }
    }

    /// Stops the server gracefully; ``run()`` returns when it is done.
    public func shutdown() {
        state.withLock { $0.isStopping = true }
        stopContinuation.finish()
    }

    /// The number of open client connections.
    public var connectionCount: Int { state.withLock { $0.openConnections } }

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
                shed(client)
                continue
            }
            // One lock per accepted connection: admission, and the end of an episode.
            let (admitted, failed, shed) = state.withLock { state -> (Bool, Int, Int) in
                let failed = state.acceptFailures
                let shed = state.shedConnections
                state.acceptFailures = 0
                state.shedConnections = 0
                guard state.openConnections < configuration.maxConnections, !state.isStopping else { return (false, failed, shed) }
                state.openConnections += 1
                return (true, failed, shed)
            }
            if failed > 0 { configuration.logger(.info, "accepting connections again after \(failed) failed attempts") }
            if shed > 0 { configuration.logger(.info, "accepting connections again: descriptors are free; \(shed) were refused") }
            guard admitted else {
                configuration.logger(.warning, "refused a connection: \(configuration.maxConnections) connections open (503)")
                group.addTask { await self.refuse(client) }
                continue
            }
            group.addTask { await self.serve(client) }
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
        let idle = state.withLock { $0.idle }
        for fd in idle { Socket(fd: fd).shutdown() }
    }

    /// Closes connections that took longer than ``Configuration/headTimeout`` to send a
    /// request, and cancels source resolvers that took longer than
    /// ``Configuration/sourceTimeout``: one timer for the whole server, not one per
    /// connection. It looks every quarter of the shorter timeout (at most every second), so
    /// a timeout acts up to that much late.
    private func sweepSlowClients() async {
        // At least 10 ms, so that a zero timeout cannot make this spin.
        let period = max(min(min(configuration.headTimeout, configuration.sourceTimeout) / 4, .seconds(1)), .milliseconds(10))
        while (try? await Task.sleep(for: period)) != nil {
            let now = ContinuousClock.now
            let expired = state.withLock { state in
                let expired = state.deadlines.filter { $0.value.instant <= now }
                for fd in expired.keys { state.deadlines[fd] = nil }
                return expired
            }
            for (fd, deadline) in expired {
                switch deadline {
                case .head:
                    configuration.logger(.warning, "closed a connection that sent no complete request within \(configuration.headTimeout)")
                    Socket(fd: fd).shutdown()
                case .resolver(_, let cancel):
                    cancel()
                }
            }
        }
    }

    static func statusResponse(_ status: HTTPStatus, extra: [(String, String)] = [], message: String? = nil, keepAlive: Bool = false) -> [UInt8] {
        let body = Array(((message ?? status.reason) + "\n").utf8)
        var head = "HTTP/1.1 \(status.code) \(status.reason)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in extra { head += "\(name): \(value)\r\n" }
        head += keepAlive ? "\r\n" : "Connection: close\r\n\r\n"
        return Array(head.utf8) + body
    }
}
