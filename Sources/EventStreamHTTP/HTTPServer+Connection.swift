#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import EventStreamKit

extension HTTPServer {
    /// Serves one client connection: requests one after another (keep-alive), until the
    /// client closes, asks to close, errs, or upgrades to an event stream.
    ///
    /// One request per turn: after each response the task yields, so a client that
    /// pipelines requests as fast as they are answered shares the thread with everyone else.
    func serve(_ socket: Socket, handle: Handle) async {
        var handedOff = false
        defer { if !handedOff { release(socket, handle: handle) } }
        let limits = HTTPRequestDecoder.Limits(
            head: .init(maxHeadSize: configuration.maxHeadSize, maxHeaderCount: configuration.maxHeaderCount),
            maxBodySize: configuration.maxBodySize
        )
        if let size = configuration.sendBufferSize { socket.setSendBufferSize(size) }
        let peer = IPAddress.peer(of: socket.fd)
        var reader = RequestReader(socket: socket, poller: poller, decoder: HTTPRequestDecoder(limits: limits))
        while true {
            guard setDeadline(.head, after: configuration.headTimeout, for: handle, isIdle: reader.buffered == 0) else { return }
            do {
                guard let (head, framing) = try await reader.readHead() else { return }  // closed between requests
                if let allowed = configuration.allowedHosts, !Self.isAllowed(host: head.authority, in: allowed) {
                    throw HTTPParseError(.misdirectedRequest, "this server does not answer for the host \((head.authority ?? "(none)").debugDescription)")
                }
                var body: [UInt8] = []
                if framing.bodyLength > 0 {
                    var accounted = 0
                    defer { releaseBodyBytes(accounted) }
                    if framing.expectsContinue && reader.buffered < framing.bodyLength {
                        try await write(Self.continueResponse, to: socket, handle: handle)
                    }
                    guard setDeadline(.body, after: configuration.bodyTimeout, for: handle) else { return }
                    body = try await reader.readBody(count: framing.bodyLength) { (arrived) throws(HTTPParseError) in
                        try reserveBodyBytes(arrived)
                        accounted += arrived
                    }
                }
                guard setDeadline(nil, for: handle) else { return }
                let client = trustedProxies.isEmpty ? peer : Self.clientAddress(peer: peer, forwardedFor: head.headers.values("X-Forwarded-For"), trusted: trustedProxies)
                let request = HTTPRequest(head: head, body: body, peerAddress: peer, clientAddress: client)
                switch try await respond(to: request, on: socket, handle: handle) {
                case .keepAlive where !state.withLock({ $0.table.isStopping }):
                    await Task.yield()
                    continue
                case .keepAlive, .close:
                    return
                case .handedOff:
                    handedOff = true
                    return
                }
            } catch let error as HTTPParseError {
                configuration.logger(.warning, "refused a request (\(error.status.code)): \(error.message)")
                configuration.observer?.requestRefused(status: error.status, reason: error.message, request: nil)
                let response = HTTPResponse.generated(error.status, error.message + "\n")
                do {
                    try await write(responseBytes(response, to: nil, minorVersion: 1, isHead: false, keepAlive: false), to: socket, handle: handle)
                } catch {
                    configuration.observer?.writeFailed(error: error, request: nil)
                    return
                }
                await lingerAndClose(socket, handle: handle)
                return
            } catch {
                return  // the socket failed or was shut down: nothing to answer
            }
        }
    }

    /// Forgets a connection, then closes its socket: in this order, so that nothing can act
    /// on its descriptor number once the kernel reuses it.
    func release(_ socket: Socket, handle: Handle) {
        let released = state.withLock { $0.table.release(handle) }
        assert(released, "connection \(handle) released twice")
        poller.forget(socket.fd)
        socket.close()
    }

    /// Whether a `Host` value names one of `allowed` (see
    /// ``Configuration/allowedHosts``): an entry with a port must match host and port, one
    /// without matches the host on any port. Case-insensitive.
    static func isAllowed(host value: String?, in allowed: [String]) -> Bool {
        guard let value = value?.lowercasedASCII, !value.isEmpty else { return false }
        let name = Self.hostName(of: value)
        return allowed.contains { entry in
            let entry = entry.lowercasedASCII
            return entry == value || (Self.hostName(of: entry) == entry && entry == name)
        }
    }

