#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Why a TLS connection failed. A network error like any other: the source reconnects
/// (``EventSource/ErrorPolicy`` can stop on it, e.g. on ``Code/certificateRejected``).
public struct TLSError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure.
    public enum Code: Hashable, Sendable {
        /// The system's OpenSSL could not be loaded or set up.
        case libraryUnavailable
        /// The server's certificate is not trusted, or not for this host.
        case certificateRejected
        /// The handshake or a later record failed (a protocol error, an alert from the
        /// server, no common version or cipher).
        case protocolError
    }

    /// The kind of failure.
    public let code: Code
    /// What OpenSSL (or the loader) said.
    public let reason: String

    init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "TLS: \(reason)" }
}

#if canImport(Glibc)
/// A TLS client session over a non-blocking socket, through the system's OpenSSL.
///
/// OpenSSL reads and writes two memory buffers, never the socket: this type moves bytes
/// between them and the socket with the same non-blocking `recv`/`send` (`MSG_NOSIGNAL`) as
/// the plain transport, so a peer that closes cannot raise `SIGPIPE`, and each call says
/// which readiness to wait for. At most one 16 KiB read sits in OpenSSL's input, and
/// output is only what one call produced, so both are bounded.
///
/// Every call runs under one lock: the `SSL` object is never used by two threads at once,
/// and it may move between threads between calls, as OpenSSL allows.
///
/// Why OpenSSL and not URLSession on Linux: `Docs/Decisions/0008-tls-through-system-openssl.md`.
final class TLSSession: Sendable {
    /// What a call achieved, or what it waits for.
    enum Progress: Equatable {
        /// Done: for a read or write, the byte count.
        case done(Int)
        /// Wait until the socket is readable, then call again.
        case readable
        /// Wait until the socket is writable, then call again.
        case writable
        /// The peer ended the session (`close_notify`, or a close without one).
        case endOfFile
    }

    /// The `SSL` object and its two memory BIOs (owned by it), and output not yet sent.
    private struct State {
        let ssl: OpaquePointer
        let input: OpaquePointer
        let output: OpaquePointer
        var outgoing: [UInt8] = []
        var sent = 0
        var inputEnded = false
    }

    private static let readSize = 16 * 1024
    private static let memoryEOFReturn: Int32 = 130  // BIO_C_SET_BUF_MEM_EOF_RETURN

    let socket: Socket
    private let library: OpenSSL
    private let state: Mutex<State>

    /// A session for `host` (a DNS name, checked against the certificate and sent as SNI; or
    /// an IP literal, checked against the certificate's IP addresses).
    init(socket: Socket, host: String) throws(TLSError) {
        let library = try OpenSSL.shared.get()
        let context = try OpenSSL.clientContext.get()
        guard let ssl = library.new(context.pointer) else {
            throw TLSError(.libraryUnavailable, "SSL_new failed: \(library.takeErrors() ?? "no reason given")")
        }
        guard let input = library.bioNew(library.memoryMethod()), let output = library.bioNew(library.memoryMethod()) else {
            library.free(ssl)
            throw TLSError(.libraryUnavailable, "BIO_new failed")
        }
        library.setBIO(ssl, input, output)
        // An empty input asks OpenSSL to retry (wait for the socket) until the socket ends.
        _ = library.bioControl(input, Self.memoryEOFReturn, -1, nil)
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let configured: Bool
        if Self.isIPAddress(bare) {
            configured = library.parametersSetIP(library.getParameters(ssl), bare) == 1
        } else {
            configured = library.setHost(ssl, bare) == 1
                && bare.withCString { library.control(ssl, 55, 0, UnsafeMutableRawPointer(mutating: $0)) } == 1  // SNI
        }
        let alpn: [UInt8] = [8] + Array("http/1.1".utf8)
        guard configured, library.setALPN(ssl, alpn, UInt32(alpn.count)) == 0 else {
            library.free(ssl)
            throw TLSError(.protocolError, "cannot verify the host name \(bare): \(library.takeErrors() ?? "refused by OpenSSL")")
        }
        self.socket = socket
        self.library = library
        state = Mutex(State(ssl: ssl, input: input, output: output))
    }

    deinit {
        state.withLock { library.free($0.ssl) }
    }

    /// One step of the handshake: `.done` once it completed and the certificate was
    /// verified for the host.
    func handshake() throws -> Progress {
        try drive { [library] ssl in library.connect(ssl) }
    }

