import Foundation
#if canImport(Glibc)
import Glibc
private let systemClose = Glibc.close
private let systemConnect = Glibc.connect
#elseif canImport(Darwin)
import Darwin
private let systemClose = Darwin.close
private let systemConnect = Darwin.connect
#endif

/// A blocking HTTP/1.1 client over one keep-alive TCP connection to 127.0.0.1, for the
/// publisher and the stats probe. It runs on dedicated threads, never on the cooperative
/// pool (two threads on this machine), so its blocking calls delay no event reader.
///
/// It understands exactly what the demo server answers: a status line, headers, and a
/// `Content-Length` body. A request is never retried: a `POST /notify` whose answer was
/// lost may have been sent, and the soak must know.
final class MiniHTTP {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    struct Response {
        let status: Int
        let body: String
        /// `Retry-After` in seconds, if the server sent one.
        let retryAfter: Int?
    }

    let port: UInt16
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []

    init(port: UInt16) {
        self.port = port
    }

    deinit { close() }

    func close() {
        if fd >= 0 { _ = systemClose(fd) }
        fd = -1
        buffer.removeAll()
    }

    private func connect() throws {
        #if canImport(Glibc)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { systemConnect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let code = errno
            _ = systemClose(descriptor)
            throw Failure(description: "connect: errno \(code)")
        }
        var one: Int32 = 1
        _ = setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        // A server that stops answering must not hang the soak: 30 s per read or write.
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        fd = descriptor
    }

    /// Sends one request, with `Authorization: Bearer <token>` if given, and reads its
    /// response. Any failure closes the connection (the next request opens a new one) and is
    /// thrown.
    func request(_ method: String, _ path: String, json body: String? = nil, token: String? = nil, close closeAfter: Bool = false) throws -> Response {
        do {
            if fd < 0 { try connect() }
            var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
            if closeAfter { head += "Connection: close\r\n" }
            if let token { head += "Authorization: Bearer \(token)\r\n" }
            let bodyBytes = Array((body ?? "").utf8)
            if body != nil { head += "Content-Type: application/json\r\nContent-Length: \(bodyBytes.count)\r\n" }
            head += "\r\n"
            try writeAll(Array(head.utf8) + bodyBytes)
            let response = try readResponse()
            if closeAfter { close() }
            return response
        } catch {
            close()
            throw error
        }
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "send: errno \(errno)")
            }
            offset += written
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer.append(contentsOf: chunk[..<count])
                return
            }
            if count == 0 { throw Failure(description: "connection closed by the server") }
            if errno == EINTR { continue }
            throw Failure(description: errno == EAGAIN || errno == EWOULDBLOCK ? "no answer within 30 s" : "recv: errno \(errno)")
        }
    }

    private func readResponse() throws -> Response {
        let terminator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        while headEnd == nil {
            if buffer.count >= 4 {
                for index in 0...(buffer.count - 4) where buffer[index] == 13 && Array(buffer[index..<index + 4]) == terminator {
                    headEnd = index
                    break
                }
            }
            if headEnd == nil { try fill() }
        }
        let head = String(decoding: buffer[..<headEnd!], as: UTF8.self)
        buffer.removeFirst(headEnd! + 4)
        let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw Failure(description: "malformed status line \(lines.first.map(String.init) ?? "")")
        }
        var length = 0
        var retryAfter: Int?
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            switch parts[0].lowercased() {
            case "content-length": length = Int(parts[1].trimmingCharacters(in: " \t")) ?? 0
            case "retry-after": retryAfter = Int(parts[1].trimmingCharacters(in: " \t"))
            default: break
            }
        }
        while buffer.count < length { try fill() }
        let body = String(decoding: buffer[..<length], as: UTF8.self)
        buffer.removeFirst(length)
        return Response(status: status, body: body, retryAfter: retryAfter)
    }

    /// Signs `user` in and returns the token. The demo limits sign-ins (20 a second after a
    /// burst of 100): a 429 or 503 is waited out for its `Retry-After`, up to 30 times in a row.
    func signIn(_ user: String) throws -> String {
        for _ in 0..<30 {
            let response = try request("POST", "/signin", json: #"{"user":"\#(user)"}"#)
            if response.status == 429 || response.status == 503 {
                sleep(UInt32(max(1, min(response.retryAfter ?? 1, 60))))
                continue
            }
            guard response.status == 200,
                  let object = try? JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any],
                  let token = object["token"] as? String
            else { throw Failure(description: "sign-in of \(user): \(response.status) \(response.body.prefix(200))") }
            return token
        }
        throw Failure(description: "sign-in of \(user): still refused after 30 tries")
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        let characters = Set(set)
        var result = self
        while let first = result.first, characters.contains(first) { result = result.dropFirst() }
        while let last = result.last, characters.contains(last) { result = result.dropLast() }
        return result
    }
}
