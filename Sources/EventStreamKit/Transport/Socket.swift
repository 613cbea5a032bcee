#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An error from a socket call, with the call and `errno`.
public struct SocketError: Error, CustomStringConvertible, Sendable {
    /// The system call that failed.
    public let operation: String
    /// The `errno` it set.
    public let code: Int32
    /// What went wrong, for a call that does not report through `errno` (`getaddrinfo`):
    /// said instead of `code`'s `strerror`, which would describe some other, stale failure.
    package let detail: String?

    package init(_ operation: String, code: Int32 = errno, detail: String? = nil) {
        self.operation = operation
        self.code = code
        self.detail = detail
    }

    public var description: String {
        "\(operation) failed: \(detail ?? "\(String(cString: strerror(code))) (errno \(code))")"
    }
}

/// A non-blocking socket descriptor. A plain value: whoever owns it closes it, once.
package struct Socket: Hashable, Sendable {
    package let fd: Int32

    /// The socket whose descriptor is `fd` (owned by whoever closes it).
    package init(fd: Int32) {
        self.fd = fd
    }

    package enum ReadResult: Equatable {
        case bytes(Int)
        case wouldBlock
        case endOfFile
    }

    /// Binds and listens on `host` (an IPv4 or IPv6 literal) and `port` (0 picks a free one).
    package static func listen(host: String, port: UInt16, backlog: Int32 = 1024) throws(SocketError) -> Socket {
        var v4 = in_addr()
        var v6 = in6_addr()
        let isV6 = inet_pton(AF_INET, host, &v4) != 1
        if isV6, inet_pton(AF_INET6, host, &v6) != 1 { throw SocketError("inet_pton(\(host))", code: EINVAL) }
        #if canImport(Glibc)
        let fd = socket(isV6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(isV6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw SocketError("socket") }
        let socket = Socket(fd: fd)
        var listening = false
        defer { if !listening { socket.close() } }
        do {
            var one: Int32 = 1
            guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) == 0 else { throw SocketError("setsockopt(SO_REUSEADDR)") }
            let bound: Int32
            if isV6 {
                var address = sockaddr_in6()
                address.sin6_family = sa_family_t(AF_INET6)
                address.sin6_port = port.bigEndian
                address.sin6_addr = v6
                bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
            } else {
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = port.bigEndian
                address.sin_addr = v4
                bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            }
            guard bound == 0 else { throw SocketError("bind(\(host):\(port))") }
            #if canImport(Glibc)
            guard Glibc.listen(fd, backlog) == 0 else { throw SocketError("listen") }
            #else
            guard Darwin.listen(fd, backlog) == 0 else { throw SocketError("listen") }
            #endif
            try socket.setNonBlocking()
            listening = true
            return socket
        }
    }

    /// The local port this socket is bound to.
    package var localPort: UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        guard ok == 0 else { return 0 }
        let family = storage.ss_family
        return withUnsafePointer(to: &storage) { pointer in
            if family == sa_family_t(AF_INET6) {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
    }

    /// Accepts one pending connection, non-blocking, or returns `nil` if there is none.
    package func accept() throws(SocketError) -> Socket? {
        #if canImport(Glibc)
        let client = Glibc.accept(fd, nil, nil)
        #else
        let client = Darwin.accept(fd, nil, nil)
        #endif
        guard client >= 0 else {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED { return nil }
            throw SocketError("accept")
        }
        let socket = Socket(fd: client)
        do {
            try socket.setNonBlocking()
            #if canImport(Darwin)
            var one: Int32 = 1
            _ = setsockopt(client, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
            #endif
        } catch {
            socket.close()
            throw error
        }
        return socket
    }

    package func setNonBlocking() throws(SocketError) {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else { throw SocketError("fcntl(O_NONBLOCK)") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    /// Turns off Nagle's algorithm: without it small event writes wait ~40 ms for the
    /// delayed ACK.
    package func setNoDelay() {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Turns on TCP keepalive probes: after 60 s without traffic, a probe every 10 s, and
    /// the connection fails after 3 unanswered ones, so a peer that vanished (a half-open
    /// connection) is noticed in about 90 s even when nothing is sent.
    package func setKeepAlive() {
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
        var idle: Int32 = 60, interval: Int32 = 10, count: Int32 = 3
        #if canImport(Glibc)
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, &idle, socklen_t(MemoryLayout<Int32>.size))
        #else
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPALIVE, &idle, socklen_t(MemoryLayout<Int32>.size))
        #endif
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, &interval, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPCNT, &count, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Fixes the kernel's send buffer (`SO_SNDBUF`), turning off its automatic sizing.
    package func setSendBufferSize(_ size: Int) {
        var value = Int32(clamping: size)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    package func read(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> ReadResult {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n > 0 { return .bytes(n) }
            if n == 0 { return .endOfFile }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: throw SocketError("recv")
            }
        }
    }

    /// Writes what the kernel takes now: the count written, 0 if it would block.
    package func write(_ bytes: UnsafeRawBufferPointer) throws(SocketError) -> Int {
        while true {
            #if canImport(Glibc)
            let n = send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
            #else
            let n = send(fd, bytes.baseAddress, bytes.count, 0)
            #endif
            if n >= 0 { return n }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return 0
            default: throw SocketError("send")
            }
        }
    }

    /// Stops both directions: a read pending on another task returns end-of-file.
    package func shutdown() {
        shutdown(how: Int32(SHUT_RDWR))
    }

    /// Sends FIN: the peer reads end-of-file, and this side can still read.
    package func shutdownWrite() {
        shutdown(how: Int32(SHUT_WR))
    }

    private func shutdown(how: Int32) {
        #if canImport(Glibc)
        _ = Glibc.shutdown(fd, how)
        #else
        _ = Darwin.shutdown(fd, how)
        #endif
    }

    package func close() {
        #if canImport(Glibc)
        _ = Glibc.close(fd)
        #else
        _ = Darwin.close(fd)
        #endif
    }
}