    /// `example.com:80` -> `example.com`, `[::1]:80` -> `[::1]`.
    private static func hostName(of value: String) -> String {
        if value.hasPrefix("["), let close = value.firstIndex(of: "]") { return String(value[...close]) }
        return String(value.prefix { $0 != ":" })
    }

    /// Counts `count` bytes of a body just received against
    /// ``Configuration/maxBufferedBodyBytes``.
    ///
    /// - Throws: ``HTTPParseError`` 503 if they do not fit.
    func reserveBodyBytes(_ count: Int) throws(HTTPParseError) {
        let limit = configuration.maxBufferedBodyBytes
        let fits = state.withLock { state in
            guard state.bufferedBodyBytes + count <= limit else { return false }
            state.bufferedBodyBytes += count
            return true
        }
        guard fits else { throw HTTPParseError(.serviceUnavailable, "request bodies arriving at once are over the server's limit of \(limit) bytes; try again") }
    }

    func releaseBodyBytes(_ count: Int) {
        state.withLock { $0.bufferedBodyBytes -= count }
    }

    /// Sets what `handle` waits for, due `timeout` from now (`nil`: nothing). Returns `false`
    /// if the connection was shut down meanwhile: its task should end.
    func setDeadline(_ phase: Table.Phase?, after timeout: Duration = .zero, for handle: Handle, isIdle: Bool = false) -> Bool {
        let deadline = phase.map { Table.Deadline(phase: $0, instant: .now + timeout, cancel: nil) }
        return state.withLock { $0.table.setDeadline(deadline, for: handle, isIdle: isIdle) }
    }

    /// Writes every byte; while the client does not read, ``Configuration/writeTimeout``
    /// runs, and past it the socket is shut down (and this throws).
    func write(_ bytes: [UInt8], to socket: Socket, handle: Handle) async throws {
        try await socket.writeAll(bytes, poller: poller, deadline: writeDeadline(for: handle))
    }

    /// ``Configuration/writeTimeout`` for `handle`'s writes: armed while a write waits for
    /// the client to read (ordinary responses and event streams alike).
    func writeDeadline(for handle: Handle) -> WriteDeadline {
        let timeout = configuration.writeTimeout
        return WriteDeadline(
            arm: { self.setDeadline(.write, after: timeout, for: handle) },
            disarm: { _ = self.state.withLock { $0.table.clearDeadline(.write, for: handle) } }
        )
    }

    /// After an error answer: half-closes, then reads and discards what the client still
    /// sends (at most 64 KiB, for at most ``lingerTimeout``) before the socket is closed.
    /// Closing with unread input would send an RST, which can destroy the answer before the
    /// client reads it (RFC 9112 §9.6).
    func lingerAndClose(_ socket: Socket, handle: Handle) async {
        socket.shutdownWrite()
        guard setDeadline(.linger, after: Self.lingerTimeout, for: handle) else { return }
        var discarded = 0
        while discarded < 64 * 1024 {
            let result = try? withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 1) { try socket.read(into: $0) }
            switch result {
            case .bytes(let count)?:
                discarded += count
            case .wouldBlock?:
                guard (try? await poller.waitReadable(socket.fd)) != nil else { return }
            case .endOfFile?, nil:
                return
            }
        }
    }

    static let continueResponse = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
}

