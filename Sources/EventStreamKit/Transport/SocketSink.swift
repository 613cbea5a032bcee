#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Writes an event stream to a socket: straight from the writing task, waiting on the poller
/// only when the kernel's buffer is full. The response head goes out with the first write.
///
/// A write the client does not take is bounded in time by `writeDeadline`: armed when the
/// kernel's buffer is full, cleared once the write is done.
package final class SocketSink: EventStreamSink {
    package let socket: Socket
    package let poller: Poller
    package let writeDeadline: WriteDeadline?
    private let pendingHead: Mutex<[UInt8]?>

    package init(socket: Socket, poller: Poller, head: [UInt8], writeDeadline: WriteDeadline? = nil) {
        self.socket = socket
        self.poller = poller
        self.writeDeadline = writeDeadline
        self.pendingHead = Mutex(head)
    }

    /// Sends the response head now, if no frame was ready to go with it.
    package func flushHead() async throws {
        guard let head = takeHead() else { return }
        try await writeAll(head)
    }

    package nonisolated(nonsending) func write(_ chunk: [UInt8]) async throws {
        if let head = takeHead() {
            try await writeAll(head + chunk)
        } else {
            try await writeAll(chunk)
        }
    }

    /// Writes the frames with vectored I/O straight from their shared storage, the pending
    /// response head first: nothing is joined or copied per connection.
    package nonisolated(nonsending) func write(contentsOf frames: [EventFrame]) async throws {
        try await socket.writeAll(head: takeHead() ?? [], frames: frames, poller: poller, deadline: writeDeadline)
    }

    /// Whether the response head has gone out: until it has, only the reader writes.
    package var headSent: Bool { pendingHead.withLock { $0 == nil } }

    /// Writes what the kernel takes now of `frames`, with one vectored write, never waiting:
    /// a sender's write for an idle stream (``Mailbox/allowImmediateWrites(_:)``). Only once
    /// the head is sent.
    func writeNow(_ deliveries: [Delivery]) -> ImmediateWriter.Result {
        let frames = DeliveryFrames(deliveries: deliveries)
        // Buffer 0 is the (empty) head. Only a batch's first delivery can be a frame's rest.
        var cursor = Socket.VectoredCursor(buffer: 1, offset: deliveries.first?.skip ?? 0)
        var remaining = deliveries.reduce(0) { $0 + $1.frame.count } - cursor.offset
        do {
            while remaining > 0 {
                let written = try socket.write(vectored: frames, head: [], from: &cursor)
                guard written > 0 else { break }
                remaining -= written
            }
        } catch {
            return .failed(error, framesWritten: cursor.buffer - 1)
        }
        if remaining == 0 { return .written }
        // The rest of a frame the kernel took in part is the shared frame and an offset: no copy.
        return .partial(framesWritten: cursor.buffer - 1, remainder: deliveries[cursor.buffer - 1].skipping(cursor.offset))
    }

    /// Writes `frames` as ``write(contentsOf:)`` does, but the first from byte `skip` on: the
    /// rest of a frame that a sender's write cut part-way.
    func write(contentsOf frames: [EventFrame], skippingFirst skip: Int) async throws {
        try await socket.writeAll(head: takeHead() ?? [], frames: frames, skippingFirst: skip, poller: poller, deadline: writeDeadline)
    }

    private func takeHead() -> [UInt8]? {
        pendingHead.withLock { state -> [UInt8]? in defer { state = nil }; return state }
    }

    package nonisolated(nonsending) func writeAll(_ bytes: [UInt8]) async throws {
        try await socket.writeAll(bytes, poller: poller, deadline: writeDeadline)
    }
}

/// A batch's frames as the vectored writer reads them, without an array of their own. (A
/// `lazy.map(\.frame)` cost 1,200 instructions per delivery in `Benchmarks/profile.sh`:
/// generic metadata made at run time, and a key path applied per element.)
struct DeliveryFrames: RandomAccessCollection {
    let deliveries: [Delivery]
    var startIndex: Int { 0 }
    var endIndex: Int { deliveries.count }
    subscript(position: Int) -> EventFrame { deliveries[position].frame }
}

/// Bounds how long a write may wait for its client: ``arm`` before each wait (returns
/// `false` if the connection was shut down meanwhile: the write fails), ``disarm`` once the
/// write that waited is done.
package struct WriteDeadline: Sendable {
    package let arm: @Sendable () -> Bool
    package let disarm: @Sendable () -> Void

    package init(arm: @escaping @Sendable () -> Bool, disarm: @escaping @Sendable () -> Void) {
        self.arm = arm
        self.disarm = disarm
    }
}

extension Socket {
    /// Writes every byte, waiting for writability when the kernel's buffer is full.
    package nonisolated(nonsending) func writeAll(_ bytes: [UInt8], poller: Poller, deadline: WriteDeadline? = nil) async throws {
        var offset = 0
        var waited = false
        defer { if waited { deadline?.disarm() } }
        while offset < bytes.count {
            let written = try bytes.withUnsafeBytes { raw in
                try write(UnsafeRawBufferPointer(rebasing: raw[offset...]))
            }
            if written == 0 {
                waited = true
                if let deadline, !deadline.arm() { throw SocketError("send", code: EPIPE) }
                try await poller.waitWritable(fd)
            } else {
                offset += written
            }
        }
    }
}
