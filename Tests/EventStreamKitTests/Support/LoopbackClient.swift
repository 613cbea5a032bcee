@testable import EventStreamKit
@testable import EventStreamHTTP
#if canImport(Glibc)
import Glibc
#endif

/// A raw HTTP client on loopback for tests: sends exact bytes, reads what comes back.
/// Non-blocking, on the library's poller, so it never blocks the cooperative pool.
final class LoopbackClient: Sendable {
    let socket: Socket
    let poller: Poller

    init(port: UInt16, poller: Poller) throws {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        // Loopback connects complete at once; blocking here is a matter of microseconds.
        let result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard result == 0 else {
            Glibc.close(fd)
            throw SocketError("connect")
        }
        socket = Socket(fd: fd)
        try socket.setNonBlocking()
        self.poller = poller
    }

    func send(_ text: String) async throws {
        try await socket.writeAll(Array(text.utf8), poller: poller)
    }

    func send(_ bytes: [UInt8]) async throws {
        try await socket.writeAll(bytes, poller: poller)
    }

    /// Reads until `condition` holds for everything read so far, or the server closes.
    /// Returns what was read.
    func read(until condition: @escaping @Sendable (String) -> Bool, timeout: Duration = .seconds(10)) async throws -> String {
        try await withDeadline(timeout, "a response") { [socket, poller] in
            var received: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while !condition(String(decoding: received, as: UTF8.self)) {
                let result = try chunk.withUnsafeMutableBytes { try socket.read(into: $0) }
                switch result {
                case .bytes(let n): received += chunk[..<n]
                case .endOfFile: return String(decoding: received, as: UTF8.self)
                case .wouldBlock: try await poller.waitReadable(socket.fd)
                }
            }
            return String(decoding: received, as: UTF8.self)
        }
    }

    /// Reads until the server closes the connection.
    func readToEnd(timeout: Duration = .seconds(10)) async throws -> String {
        try await read(until: { _ in false }, timeout: timeout)
    }

    /// Closes with an RST instead of a FIN (`SO_LINGER` 0).
    func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(socket.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }

    func close() {
        poller.forget(socket.fd)
        socket.close()
    }
}

/// One running server for a test, with its hub and a poller for clients; stopped by `stop()`.
struct TestServer: Sendable {
    let server: HTTPServer
    let hub: EventServer<String>
    let clientPoller: Poller
    let task: Task<Void, Never>
    let log: LogRecorder

    var port: UInt16 { server.port }

    /// A hub without heartbeats: the server runs its hubs, and a heartbeat every 15 s would
    /// add frames to a test that outlasts one on a loaded machine.
    static func quietHub() -> EventServer<String> {
        var configuration = EventServer<String>.Configuration()
        configuration.heartbeatInterval = nil
        return EventServer(configuration: configuration)
    }

    static func start(
        hub: EventServer<String> = quietHub(),
        configure: (inout HTTPServer.Configuration) -> Void = { _ in },
        routes: (inout HTTPRouter, EventServer<String>) -> Void = { _, _ in }
    ) throws -> TestServer {
        var router = HTTPRouter()
        router.get("/hello") { _ in HTTPResponse(text: "hello\n") }
        router.post("/echo") { request in HTTPResponse(body: request.body) }
        router.events("/events", from: hub, channels: { request in Set(request.query["channels"]?.split(separator: ",").map(String.init) ?? []) }) { request in
            guard let user = request.query["user"] else { throw HTTPError(.unauthorized, "who are you?") }
            guard user != "mallory" else { throw HTTPError(.forbidden) }
            return user
        }
        routes(&router, hub)
        let log = LogRecorder()
        var configuration = HTTPServer.Configuration(host: "127.0.0.1", port: 0)
        configuration.logger = HTTPLogger { level, message in log.append("\(level.rawValue): \(message)") }
        configure(&configuration)
        let server = try HTTPServer(router: router, configuration: configuration)
        let task = Task { await server.run() }
        return TestServer(server: server, hub: hub, clientPoller: try Poller(), task: task, log: log)
    }

    func client() throws -> LoopbackClient {
        try LoopbackClient(port: port, poller: clientPoller)
    }

    /// Sends one request on a new connection and reads the response until the server closes.
    func exchange(_ request: String) async throws -> String {
        let client = try client()
        defer { client.close() }
        try await client.send(request)
        return try await client.readToEnd()
    }

    func stop() async {
        server.shutdown()
        await task.value
        await clientPoller.shutdown()
    }
}

import Synchronization

final class LogRecorder: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}
