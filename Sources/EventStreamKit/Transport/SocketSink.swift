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

    private func takeHead() -> [UInt8]? {
        pendingHead.withLock { state -> [UInt8]? in defer { state = nil }; return state }
    }

    package nonisolated(nonsending) func writeAll(_ bytes: [UInt8]) async throws {
        try await socket.writeAll(bytes, poller: poller, deadline: writeDeadline)
    }
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
