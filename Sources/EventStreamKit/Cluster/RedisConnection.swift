import Foundation
import Synchronization

/// One connection to a Redis server, speaking RESP2 over the library's own non-blocking
/// sockets (no Redis package exists offline, and the package stays dependency-free).
///
/// Commands are pipelined: ``send(_:timeout:)`` writes a batch and reads one reply per
/// command, in order. One batch at a time: a second concurrent call throws
/// ``RedisError/Code/busy`` instead of interleaving its bytes with the first's. A blocking
/// command (`XREAD BLOCK`) therefore needs a connection of its own.
///
/// A timeout, a cancelled task or ``close()`` ends a pending call at once (the socket is shut
/// down), and the connection is then unusable: a reply that may still come cannot be told
/// from the next one's. Replies are bounded by ``RESPDecoder/Limits``.
final class RedisConnection: Sendable {
    private struct State {
        var decoder: RESPDecoder
        var isBusy = false
        var isBroken: RedisError?
    }

    let endpoint: RedisEndpoint
    private let socket: Socket
    private let poller: Poller
    private let state: Mutex<State>
    private let isClosed = Atomic<Bool>(false)

    private init(endpoint: RedisEndpoint, socket: Socket, poller: Poller, limits: RESPDecoder.Limits) {
        self.endpoint = endpoint
        self.socket = socket
        self.poller = poller
        state = Mutex(State(decoder: RESPDecoder(limits: limits)))
    }

    deinit {
        poller.forget(socket.fd)
        socket.close()
    }

    /// Connects, authenticates and selects the database, within `timeout`.
    ///
    /// - Throws: ``RedisError`` (``RedisError/Code/connectionFailed``, ``RedisError/Code/timedOut``
    ///   or ``RedisError/Code/commandFailed`` for a refused `AUTH` or `SELECT`).
    static func connect(to endpoint: RedisEndpoint, timeout: Duration = .seconds(5), limits: RESPDecoder.Limits = .init()) async throws(RedisError) -> RedisConnection {
        let poller: Poller
        do {
            poller = try HTTPClientResponse.poller.get()
        } catch {
            throw RedisError(.connectionFailed, "no poller: \(error)")
        }
        let connection: RedisConnection = try await withDeadline(timeout, what: "connecting to \(endpoint)") {
            let socket = try await Socket.connect(host: endpoint.host, port: endpoint.port, poller: poller)
            socket.setKeepAlive()
            return RedisConnection(endpoint: endpoint, socket: socket, poller: poller, limits: limits)
        } onTimeout: {}
        var setup: [[String]] = []
        if let password = endpoint.password {
            setup.append(endpoint.username.map { ["AUTH", $0, password] } ?? ["AUTH", password])
        }
        if endpoint.database != 0 { setup.append(["SELECT", String(endpoint.database)]) }
        if !setup.isEmpty {
            for reply in try await connection.send(setup.map { RESPValue.command($0) }, timeout: timeout) {
                if case .error(let message) = reply {
                    connection.close()
                    throw RedisError(.commandFailed, "setting up the connection to \(endpoint): \(message)")
                }
            }
        }
        return connection
    }

    /// Sends `commands` (each from ``RESPValue/command(_:)``) in one write and reads one reply
    /// per command, in order. An error reply (`-ERR …`) is returned as ``RESPValue/error(_:)``:
    /// the caller decides; the connection stays usable.
    ///
    /// - Parameter timeout: The longest wait for all the replies; `nil` for none (a blocking
    ///   command sets its own, server-side).
    /// - Throws: ``RedisError``: ``RedisError/Code/busy`` if another call is in progress,
    ///   ``RedisError/Code/connectionFailed`` (the server closed, a socket error, an invalid
    ///   reply), ``RedisError/Code/timedOut``; `CancellationError` if the task was cancelled.
    ///   After any of these but `busy` the connection is broken: drop it.
    func send(_ commands: [[UInt8]], timeout: Duration? = .seconds(5)) async throws(RedisError) -> [RESPValue] {
        try state.withLock { (state) throws(RedisError) in
            if let broken = state.isBroken { throw broken }
            guard !state.isBusy else { throw RedisError(.busy, "another command is in progress on this connection") }
            state.isBusy = true
        }
        defer { state.withLock { $0.isBusy = false } }
        // The deadline shuts the socket down, which ends the exchange's read or write. Its
        // action holds the connection: the descriptor is not closed (deinit) before it runs.
        let ticket = timeout.map { timeout in
            Self.deadlines.add(.now + timeout) { self.socket.shutdown() }
        }
        do {
            let replies = try await exchange(commands)
            if let ticket, !Self.deadlines.remove(ticket) {
                // The replies came as the deadline did: they are whole, the socket is not.
                state.withLock { $0.isBroken = $0.isBroken ?? RedisError(.timedOut, "the connection to \(endpoint) was shut at a deadline") }
            }
            return replies
        } catch {
            var error = error
            if let ticket, let timeout, !Self.deadlines.remove(ticket) {
                error = RedisError(.timedOut, "waiting for Redis at \(endpoint): no answer within \(timeout)")
            }
            state.withLock { $0.isBroken = $0.isBroken ?? error }
            throw error
        }
    }

    /// The deadlines of every connection's commands, on one timer.
    static let deadlines = DeadlineSweeper(clock: ContinuousClock())

