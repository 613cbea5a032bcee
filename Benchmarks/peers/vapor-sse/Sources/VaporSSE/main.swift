// Vapor 4 SSE peer for the ssebench side-by-side bench, built like the bench's
// hummingbird-sse peer (../../../shared/bench/peers/hummingbird-sse).
//
// Behaviour (same for every peer, see the bench's README.md and peers.conf):
//   GET /events  -> 200, Content-Type: text/event-stream, streamed (chunked), no buffering
//   a built-in publisher broadcasts `--rate` events/s to every connected client;
//   each event is "data: <unix-ns> <seq> <padding>\n\n" with exactly `--size` bytes of data.
//   --rate 0 publishes nothing (idle / memory-only workload). Exits on SIGTERM (Vapor's serve).
//
// Design (what a Vapor user would write): a Broadcaster actor holds one AsyncStream
// continuation per connection; the response body is Response.Body(asyncStream:) whose
// closure writes every ByteBuffer of that AsyncStream<ByteBuffer> with writer.writeBuffer.
// Per-connection queue: AsyncStream .bufferingOldest(--queue) (default 256):
// when a slow client's queue is full, the new event is dropped (counted).
// Vapor sends the response head with the body's first write, so the body first writes an empty
// buffer (as Examples/VaporNotifications does). Vapor does not tell a streaming body that its
// client left; the next write fails, which ends the body and unregisters the connection.

import Vapor
import NIOCore
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct Options {
    var host = "127.0.0.1"
    var port = 8080
    var rate = 10.0
    var size = 100
    var queue = 256

    static func parse() -> Options {
        var o = Options()
        var args = CommandLine.arguments.dropFirst().makeIterator()
        while let a = args.next() {
            // accept --flag value, -flag value and --flag=value
            var name = a
            var inline: String? = nil
            if let eq = a.firstIndex(of: "=") {
                name = String(a[..<eq])
                inline = String(a[a.index(after: eq)...])
            }
            while name.hasPrefix("-") { name.removeFirst() }
            func value() -> String {
                if let v = inline { return v }
                guard let v = args.next() else { fatalError("missing value for \(a)") }
                return v
            }
            switch name {
            case "host": o.host = value()
            case "port": o.port = Int(value())!
            case "rate": o.rate = Double(value())!
            case "size": o.size = Int(value())!
            case "queue": o.queue = Int(value())!
            case "h", "help":
                print("usage: VaporSSE [--host 127.0.0.1] [--port 8080] [--rate events/s] [--size bytes] [--queue N]")
                exit(0)
            default:
                fatalError("unknown flag \(a)")
            }
        }
        return o
    }
}

@inline(__always)
func unixNanos() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// Builds one SSE frame: "data: <ns> <seq> <padding>\n\n", data part exactly `size` bytes
/// (or longer if `size` is smaller than the "<ns> <seq> " prefix).
func makeFrame(seq: Int64, size: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
    let head = "\(unixNanos()) \(seq) "
    let pad = max(0, size - head.utf8.count)
    var buf = allocator.buffer(capacity: 6 + head.utf8.count + pad + 2)
    buf.writeStaticString("data: ")
    buf.writeString(head)
    buf.writeRepeatingByte(UInt8(ascii: "x"), count: pad)
    buf.writeStaticString("\n\n")
    return buf
}

actor Broadcaster {
    private var subscribers: [Int: AsyncStream<ByteBuffer>.Continuation] = [:]
    private var nextID = 0
    private(set) var dropped = 0
    private(set) var published: Int64 = 0

    func add(_ c: AsyncStream<ByteBuffer>.Continuation) -> Int {
        nextID += 1
        subscribers[nextID] = c
        return nextID
    }

    func remove(_ id: Int) {
        subscribers[id] = nil
    }

    var count: Int { subscribers.count }

    func publish(_ frames: [ByteBuffer]) {
        for frame in frames {
            published += 1
            for c in subscribers.values {
                if case .dropped = c.yield(frame) {
                    dropped += 1
                }
            }
        }
    }
}

let opts = Options.parse()
// Warnings only: Vapor's default route logging writes one line per request at .info.
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .warning
    return handler
}
let broadcaster = Broadcaster()
let allocator = ByteBufferAllocator()

// Vapor reads its own command line: hand it `serve` with our host and port.
let vaporArguments = [CommandLine.arguments[0], "serve", "--hostname", opts.host, "--port", "\(opts.port)"]
let app = try await Application.make(Environment(name: "production", arguments: vaporArguments))
// At SIGTERM Vapor waits for open responses (10 s by default) before it closes them: a stream
// whose client left says nothing until its next write, which never comes at --rate 0 (W3).
app.http.server.configuration.shutdownTimeout = .seconds(1)

app.get("events") { _ async -> Response in
    let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self, bufferingPolicy: .bufferingOldest(opts.queue))
    let id = await broadcaster.add(continuation)
    continuation.onTermination = { _ in
        Task { await broadcaster.remove(id) }
    }
    var headers = HTTPHeaders()
    headers.replaceOrAdd(name: .contentType, value: "text/event-stream")
    headers.replaceOrAdd(name: .cacheControl, value: "no-cache")
    return Response(status: .ok, headers: headers, body: .init(asyncStream: { writer in
        do {
            // Vapor sends the response head with the first body write: an empty one sends it
            // now (at --rate 0 the client would otherwise wait for its headers for ever).
            try await writer.writeBuffer(ByteBuffer())
            for await frame in stream { try await writer.writeBuffer(frame) }
        } catch {}  // the client left: the write failed
        continuation.finish()  // unregisters (onTermination)
        try? await writer.write(.end)
    }))
}

// Publisher: wakes every max(1/rate, 1 ms), publishes every event that is due
// (floor(rate * elapsed) - published), each stamped with its own send time.
if opts.rate > 0 {
    Task.detached {
        let clock = ContinuousClock()
        let start = clock.now
        let interval = Duration.nanoseconds(Int64(max(1.0 / opts.rate, 0.001) * 1e9))
        var next = start
        var seq: Int64 = 0
        while true {
            next = next.advanced(by: interval)
            try? await Task.sleep(until: next, clock: clock)
            let elapsed = clock.now - start
            let secs = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let due = Int64(secs * opts.rate)
            if due <= seq { continue }
            var frames: [ByteBuffer] = []
            frames.reserveCapacity(Int(due - seq))
            while seq < due {
                seq += 1
                frames.append(makeFrame(seq: seq, size: opts.size, allocator: allocator))
            }
            await broadcaster.publish(frames)
        }
    }
}

print("vapor-sse listening on \(opts.host):\(opts.port) rate=\(opts.rate) size=\(opts.size) queue=\(opts.queue) event-loops=\(NIOSingletons.groupLoopCountSuggestion)")
do {
    try await app.execute()  // `serve`: runs until SIGINT or SIGTERM
} catch {
    app.logger.report(error: error)
    try? await app.asyncShutdown()
    exit(1)
}
try await app.asyncShutdown()