    /// Decrypts what is available into `buffer`: `.done(count)`, or what to wait for.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Progress {
        try drive { [library] ssl in library.read(ssl, buffer.baseAddress, Int32(clamping: buffer.count)) }
    }

    /// Encrypts bytes from `bytes` and starts sending them: `.done(count)` (the rest of
    /// the record may still be unsent: see ``flush()``), or what to wait for.
    func write(_ bytes: UnsafeRawBufferPointer) throws -> Progress {
        try drive { [library] ssl in library.write(ssl, bytes.baseAddress, Int32(clamping: bytes.count)) }
    }

    /// Sends output still held: true when nothing is left.
    func flush() throws -> Bool {
        try state.withLock { state in try flush(&state) }
    }

    /// Writes all of `bytes`, waiting on `poller` whenever the socket is not ready.
    nonisolated(nonsending) func writeAll(_ bytes: [UInt8], poller: Poller) async throws {
        var offset = 0
        while offset < bytes.count {
            let progress = try bytes.withUnsafeBytes { try write(UnsafeRawBufferPointer(rebasing: $0[offset...].prefix(Self.readSize))) }
            switch progress {
            case .done(let count): offset += count
            case .readable: try await poller.waitReadable(socket.fd)
            case .writable: try await poller.waitWritable(socket.fd)
            case .endOfFile: throw SocketError("send", code: EPIPE)
            }
        }
        while try !flush() {
            try await poller.waitWritable(socket.fd)
        }
    }

    /// Completes the handshake, waiting on `poller`.
    nonisolated(nonsending) func completeHandshake(poller: Poller) async throws {
        while true {
            switch try handshake() {
            case .done: return
            case .readable: try await poller.waitReadable(socket.fd)
            case .writable: try await poller.waitWritable(socket.fd)
            case .endOfFile: throw TLSError(.protocolError, "the server closed the connection during the handshake")
            }
        }
    }

    /// Runs `operation` (`SSL_connect`, `SSL_read` or `SSL_write`) until it completes or
    /// must wait for the socket, moving bytes between the socket and OpenSSL's buffers.
    private func drive(_ operation: (OpaquePointer) -> Int32) throws -> Progress {
        try state.withLock { state in
            while true {
                guard try flush(&state) else { return .writable }
                library.errorClear()
                let result = operation(state.ssl)
                let error = result > 0 ? 0 : library.getError(state.ssl, result)
                let flushed = try flush(&state)
                if result > 0 { return .done(Int(result)) }
                switch error {
                case OpenSSL.errorWantRead:
                    guard flushed else { return .writable }
                    if state.inputEnded { return .endOfFile }
                    guard try fill(&state) else { return .readable }
                case OpenSSL.errorZeroReturn:
                    return .endOfFile
                case OpenSSL.errorSyscall:
                    // With memory BIOs: the socket's end, without close_notify (OpenSSL 1.1).
                    if let reason = library.takeErrors() { throw TLSError(.protocolError, reason) }
                    return .endOfFile
                case OpenSSL.errorWantWrite:
                    _ = library.takeErrors()
                    throw TLSError(.protocolError, "OpenSSL waited to write into a memory buffer")
                default:
                    throw failure(state.ssl)
                }
            }
        }
    }

    /// Moves what the socket has into OpenSSL's input: true if bytes (or the socket's end)
    /// arrived, false if the socket would block.
    private func fill(_ state: inout State) throws -> Bool {
        try withUnsafeTemporaryAllocation(byteCount: Self.readSize, alignment: 1) { scratch in
            switch try socket.read(into: scratch) {
            case .bytes(let count):
                _ = library.bioWrite(state.input, scratch.baseAddress, Int32(count))
                return true
            case .wouldBlock:
                return false
            case .endOfFile:
                state.inputEnded = true
                _ = library.bioControl(state.input, Self.memoryEOFReturn, 0, nil)
                return true
            }
        }
    }

    /// Moves OpenSSL's output to the socket: true when nothing is left unsent.
    private func flush(_ state: inout State) throws -> Bool {
        while true {
            if state.sent == state.outgoing.count {
                let pending = library.bioPending(state.output)
                guard pending > 0 else {
                    state.outgoing = []
                    state.sent = 0
                    return true
                }
                var taken = [UInt8](repeating: 0, count: pending)
                let count = taken.withUnsafeMutableBytes { library.bioRead(state.output, $0.baseAddress, Int32(clamping: pending)) }
                taken.removeLast(pending - Int(max(0, count)))
                state.outgoing = taken
                state.sent = 0
                if taken.isEmpty { return true }
            }
            let sent = state.sent
            let written = try state.outgoing.withUnsafeBytes { bytes in
                try socket.write(UnsafeRawBufferPointer(rebasing: bytes[sent...]))
            }
            if written == 0 { return false }
            state.sent += written
        }
    }

    /// The error of a failed call: the certificate's verdict if it was rejected, else
    /// OpenSSL's first queued error.
    private func failure(_ ssl: OpaquePointer) -> TLSError {
        let queued = library.takeErrors()
        let verdict = library.getVerifyResult(ssl)
        if verdict != 0, let text = library.verifyErrorString(verdict) {
            return TLSError(.certificateRejected, "certificate rejected: \(String(cString: text))")
        }
        return TLSError(.protocolError, queued ?? "the handshake failed")
    }

    private static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
#endif
