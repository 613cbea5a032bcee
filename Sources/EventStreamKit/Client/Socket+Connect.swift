import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Socket {
    /// One resolved address to connect to.
    struct Address: Sendable {
        var storage: sockaddr_storage
        var length: socklen_t
        var family: Int32
    }

    /// Resolves `host` to its addresses. A numeric host resolves at once; a name is looked
    /// up on a Dispatch thread, because `getaddrinfo` blocks.
    static func resolve(host: String, port: UInt16) async throws(SocketError) -> [Address] {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let numeric = try? lookup(bare, port: port, numericOnly: true) { return numeric }
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<[Address], SocketError>, Never>) in
            DispatchQueue.global().async {
                continuation.resume(returning: Result { () throws(SocketError) in try lookup(bare, port: port, numericOnly: false) })
            }
        }
        return try result.get()
    }

    static func lookup(_ host: String, port: UInt16, numericOnly: Bool) throws(SocketError) -> [Address] {
        var hints = addrinfo()
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_flags = numericOnly ? AI_NUMERICHOST | AI_NUMERICSERV : AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0 else {
            // getaddrinfo reports through its return value, not errno (EAI_SYSTEM aside): the
            // code is a stand-in for callers that look at it; the message is getaddrinfo's.
            let detail = status == EAI_SYSTEM ? nil : String(cString: gai_strerror(status))
            throw SocketError("getaddrinfo(\(host))", code: status == EAI_SYSTEM ? errno : EHOSTUNREACH, detail: detail)
        }
        defer { freeaddrinfo(list) }
        var addresses: [Address] = []
        var next = list
        while let info = next?.pointee {
            if let address = info.ai_addr, info.ai_addrlen <= socklen_t(MemoryLayout<sockaddr_storage>.size) {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(info.ai_addrlen))) }
                addresses.append(Address(storage: storage, length: info.ai_addrlen, family: info.ai_family))
            }
            next = info.ai_next
        }
        return addresses
    }

    /// Connects to `host:port`, trying each resolved address in turn, without blocking:
    /// the wait for the handshake goes through `poller`, and cancellation ends it.
    static func connect(host: String, port: UInt16, poller: Poller) async throws -> Socket {
        let addresses = try await resolve(host: host, port: port)
        var lastError = SocketError("connect(\(host):\(port))", code: EHOSTUNREACH)
        for address in addresses {
            do {
                return try await connect(to: address, poller: poller)
            } catch let error as SocketError {
                lastError = error
            }
        }
        throw lastError
    }

    private static func connect(to address: Address, poller: Poller) async throws -> Socket {
        #if canImport(Glibc)
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(address.family, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw SocketError("socket") }
        let socket = Socket(fd: fd)
        var connected = false
        defer {
            if !connected {
                poller.forget(fd)
                socket.close()
            }
        }
        try socket.setNonBlocking()
        #if canImport(Darwin)
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
        var storage = address.storage
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                #if canImport(Glibc)
                Glibc.connect(fd, $0, address.length)
                #else
                Darwin.connect(fd, $0, address.length)
                #endif
            }
        }
        if result != 0 {
            guard errno == EINPROGRESS || errno == EINTR else { throw SocketError("connect") }
            try await poller.waitWritable(fd)
            var failure: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length) == 0 else { throw SocketError("getsockopt(SO_ERROR)") }
            guard failure == 0 else { throw SocketError("connect", code: failure) }
        }
        socket.setNoDelay()
        connected = true
        return socket
    }
}
