import Foundation
@testable import EventStreamKit
import Synchronization

/// A raw HTTP server on loopback for client tests: records each request, answers with the
/// exact bytes a script gives, and notes when the client closes its side.
final class ScriptedServer: Sendable {
    struct Request: Sendable {
        let index: Int
        let head: String
        /// The body, as long as its `Content-Length` says.
        let body: [UInt8]
        let receivedAt: ContinuousClock.Instant

        /// The first value of a header, by case-insensitive name.
        func header(_ name: String) -> String? {
            for line in head.split(separator: "\r\n").dropFirst() {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == name.lowercased() { return parts[1].trimmingCharacters(in: .whitespaces) }
            }
            return nil
        }

        var requestLine: String { String(head.split(separator: "\r\n").first ?? "") }
        var method: String { String(requestLine.split(separator: " ").first ?? "") }
    }

    enum Step: Sendable {
        case send([UInt8])
        /// Closes with a FIN.
        case close
        /// Keeps the connection open until the client closes it.
        case holdOpen
        /// Waits this long before the next step: a slow server, on purpose.
        case pause(Duration)
    }

    typealias Script = @Sendable (Request) -> [Step]

    let port: UInt16
    private let listener: Socket
    private let poller: Poller
    private let script: Script
    private let recorded = Mutex<[Request]>([])
    private let clientClosures = Mutex<[ContinuousClock.Instant]>([])
    private let endedBeforeRequest = Mutex(0)

    init(script: @escaping Script) throws {
        listener = try Socket.listen(host: "127.0.0.1", port: 0)
        port = listener.localPort
        poller = try Poller()
        self.script = script
    }

    var url: String { "http://127.0.0.1:\(port)/events" }
    var requests: [Request] { recorded.withLock { $0 } }
    /// When clients closed connections that the script held open.
    var closures: [ContinuousClock.Instant] { clientClosures.withLock { $0 } }
    /// Connections the client ended before a whole request head arrived.
    var closedBeforeRequest: Int { endedBeforeRequest.withLock { $0 } }

    /// Serves until the task is cancelled, then closes everything.
    func run() async {
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                do {
                    guard let client = try listener.accept() else {
                        try await poller.waitReadable(listener.fd)
                        continue
                    }
                    group.addTask { await self.serve(client) }
                } catch {
                    break
                }
            }
            group.cancelAll()
        }
        poller.forget(listener.fd)
        listener.close()
        await poller.shutdown()
    }

    private func serve(_ socket: Socket) async {
        defer {
            poller.forget(socket.fd)
            socket.close()
        }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        do {
            while !received.containsHeadEnd {
                switch try chunk.withUnsafeMutableBytes({ try socket.read(into: $0) }) {
                case .bytes(let count): received += chunk[..<count]
                case .endOfFile:
                    endedBeforeRequest.withLock { $0 += 1 }
                    return
                case .wouldBlock: try await poller.waitReadable(socket.fd)
                }
            }
            let headEnd = received.headEnd!
            let head = String(decoding: received[..<headEnd], as: UTF8.self)
            let length = Request(index: 0, head: head, body: [], receivedAt: .now).header("Content-Length").flatMap { Int($0) } ?? 0
            var body = Array(received[headEnd...])
            while body.count < length {
                switch try chunk.withUnsafeMutableBytes({ try socket.read(into: $0) }) {
                case .bytes(let count): body += chunk[..<count]
                case .endOfFile: return
                case .wouldBlock: try await poller.waitReadable(socket.fd)
                }
            }
            let request = recorded.withLock { list in
                let request = Request(index: list.count, head: head, body: body, receivedAt: .now)
                list.append(request)
                return request
            }
            for step in script(request) {
                switch step {
                case .send(let bytes):
                    try await socket.writeAll(bytes, poller: poller)
                case .close:
                    return
                case .pause(let duration):
                    try await Task.sleep(for: duration)
                case .holdOpen:
                    while true {
                        try await poller.waitReadable(socket.fd)
                        if try chunk.withUnsafeMutableBytes({ try socket.read(into: $0) }) == .endOfFile { break }
                    }
                    clientClosures.withLock { $0.append(.now) }
                    return
                }
            }
        } catch {
            return
        }
    }
}

extension ScriptedServer.Step {
    /// A 200 `text/event-stream` head (no framing: the body runs until close).
    static let streamHead = ScriptedServer.Step.send(Array("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n".utf8))

    static func send(_ text: String) -> ScriptedServer.Step {
        .send(Array(text.utf8))
    }
}

/// Runs `body` with a scripted server, stopping it afterwards.
func withScriptedServer<T: Sendable>(
    _ script: @escaping ScriptedServer.Script,
    _ body: @escaping @Sendable (ScriptedServer) async throws -> T
) async throws -> T {
    let server = try ScriptedServer(script: script)
    let task = Task { await server.run() }
    defer { task.cancel() }
    let result = try await body(server)
    task.cancel()
    await task.value
    return result
}

private extension Array where Element == UInt8 {
    var containsHeadEnd: Bool { headEnd != nil }

    /// The index just past the head's final CRLF CRLF.
    var headEnd: Int? {
        guard count >= 4 else { return nil }
        for index in 3..<count where self[index] == 10 && self[index - 1] == 13 && self[index - 2] == 10 && self[index - 3] == 13 {
            return index + 1
        }
        return nil
    }
}