    /// Whether the connection can take a command: not broken, and between calls its socket
    /// holds nothing (no end of file left by a server that went away, no stray reply). A
    /// connection idle while Redis restarted fails this, so a caller can replace it before
    /// sending, instead of losing a command to a dead socket.
    var isUsable: Bool {
        guard state.withLock({ $0.isBroken == nil && !$0.isBusy && $0.decoder.bufferedCount == 0 }) else { return false }
        var byte: UInt8 = 0
        #if canImport(Glibc)
        let peeked = recv(socket.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        #else
        let peeked = recv(socket.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT)
        #endif
        return peeked < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
    }

    /// Shuts the connection down: a pending call ends with an error; later calls fail.
    func close() {
        guard !isClosed.exchange(true, ordering: .relaxed) else { return }
        state.withLock { $0.isBroken = $0.isBroken ?? RedisError(.connectionFailed, "the connection to \(endpoint) was closed") }
        socket.shutdown()
    }

    private nonisolated(nonsending) func exchange(_ commands: [[UInt8]]) async throws(RedisError) -> [RESPValue] {
        do {
            try await socket.writeAll(Array(commands.joined()), poller: poller)
        } catch is CancellationError {
            socket.shutdown()
            throw RedisError(.cancelled, "cancelled")
        } catch {
            throw RedisError(.connectionFailed, "writing to \(endpoint): \(error)")
        }
        var replies: [RESPValue] = []
        replies.reserveCapacity(commands.count)
        while replies.count < commands.count {
            let next = try state.withLock { (state) throws(RedisError) -> RESPValue? in
                do {
                    return try state.decoder.next()
                } catch {
                    throw RedisError(.connectionFailed, "\(error) from \(endpoint)")
                }
            }
            if let next {
                replies.append(next)
                continue
            }
            try await receive()
        }
        // Redis sends exactly one reply per command. Bytes beyond them mean the replies may be
        // misaligned (one caller's answer handed to the next): none of this batch is trusted,
        // and the connection is dropped.
        if state.withLock({ $0.decoder.bufferedCount }) > 0 {
            throw RedisError(.connectionFailed, "\(endpoint) sent more replies than it was sent commands")
        }
        return replies
    }

    /// Reads what the socket has into the decoder, waiting for it if need be.
    private nonisolated(nonsending) func receive() async throws(RedisError) {
        while true {
            let result: Socket.ReadResult
            do {
                result = try withUnsafeTemporaryAllocation(byteCount: 16 * 1024, alignment: 1) { scratch in
                    let result = try socket.read(into: scratch)
                    if case .bytes(let count) = result {
                        state.withLock { $0.decoder.feed(UnsafeRawBufferPointer(rebasing: scratch[..<count])) }
                    }
                    return result
                }
            } catch {
                throw RedisError(.connectionFailed, "reading from \(endpoint): \(error)")
            }
            switch result {
            case .bytes:
                return
            case .endOfFile:
                throw RedisError(.connectionFailed, "\(endpoint) closed the connection")
            case .wouldBlock:
                do {
                    try await poller.waitReadable(socket.fd)
                } catch is CancellationError {
                    socket.shutdown()
                    throw RedisError(.cancelled, "cancelled")
                } catch {
                    throw RedisError(.connectionFailed, "waiting for \(endpoint): \(error)")
                }
            }
        }
    }
}

/// Runs `body`; if it has not finished after `timeout`, calls `onTimeout` (which must make
/// `body` end soon, e.g. by shutting its socket down) and throws ``RedisError/Code/timedOut``.
private func withDeadline<T: Sendable>(
    _ timeout: Duration,
    what: String,
    _ body: @escaping @Sendable () async throws -> T,
    onTimeout: @escaping @Sendable () -> Void
) async throws(RedisError) -> T {
    let fired = TimeoutFlag()
    let result: Result<T, any Error> = await withTaskGroup(of: Result<T, any Error>?.self) { group in
        group.addTask { await Result { try await body() } }
        group.addTask {
            guard (try? await Task.sleep(for: timeout)) != nil else { return nil }
            fired.value.store(true, ordering: .sequentiallyConsistent)
            onTimeout()
            return nil
        }
        // Whichever ends first decides: the body's result, or the timer. Either way the other
        // is cancelled: a body stuck in a wait that only cancellation ends (a connect that
        // the server never answers) ends now, not when the kernel gives up minutes later.
        if case let value?? = await group.next() {
            group.cancelAll()
            return value
        }
        group.cancelAll()
        for await value in group {
            if let value { return value }
        }
        return .failure(CancellationError())
    }
    // A body that the timeout ended fails too; the timeout is the reason given.
    if fired.value.load(ordering: .sequentiallyConsistent), case .failure = result {
        throw RedisError(.timedOut, "\(what): no answer within \(timeout)")
    }
    switch result {
    case .success(let value): return value
    case .failure(let error as RedisError): throw error
    case .failure(is CancellationError): throw RedisError(.cancelled, "cancelled")
    case .failure(let error): throw RedisError(.connectionFailed, "\(what): \(error)")
    }
}

/// Whether a deadline fired.
private final class TimeoutFlag: Sendable {
    let value = Atomic<Bool>(false)
}

extension Result where Failure == any Error {
    fileprivate init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