/// Reads requests from a socket through an ``HTTPRequestDecoder``, which carries over what
/// follows a request (its body, or a pipelined request) and holds nothing while idle.
struct RequestReader {
    let socket: Socket
    let poller: Poller
    private var decoder: HTTPRequestDecoder
    /// Bytes read since this task last waited: past 64 KiB it yields, so that a client whose
    /// socket always has bytes cannot hold a thread of the pool.
    private var readSinceWait = 0
    /// The last read brought only a few bytes of an unfinished request: the client sends it
    /// in dribbles (one byte per packet, say).
    private var isDribbling = false
    /// Reads of a head are small: most heads fit one, and a 16 KiB read buffer per request in
    /// flight tripled the resident memory of a burst of connecting streams (IdleMemory: 11.6
    /// KiB per stream against 4.0). Bodies are read in larger pieces.
    private static let headReadSize = 2048
    private static let bodyReadSize = HTTPRequestDecoder.readSize
    private static let bytesPerTurn = 64 * 1024
    /// A read smaller than this that leaves the request unfinished is a dribble.
    private static let dribble = 512
    /// How long a dribbling client's bytes are left to gather before the next read: without
    /// it, every byte would cost a wake-up, a read and a re-arm, and a head sent one byte
    /// per packet would cost ~40x the CPU of the same head sent whole. A request sent whole
    /// never waits; one sent in a few large segments neither.
    private static let dribbleDelay: Duration = .milliseconds(5)

    init(socket: Socket, poller: Poller, decoder: HTTPRequestDecoder) {
        self.socket = socket
        self.poller = poller
        self.decoder = decoder
    }

    var buffered: Int { decoder.buffered }

    /// The next request head and its framing, or `nil` if the client closed the connection
    /// cleanly first.
    mutating func readHead() async throws -> (HTTPRequestHead, HTTPRequestDecoder.Framing)? {
        while true {
            if let next = try decoder.nextHead() {
                isDribbling = false  // a complete head: the next wait is for a new request
                return next
            }
            guard try await fill(upTo: Self.headReadSize) else {
                if decoder.buffered == 0 { return nil }
                throw HTTPParseError(.badRequest, "connection closed in the middle of a request head")
            }
        }
    }

    /// The body that follows the last head, `count` bytes. `account` is told of the body's
    /// bytes as they arrive (what arrived since the last call); it throws to refuse them.
    mutating func readBody(count: Int, account: (_ arrived: Int) throws(HTTPParseError) -> Void) async throws -> [UInt8] {
        var accounted = 0
        while true {
            let arrived = min(decoder.buffered, count)
            if arrived > accounted {
                try account(arrived - accounted)
                accounted = arrived
            }
            if let body = decoder.takeBody(count: count) {
                isDribbling = false
                return body
            }
            guard try await fill(upTo: Self.bodyReadSize) else { throw HTTPParseError(.badRequest, "connection closed in the middle of a request body") }
        }
    }

    /// Reads what is available, waiting for it; `false` at end of file. Nothing is allocated
    /// while waiting: the read buffer exists only during the read.
    private mutating func fill(upTo size: Int) async throws -> Bool {
        while true {
            let result = try withUnsafeTemporaryAllocation(byteCount: size, alignment: 1) { scratch in
                let result = try socket.read(into: scratch)
                if case .bytes(let count) = result { decoder.append(UnsafeRawBufferPointer(rebasing: scratch[..<count])) }
                return result
            }
            switch result {
            case .bytes(let count):
                isDribbling = count < Self.dribble
                readSinceWait += count
                if readSinceWait >= Self.bytesPerTurn {
                    readSinceWait = 0
                    await Task.yield()
                }
                return true
            case .endOfFile:
                return false
            case .wouldBlock where isDribbling:
                // Let the rest gather, then read it all at once. The socket's deadline still
                // runs: a shutdown by the sweep is seen at the next read.
                isDribbling = false
                readSinceWait = 0
                try await Task.sleep(for: Self.dribbleDelay)
            case .wouldBlock:
                readSinceWait = 0
                try await poller.waitReadable(socket.fd)
            }
        }
    }
}

extension HTTPServer.Configuration {
    /// Whether `entry` can be an ``allowedHosts`` entry: a valid `Host` value (RFC 9110
    /// §7.2), with or without a port.
    public static func isValidAllowedHost(_ entry: String) -> Bool {
        !entry.isEmpty && HTTPRequestDecoder.isValidHost(entry)
    }

    /// Whether `entry` can be a ``trustedProxies`` entry: an IPv4 or IPv6 literal.
    public static func isValidTrustedProxy(_ entry: String) -> Bool {
        IPAddress.canonical(entry) != nil
    }
}
