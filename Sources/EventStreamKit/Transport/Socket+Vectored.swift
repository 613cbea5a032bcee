#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Socket {
    /// The most buffers one vectored write hands to the kernel. `IOV_MAX` is 1024, but each
    /// buffer costs one nested `withUnsafeBytes` on the stack (measured: about 100 bytes per
    /// level optimized, 450 unoptimized), and 1024 levels would take most of a 512 KiB
    /// secondary thread's stack in a debug build. 256 covers a full default queue in two calls.
    package static let maxVectoredBuffers = 256

    /// How far a vectored write has got: the buffer (0 is the head, then each frame in
    /// turn) and how many of its bytes are written.
    package struct VectoredCursor: Equatable {
        package var buffer = 0
        package var offset = 0
    }

    /// Writes `head`, then every frame's bytes, in order, straight from the frames' own
    /// storage (no joined copy), waiting for writability when the kernel's buffer is full.
    /// (Docs/Decisions/0007-byte-budgets-and-vectored-writes.md)
    ///
    /// - Throws: ``UnfinishedWrite`` (with how many frames were written whole, and the
    ///   ``SocketError`` or poller error that stopped it) if the peer is gone.
    /// - Parameter skip: Bytes of the first frame already written (they are not sent again);
    ///   only with an empty `head`.
    nonisolated(nonsending) func writeAll(head: [UInt8], frames: [EventFrame], skippingFirst skip: Int = 0, poller: Poller, deadline: WriteDeadline? = nil) async throws {
        precondition(skip == 0 || (head.isEmpty && !frames.isEmpty && skip <= frames[0].count), "a skip is for the first frame, without a head")
        var remaining = frames.reduce(head.count) { $0 + $1.count } - skip
        var cursor = skip == 0 ? VectoredCursor() : VectoredCursor(buffer: 1, offset: skip)
        var waited = false
        defer { if waited { deadline?.disarm() } }
        do {
            while remaining > 0 {
                let written = try write(vectored: frames, head: head, from: &cursor)
                if written == 0 {
                    waited = true
                    if let deadline, !deadline.arm() { throw SocketError("send", code: EPIPE) }
                    try await poller.waitWritable(fd)
                } else {
                    remaining -= written
                }
            }
        } catch {
            // Buffer 0 is the head; the cursor stands in the first buffer not yet written whole.
            throw UnfinishedWrite(framesWritten: max(0, cursor.buffer - 1), underlying: error)
        }
    }

    /// Writes what the kernel takes now, from `cursor` on, with one `sendmsg` (`writev` on
    /// Darwin) over up to ``maxVectoredBuffers`` buffers, and moves `cursor` past it.
    ///
    /// - Returns: The count written, 0 if the write would block or nothing is left.
    /// - Throws: ``SocketError`` for any error but `EINTR` (retried) and `EAGAIN`.
    package func write<Frames: RandomAccessCollection<EventFrame>>(vectored frames: Frames, head: [UInt8], from cursor: inout VectoredCursor) throws(SocketError) -> Int where Frames.Index == Int {
        let start = cursor
        // No more vectors than buffers left: up to 64 (1 KiB) the space is on the stack, where
        // 256 always took a malloc (7.6 % of a delivery's instructions in profile.sh).
        let capacity = min(frames.count + 1 - start.buffer, Self.maxVectoredBuffers)
        guard capacity > 0 else { return 0 }
        let (written, error) = withUnsafeTemporaryAllocation(of: iovec.self, capacity: capacity) { vectors in
            collect(frames, head, from: start, into: vectors, filled: 0)
        }
        if let error { throw error }
        cursor.advance(by: written, head: head, frames: frames)
        return written
    }

    /// Fills `vectors` from `position` on, one buffer per nested `withUnsafeBytes`, so that
    /// every pointer is valid when the innermost call sends: recursion depth is bounded by
    /// the number of vectors.
    private func collect<Frames: RandomAccessCollection<EventFrame>>(
        _ frames: Frames, _ head: [UInt8], from position: VectoredCursor,
        into vectors: UnsafeMutableBufferPointer<iovec>, filled: Int
    ) -> (written: Int, error: SocketError?) where Frames.Index == Int {
        var position = position
        // Empty buffers and the written part of a partly written one need no vector.
        while position.buffer <= frames.count && Self.length(of: position.buffer, head, frames) <= position.offset {
            position = VectoredCursor(buffer: position.buffer + 1, offset: 0)
        }
        guard position.buffer <= frames.count, filled < vectors.count else { return send(vectors, count: filled) }
        let bytes = position.buffer == 0 ? head : frames[frames.startIndex + position.buffer - 1].bytes
        return bytes.withUnsafeBytes { raw in
            // sendmsg does not write through iov_base; the type is only mutable in C.
            vectors[filled] = iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress! + position.offset), iov_len: raw.count - position.offset)
            return collect(frames, head, from: VectoredCursor(buffer: position.buffer + 1, offset: 0), into: vectors, filled: filled + 1)
        }
    }

    private func send(_ vectors: UnsafeMutableBufferPointer<iovec>, count: Int) -> (written: Int, error: SocketError?) {
        guard count > 0 else { return (0, nil) }
        while true {
            #if canImport(Glibc)
            var message = msghdr()
            message.msg_iov = vectors.baseAddress
            message.msg_iovlen = count
            let n = sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
            #else
            let n = writev(fd, vectors.baseAddress, Int32(count))  // SO_NOSIGPIPE is set on accept
            #endif
            if n >= 0 { return (n, nil) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return (0, nil)
            default: return (0, SocketError("sendmsg"))
            }
        }
    }

    fileprivate static func length<Frames: RandomAccessCollection<EventFrame>>(of buffer: Int, _ head: [UInt8], _ frames: Frames) -> Int where Frames.Index == Int {
        buffer == 0 ? head.count : frames[frames.startIndex + buffer - 1].count
    }
}

extension Socket.VectoredCursor {
    /// Moves past `count` bytes, across as many buffers as they span.
    fileprivate mutating func advance<Frames: RandomAccessCollection<EventFrame>>(by count: Int, head: [UInt8], frames: Frames) where Frames.Index == Int {
        var remaining = count
        while remaining > 0 {
            let left = Socket.length(of: buffer, head, frames) - offset
            if remaining < left {
                offset += remaining
                return
            }
            remaining -= left
            buffer += 1
            offset = 0
        }
    }
}

/// A vectored write that stopped part-way: the frames before `framesWritten` reached the
/// kernel whole, the rest did not (``EventConnection/run(writingTo:)`` counts those as
/// dropped, so that every frame is either written or counted).
///
/// Described as its cause alone: it reaches people (a client's "attempt 1 failed: …"), for
/// whom the frame count means nothing.
package struct UnfinishedWrite: Error, CustomStringConvertible {
    package let framesWritten: Int
    package let underlying: any Error

    package var description: String { "\(underlying)" }
}
