import Synchronization

/// Writes an event stream to a socket: straight from the writing task, waiting on the poller
/// only when the kernel's buffer is full. The response head goes out with the first write.
final class SocketSink: EventStreamSink {
    let socket: Socket
    let poller: Poller
    private let pendingHead: Mutex<[UInt8]?>

    init(socket: Socket, poller: Poller, head: [UInt8]) {
        self.socket = socket
        self.poller = poller
        self.pendingHead = Mutex(head)
    }

    /// Sends the response head now, if no frame was ready to go with it.
    func flushHead() async throws {
        guard let head = takeHead() else { return }
        try await writeAll(head)
    }

    nonisolated(nonsending) func write(_ chunk: [UInt8]) async throws {
        if let head = takeHead() {
            try await writeAll(head + chunk)
        } else {
            try await writeAll(chunk)
        }
    }

    /// Writes the frames with vectored I/O straight from their shared storage, the pending
    /// response head first: nothing is joined or copied per connection.
    nonisolated(nonsending) func write(contentsOf frames: [EventFrame]) async throws {
        try await socket.writeAll(head: takeHead() ?? [], frames: frames, poller: poller)
    }

    private func takeHead() -> [UInt8]? {
        pendingHead.withLock { state -> [UInt8]? in defer { state = nil }; return state }
    }

    nonisolated(nonsending) func writeAll(_ bytes: [UInt8]) async throws {
        try await socket.writeAll(bytes, poller: poller)
    }
}

extension Socket {
    /// Writes every byte, waiting for writability when the kernel's buffer is full.
    nonisolated(nonsending) func writeAll(_ bytes: [UInt8], poller: Poller) async throws {
        var offset = 0
        while offset < bytes.count {
            let written = try bytes.withUnsafeBytes { raw in
                try write(UnsafeRawBufferPointer(rebasing: raw[offset...]))
            }
            if written == 0 {
                try await poller.waitWritable(fd)
            } else {
                offset += written
            }
        }
    }
}
